"""How many times a broker has handed a message out: the count that stops poison tasks.

A task that kills its worker process (a segfault, an out-of-memory kill, `kill -9` from an
orchestrator out of patience) raises nothing, so no retry policy sees it fail: its message just
comes back, and would come back forever. So brokers count deliveries, not failures — the
database broker in the same UPDATE that leases the row, RabbitMQ's quorum queues in the
`x-delivery-count` header — and hand the count to the worker as the message's `delivery` label.
The worker then treats every delivery as one attempt (see `attempt_of`).
"""

from __future__ import annotations

from taskiq import TaskiqMessage
from taskiq.abc.formatter import TaskiqFormatter

DELIVERY_LABEL = "delivery"


def label_delivery(formatter: TaskiqFormatter, data: bytes, delivery: int) -> bytes:
    """The message with its delivery number (1 the first time it is handed out) as a label."""
    try:
        message = formatter.loads(data)
    except ValueError:
        return data  # not a task message: the receiver acknowledges and drops it
    message.labels[DELIVERY_LABEL] = delivery
    return formatter.dumps(message).message


def unfinished_deliveries(message: TaskiqMessage) -> int:
    """Earlier deliveries of this same message: each was acknowledged by no one, so each was an
    attempt whose worker died before the task could succeed or fail."""
    return int(message.labels.get(DELIVERY_LABEL, 1)) - 1


def attempt_of(message: TaskiqMessage) -> int:
    """The attempt a delivery makes: the attempt its message was queued for (a retry is a new
    message, queued for attempt 2, 3, ...) plus the unfinished deliveries of this message."""
    return int(message.labels.get("attempt", 1)) + unfinished_deliveries(message)
