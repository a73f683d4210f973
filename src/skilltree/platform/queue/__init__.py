"""Background work: a task queue (taskiq on RabbitMQ or on the database), retries with
back-off, a dead-letter queue, the transactional outbox and its relay."""
