"""Organisations (cohorts, teams): members with roles, and invitations by e-mail."""
