"""Logs, request context and Prometheus metrics (traces to come)."""
