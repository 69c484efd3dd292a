"""One interface for carrying submissions: RabbitMQ in deployments, in-process in demos.

Delivery is at least once: a message is removed from its queue only when the consumer
acks it, after its effect is durable (on chain). ``reject`` moves a message to the
task's dead-letter queue together with its reason, then acks the original.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DeadLetter:
    body: bytes
    reason: str


class Delivery(ABC):
    body: bytes

    @abstractmethod
    def ack(self) -> None: ...

    @abstractmethod
    def reject(self, reason: str) -> None:
        """Send to the dead-letter queue with ``reason``, then drop from the work queue."""

    @abstractmethod
    def retry_later(self) -> None:
        """Put the message back on the work queue: it is fine, something it needs is not there yet."""


class Transport(ABC):
    @abstractmethod
    def publish_submission(self, task: str, body: bytes) -> None:
        """Return only once the broker has the message durably (publisher confirm)."""

    @abstractmethod
    def receive_submission(self, task: str, timeout: float) -> Delivery | None:
        """The next submission for the task, or None after ``timeout`` seconds."""

    def publish_event(self, task: str, event: dict[str, Any]) -> None:  # noqa: B027 - optional fan-out
        """Fan out a round's result to listeners (dashboards); transports may drop it."""

    @abstractmethod
    def dead_letters(self, task: str) -> list[DeadLetter]:
        """Read the task's dead-letter queue (non-destructively where possible)."""

    def close(self) -> None:  # noqa: B027 - optional for transports without resources
        """Release connections."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def task_key(chain_key: str, federation: str, task_id: int) -> str:
    """Names a task's queues uniquely: task ids restart at 1 on every new chain, and the
    whole Federation address is used (a prefix could be matched by another deployment)."""
    return f"{chain_key}.{federation.lower()[2:]}.{task_id}"
