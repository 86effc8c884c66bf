"""Receipts and reports on paper: `layout` (pure lines in GBK columns), `escpos` (printer bytes)."""
