"""Tests of the HA-free protocol library (codec and BLE link)."""
