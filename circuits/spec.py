"""What a training step is: the model family, its shape, batch, scale and learning rate.

The spec hash names a compiled circuit: two parties with the same spec build the same
circuit, and a cached circuit is reused only for the spec it was built from. Bump
``CIRCUIT_VERSION`` whenever the step's arithmetic changes, so stale caches miss.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

CIRCUIT_VERSION = 2  # 2: binding input


@dataclass(frozen=True)
class ModelSpec:
    family: str  # "logreg"
    features: int
    batch: int  # samples per proven step: the n_i of FedAvg
    scale: int  # fixed-point fractional bits
    learning_rate: float

    @property
    def param_count(self) -> int:
        if self.family == "logreg":
            return self.features + 1  # weights, then bias
        raise ValueError(f"unknown model family {self.family!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(
            family=str(data["family"]),
            features=int(data["features"]),
            batch=int(data["batch"]),
            scale=int(data["scale"]),
            learning_rate=float(data["learning_rate"]),
        )

    def spec_hash(self) -> str:
        payload = {"circuit_version": CIRCUIT_VERSION, **self.to_dict()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
