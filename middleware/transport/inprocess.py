"""An in-process transport with the same interface, for `zkfl demo` without a broker."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict

from zkfl.middleware.transport.base import DeadLetter, Delivery, Transport


class _InProcessDelivery(Delivery):
    def __init__(self, transport: InProcessTransport, task: str, body: bytes) -> None:
        self.body = body
        self._transport = transport
        self._task = task

    def ack(self) -> None:
        """Nothing to do: an in-process message is gone once received."""

    def retry_later(self) -> None:
        self._transport._queue(self._task).put(self.body)

    def reject(self, reason: str) -> None:
        with self._transport._lock:
            self._transport._dead[self._task].append(DeadLetter(self.body, reason))


class InProcessTransport(Transport):
    """Thread-safe; share one instance between the demo's clients and its aggregator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue[bytes]] = defaultdict(queue.Queue)
        self._dead: dict[str, list[DeadLetter]] = defaultdict(list)

    def _queue(self, task: str) -> queue.Queue[bytes]:
        with self._lock:
            return self._queues[task]

    def publish_submission(self, task: str, body: bytes) -> None:
        self._queue(task).put(body)

    def receive_submission(self, task: str, timeout: float) -> Delivery | None:
        try:
            body = self._queue(task).get(timeout=timeout)
        except queue.Empty:
            return None
        return _InProcessDelivery(self, task, body)

    def dead_letters(self, task: str) -> list[DeadLetter]:
        with self._lock:
            return list(self._dead[task])
