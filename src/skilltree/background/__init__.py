"""Operating background work over HTTP: the administrators' view of the dead-letter queue."""
