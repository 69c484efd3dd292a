"""What the aggregator records per round (for the demo report and the dashboard)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zkfl.paths import write_atomically, zkfl_home


@dataclass
class Rejection:
    wallet: str
    reason: str
    on_chain: bool  # False: refused before the chain (dead-lettered, nobody slashed)


@dataclass
class RoundRecord:
    round: int
    start_commitment: str
    global_commitment: str | None = None  # of the model this round produced
    model_cid: str | None = None
    accepted: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    accuracy: float | None = None
    loss: float | None = None
    reference_accuracy: float | None = None  # float FedAvg over the same accepted batches, where known
    prove_seconds: list[float] = field(default_factory=list)
    verify_gas: list[int] = field(default_factory=list)
    client_metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    publish_gas: int | None = None  # publishGlobalModel, including the on-chain FedAvg proof check
    publish_tx: str | None = None
    aggregation_prove_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def metrics_path(task_key: str) -> Path:
    """Keyed like the aggregator's state (chain instance, federation, task): a restarted
    anvil reuses addresses and task ids, and must not show an earlier chain's figures."""
    folder = zkfl_home() / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{task_key}.json"


def save_rounds(path: Path, rounds: list[RoundRecord]) -> None:
    write_atomically(path, json.dumps([r.to_json() for r in rounds], indent=1).encode())


def load_rounds(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return data if isinstance(data, list) else []
