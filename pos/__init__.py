"""The counter: sales, returns, receipts and shop reports (built by the counter issue)."""
