"""RabbitMQ (pika) transport: durable quorum queues, persistent messages, confirms.

Topology, declared idempotently by whoever connects first:

* exchange ``zkfl.task.<id>`` (topic, durable);
* queue ``zkfl.task.<id>.submissions`` (quorum, durable), bound to ``submission``;
* queue ``zkfl.task.<id>.dead`` (quorum, durable), bound to ``dead``: refused
  messages with their reason in the ``x-zkfl-reason`` header.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from zkfl.errors import BrokerError
from zkfl.middleware.transport.base import DeadLetter, Delivery, Transport

SUBMISSION_KEY = "submission"
DEAD_KEY = "dead"
REASON_HEADER = "x-zkfl-reason"


def exchange_name(task: str) -> str:
    return f"zkfl.task.{task}"


def submissions_queue(task: str) -> str:
    return f"zkfl.task.{task}.submissions"


def dead_queue(task: str) -> str:
    return f"zkfl.task.{task}.dead"


class _RabbitDelivery(Delivery):
    def __init__(self, transport: RabbitMQTransport, task: str, tag: int, body: bytes) -> None:
        self.body = body
        self._transport = transport
        self._task = task
        self._tag = tag

    def ack(self) -> None:
        self._transport._channel.basic_ack(self._tag)

    def reject(self, reason: str) -> None:
        # Publish to the dead-letter queue with the reason first (confirmed), then ack:
        # a crash in between leaves the original to be redelivered, never lost.
        self._transport._publish(self._task, DEAD_KEY, self.body, {REASON_HEADER: reason})
        self._transport._channel.basic_ack(self._tag)


class RabbitMQTransport(Transport):
    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        parsed = urlparse(url)
        if parsed.scheme not in ("amqp", "amqps"):
            raise BrokerError(f"broker URL must start with amqp:// or amqps://, got {url!r}")
        params = pika.URLParameters(url)
        params.socket_timeout = connect_timeout
        params.blocked_connection_timeout = 30
        params.connection_attempts = 1
        try:
            self._connection = pika.BlockingConnection(params)
        except pika.exceptions.AMQPError as exc:
            raise BrokerError(f"no RabbitMQ broker answers at {parsed.hostname}:{parsed.port or 5672} "
                              f"({type(exc).__name__})") from None
        self._channel: BlockingChannel = self._connection.channel()
        self._channel.confirm_delivery()
        self._channel.basic_qos(prefetch_count=1)
        self._declared: set[str] = set()

    def _declare(self, task: str) -> None:
        if task in self._declared:
            return
        ch = self._channel
        ch.exchange_declare(exchange_name(task), exchange_type="topic", durable=True)
        for queue, key in ((submissions_queue(task), SUBMISSION_KEY), (dead_queue(task), DEAD_KEY)):
            ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
            ch.queue_bind(queue, exchange_name(task), routing_key=key)
        self._declared.add(task)

    def _publish(self, task: str, key: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._declare(task)
        try:
            self._channel.basic_publish(
                exchange_name(task), key, body,
                properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, headers=headers),
                mandatory=True,
            )
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            raise BrokerError(f"broker did not confirm the message: {type(exc).__name__}") from None
        except pika.exceptions.AMQPError as exc:
            raise BrokerError(f"broker connection failed while publishing: {type(exc).__name__}") from None

    def publish_submission(self, task: str, body: bytes) -> None:
        self._publish(task, SUBMISSION_KEY, body)

    def receive_submission(self, task: str, timeout: float) -> Delivery | None:
        self._declare(task)
        deadline = time.monotonic() + timeout
        while True:
            method, _props, body = self._channel.basic_get(submissions_queue(task), auto_ack=False)
            if method is not None:
                return _RabbitDelivery(self, task, method.delivery_tag, body)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._connection.sleep(min(0.05, remaining))

    def dead_letters(self, task: str) -> list[DeadLetter]:
        """Browse the dead-letter queue: get every message, then requeue them all."""
        self._declare(task)
        letters, tags = [], []
        while True:
            method, props, body = self._channel.basic_get(dead_queue(task), auto_ack=False)
            if method is None:
                break
            reason = (props.headers or {}).get(REASON_HEADER, "unknown")
            letters.append(DeadLetter(body, str(reason)))
            tags.append(method.delivery_tag)
        for tag in tags:
            self._channel.basic_nack(tag, requeue=True)
        return letters

    def purge(self, task: str) -> None:
        self._declare(task)
        self._channel.queue_purge(submissions_queue(task))
        self._channel.queue_purge(dead_queue(task))

    def close(self) -> None:
        try:
            if self._connection.is_open:
                self._connection.close()
        except pika.exceptions.AMQPError:
            pass


def open_transport(broker_url: str | None) -> Transport:
    if broker_url is None:
        from zkfl.middleware.transport.inprocess import InProcessTransport

        return InProcessTransport()
    return RabbitMQTransport(broker_url)
