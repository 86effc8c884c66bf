"""Who may do what: users, roles, API tokens, sign-in with lockout, and the route guards."""
