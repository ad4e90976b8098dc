"""End-to-end tests in a real browser: Home Assistant with the simulated mesh, Debian's Chromium."""
