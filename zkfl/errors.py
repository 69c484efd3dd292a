"""Errors a user can act on.

Every command catches :class:`ZkflError` at the top and prints its message as one
line, so the message must name what is wrong and, where possible, what to do.
"""

from __future__ import annotations


class ZkflError(Exception):
    """A failure with a clear, user-facing reason (bad input, missing service, ...)."""


class ConfigError(ZkflError):
    """A tool, file or setting the command needs is missing or wrong."""


class ChainError(ZkflError):
    """The chain refused a call, or is not reachable."""


class BrokerError(ZkflError):
    """The message broker is not reachable or refused a message."""


class StoreUnavailable(ZkflError):
    """The content store (an IPFS node, a gateway, a pinning service) did not answer in time:
    worth trying again later, unlike bytes that do not match their CID."""


class ProofError(ZkflError):
    """Witness generation, proving or verification failed."""


class MessageError(ZkflError):
    """A message failed validation; ``reason`` goes to the dead-letter queue."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
