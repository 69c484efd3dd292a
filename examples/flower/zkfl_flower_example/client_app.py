"""The ClientApp for Flower's deployment engine (`flwr run`): zkfl's proven step."""

from __future__ import annotations

from zkfl.flower import zk_client_app
from zkfl_flower_example.nodes import load_partition, poison, wallet_key

app = zk_client_app(load_partition, wallet_key, mods=[poison])
