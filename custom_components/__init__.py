"""Home Assistant custom integrations of this repository (HACS installs custom_components/dc_mesh)."""
