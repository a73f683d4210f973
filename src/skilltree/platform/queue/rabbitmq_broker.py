"""The RabbitMQ broker: taskiq-aio-pika's, plus the delivery count it leaves behind.

A quorum queue counts how often each message came back unacknowledged — its consumer's
channel or connection closed, or it was rejected with requeue — and sends the count with every
redelivery in the `x-delivery-count` header (absent on the first delivery). taskiq-aio-pika
passes the worker only the message body, so `listen` is redone here to put the count on the
message (deliveries.py). See https://www.rabbitmq.com/docs/quorum-queues#poison-message-handling.

A quorum queue may also have a delivery limit of its own (a policy, or RabbitMQ 4's default),
past which the broker moves the message to `<queue>.rejected`; kept above every task's
`max_attempts`, it never fires before the worker has put the message in the dead-letter table,
where operators look.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from aio_pika.abc import AbstractIncomingMessage
from taskiq import AckableMessage
from taskiq_aio_pika import AioPikaBroker
from taskiq_aio_pika.exceptions import NoStartupError

from skilltree.platform.queue.deliveries import label_delivery

DELIVERY_COUNT_HEADER = "x-delivery-count"


class RabbitMQBroker(AioPikaBroker):
    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        if self.read_channel is None:
            raise NoStartupError("Call startup before starting listening.")
        await self.read_channel.set_qos(prefetch_count=self._qos)
        # skilltree's workers consume one queue (and the library declares no delay queue).
        [(queue, consumer_arguments)] = await self._declare_queues(self.read_channel)
        try:
            async with queue.iterator(**consumer_arguments) as iterator:
                async for message in iterator:
                    yield AckableMessage(
                        data=label_delivery(self.formatter, message.body, delivery_of(message)),
                        ack=message.ack,
                    )
        except (RuntimeError, asyncio.CancelledError):
            # The channel closed under the iterator because the worker is stopping; ending
            # quietly here is what taskiq-aio-pika's own `listen` does.
            return


def delivery_of(message: AbstractIncomingMessage) -> int:
    """1 for a first delivery; n + 1 when the header says n earlier deliveries came back."""
    returned = message.headers.get(DELIVERY_COUNT_HEADER) or 0
    return int(returned) + 1 if isinstance(returned, int) else 1
