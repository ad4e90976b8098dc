"""Home Assistant components for development runs (symlinked into a dev config)."""
