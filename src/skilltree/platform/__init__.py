"""Shared mechanisms (configuration, database, HTTP, observability) with no business rules."""
