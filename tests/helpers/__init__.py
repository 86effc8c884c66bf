"""Helpers the test packages share: what people type, how a browser signs in, threads."""
