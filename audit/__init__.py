"""The append-only audit log of every change, and its page for the county office."""
