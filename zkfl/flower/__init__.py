"""zkfl for Flower apps: proven training steps, verified replies, integer FedAvg, on-chain rewards.

    from zkfl.flower import ZkFedAvg, zk_client_app

A Flower ``ServerApp`` runs :class:`ZkFedAvg` where it ran ``FedAvg``; the ``ClientApp`` is
built by :func:`zk_client_app` from a function that loads the node's data. Needs the extra:
``pip install 'zkfl[flower]'``. See docs/flower.md for how Flower's concepts map to zkfl's.
"""

from __future__ import annotations

import os

# Nothing of Flower's leaves the machine: no telemetry, no update check (set before flwr loads).
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")

try:
    import flwr  # noqa: F401
except ImportError as exc:  # pragma: no cover - the message is the point
    from zkfl.errors import ConfigError

    raise ConfigError("zkfl.flower needs Flower: pip install 'zkfl[flower]'") from exc

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zkfl.flower.client import zk_client_app
    from zkfl.flower.strategy import ZkFedAvg
    from zkfl.flower.task import FlowerTask

__all__ = ["FlowerTask", "ZkFedAvg", "zk_client_app"]
# Loaded on first use: a ClientApp's process never imports the server side (the strategy and
# zkfl's aggregator), and a ServerApp's never the client's.
_HOMES = {"FlowerTask": "zkfl.flower.task", "ZkFedAvg": "zkfl.flower.strategy", "zk_client_app": "zkfl.flower.client"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'zkfl.flower' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
