"""Outgoing webhooks: organisation owners register endpoints; domain events are delivered to
them signed per the Standard Webhooks spec, retried, dead-lettered, logged, behind an SSRF guard
and a circuit breaker per endpoint."""
