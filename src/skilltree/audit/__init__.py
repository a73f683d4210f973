"""The security audit log: an append-only record of what happened to accounts, and from where."""
