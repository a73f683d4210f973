"""Accounts: identity, passwords, e-mail verification and browser sessions."""
