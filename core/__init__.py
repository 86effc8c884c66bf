"""The kernel every domain imports: database, errors, idempotency, scanned text, time, API."""
