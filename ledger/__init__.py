"""The central points ledger: villages, households, rules, accounts and transfers."""
