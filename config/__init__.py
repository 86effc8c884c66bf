"""The composition root: the app factory, settings, CLI wiring, serving, the demo and backups."""
