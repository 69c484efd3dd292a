"""RabbitMQ (pika) transport: durable quorum queues, persistent messages, confirms.

Topology, declared idempotently by whoever connects first:

* exchange ``zkfl.task.<id>`` (topic, durable);
* queue ``zkfl.task.<id>.submissions`` (quorum, durable), bound to ``submission``;
* queue ``zkfl.task.<id>.dead`` (quorum, durable), bound to ``dead``: refused
  messages with their reason in the ``x-zkfl-reason`` header;
* exchange ``zkfl.task.<id>.events`` (fanout, durable): published models and round
  metrics, for dashboards and anyone watching.

A lost connection is re-opened with exponential backoff (``reconnect_attempts``);
a publish that did not get its confirm is sent again (at least once: the consumer's
idempotency makes the effect once), and an unacked delivery is redelivered by the broker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from zkfl.errors import BrokerError
from zkfl.middleware.transport.base import DeadLetter, Delivery, Transport

log = logging.getLogger("zkfl.transport")
T = TypeVar("T")
_CONNECTION_ERRORS = (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                      pika.exceptions.StreamLostError, ConnectionError)
SUBMISSION_KEY = "submission"
DEAD_KEY = "dead"
REASON_HEADER = "x-zkfl-reason"


def exchange_name(task: str) -> str:
    return f"zkfl.task.{task}"


def submissions_queue(task: str) -> str:
    return f"zkfl.task.{task}.submissions"


def dead_queue(task: str) -> str:
    return f"zkfl.task.{task}.dead"


def events_exchange(task: str) -> str:
    return f"zkfl.task.{task}.events"


class _RabbitDelivery(Delivery):
    def __init__(self, transport: RabbitMQTransport, task: str, tag: int, body: bytes) -> None:
        self.body = body
        self._transport = transport
        self._task = task
        self._tag = tag

    def ack(self) -> None:
        try:
            self._transport._channel.basic_ack(self._tag)
        except _CONNECTION_ERRORS:
            # The connection that delivered this message is gone, and the broker will
            # redeliver it; the consumer's idempotency turns that into no second effect.
            log.warning("ack lost with the connection; the message will be redelivered")

    def retry_later(self) -> None:
        try:
            self._transport._channel.basic_nack(self._tag, requeue=True)
        except _CONNECTION_ERRORS:
            log.warning("nack lost with the connection; the message will be redelivered")

    def reject(self, reason: str) -> None:
        # Publish to the dead-letter queue with the reason first (confirmed), then ack:
        # a crash in between leaves the original to be redelivered, never lost.
        self._transport._publish(self._task, DEAD_KEY, self.body, {REASON_HEADER: reason})
        self.ack()


class RabbitMQTransport(Transport):
    def __init__(self, url: str, connect_timeout: float = 5.0, reconnect_attempts: int = 8) -> None:
        self.url = url
        parsed = urlparse(url)
        if parsed.scheme not in ("amqp", "amqps"):
            raise BrokerError(f"broker URL must start with amqp:// or amqps://, got {url!r}")
        self._where = f"{parsed.hostname}:{parsed.port or 5672}"
        self._params = pika.URLParameters(url)
        self._params.socket_timeout = connect_timeout
        self._params.blocked_connection_timeout = 30
        self._params.connection_attempts = 1
        self.reconnect_attempts = reconnect_attempts
        self._declared: set[str] = set()
        self._open()

    def _open(self) -> None:
        try:
            self._connection = pika.BlockingConnection(self._params)
        except pika.exceptions.AMQPError as exc:
            raise BrokerError(f"no RabbitMQ broker answers at {self._where} ({type(exc).__name__})") from None
        self._channel: BlockingChannel = self._connection.channel()
        self._channel.confirm_delivery()
        self._channel.basic_qos(prefetch_count=1)
        self._declared = set()

    def _reconnect(self) -> None:
        delay = 0.25
        for attempt in range(1, self.reconnect_attempts + 1):
            try:
                self.close()
                self._open()
                log.info("reconnected to %s after %d attempt(s)", self._where, attempt)
                return
            except BrokerError:
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise BrokerError(f"lost the broker at {self._where} and could not reconnect "
                          f"({self.reconnect_attempts} attempts)")

    def _retrying(self, action: Callable[[], T]) -> T:
        """Run ``action``; on a lost connection, reconnect (with backoff) and run it again."""
        while True:
            try:
                return action()
            except _CONNECTION_ERRORS as exc:
                log.warning("broker connection lost (%s); reconnecting", type(exc).__name__)
                self._reconnect()

    def _declare(self, task: str) -> None:
        if task in self._declared:
            return
        ch = self._channel
        ch.exchange_declare(exchange_name(task), exchange_type="topic", durable=True)
        ch.exchange_declare(events_exchange(task), exchange_type="fanout", durable=True)
        for queue, key in ((submissions_queue(task), SUBMISSION_KEY), (dead_queue(task), DEAD_KEY)):
            ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
            ch.queue_bind(queue, exchange_name(task), routing_key=key)
        self._declared.add(task)

    def _publish(self, task: str, key: str, body: bytes, headers: dict[str, str] | None = None,
                 exchange: str | None = None) -> None:
        def attempt() -> None:
            self._declare(task)
            try:
                self._channel.basic_publish(
                    exchange or exchange_name(task), key, body,
                    properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, headers=headers),
                    mandatory=exchange is None,
                )
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                raise BrokerError(f"broker did not confirm the message: {type(exc).__name__}") from None

        self._retrying(attempt)

    def publish_submission(self, task: str, body: bytes) -> None:
        self._publish(task, SUBMISSION_KEY, body)

    def publish_event(self, task: str, event: dict[str, Any]) -> None:
        """Fan out a round's result (published model, metrics) to whoever listens."""
        self._publish(task, "", json.dumps(event).encode(), exchange=events_exchange(task))

    def receive_submission(self, task: str, timeout: float) -> Delivery | None:
        deadline = time.monotonic() + timeout

        def poll() -> Delivery | None:
            self._declare(task)
            method, _props, body = self._channel.basic_get(submissions_queue(task), auto_ack=False)
            return None if method is None else _RabbitDelivery(self, task, method.delivery_tag, body)

        while True:
            delivery = self._retrying(poll)
            if delivery is not None:
                return delivery
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            pause = min(0.05, remaining)
            self._retrying(lambda pause=pause: self._connection.sleep(pause))  # type: ignore[misc]

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
        except (pika.exceptions.AMQPError, *_CONNECTION_ERRORS):
            pass


def open_transport(broker_url: str | None) -> Transport:
    if broker_url is None:
        from zkfl.middleware.transport.inprocess import InProcessTransport

        return InProcessTransport()
    return RabbitMQTransport(broker_url)
