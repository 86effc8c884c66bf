"""The composition root: app factory, settings, database handle, errors and the CLI."""
