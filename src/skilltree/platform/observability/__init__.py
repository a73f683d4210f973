"""Logs, request context and (later) metrics and traces."""
