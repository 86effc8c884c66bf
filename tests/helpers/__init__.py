"""Helpers the test packages share: what people type, forms and signing in, threads."""
