"""What a training step is: model family and shape, batch, scale, learning rate, steps.

The spec hash names a compiled circuit: two parties with the same spec build the same
circuit, and a cached circuit is reused only for the spec it was built from. Bump
``CIRCUIT_VERSION`` whenever the step's arithmetic changes, so stale caches miss.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: The model families zkfl proves (``zkfl.circuits.registry`` maps each to its step).
MODEL_FAMILIES = ("logreg", "softmax", "mlp")

CIRCUIT_VERSION = 7  # 2: binding input; 3: model families, local steps; 4: input check output;
# 5: one inner column (prover/ezkl/circuit.py); 6: the data private unless the task pins it (commits_data);
# 7: two inner columns where one would need more than logrows 17 (the MLPs; logreg is unchanged)
#: The declared bound on |feature| unless the organisation says otherwise: zkfl's datasets
#: standardize features and clip them to +-4 (zkfl.datasets.FEATURE_CLIP).
DEFAULT_FEATURE_BOUND = 4.0
#: Participants per task (and so update slots of its FedAvg proof) unless the organisation says otherwise.
DEFAULT_SLOTS = 4


@dataclass(frozen=True)
class ModelSpec:
    family: str  # "logreg", "softmax" or "mlp"
    features: int
    batch: int  # samples per proven step: the n_i of FedAvg
    scale: int  # fixed-point fractional bits
    learning_rate: float
    classes: int = 2  # logreg is binary (one output); softmax and mlp have `classes` outputs
    hidden: tuple[int, ...] = field(default=())  # mlp hidden layer widths (one or two)
    local_steps: int = 1  # SGD steps on the batch inside one proof
    # Every proven step checks |x| <= feature_bound for each feature, and labels 0/1 (one-hot rows):
    # the task's declared input bounds, part of the spec, so part of the circuit and the package.
    feature_bound: float = DEFAULT_FEATURE_BOUND
    # Whether the step's public values commit to the batch (H(X), H(y)): only for a task that pins
    # its participants' data. Otherwise those two public values are the constant H([0]) and no hash
    # of the data is published (a hash of a known dataset's rows would say whose rows they are).
    commits_data: bool = False

    @property
    def layer_sizes(self) -> list[int]:
        outputs = 1 if self.family == "logreg" else self.classes
        return [self.features, *self.hidden, outputs]

    @property
    def param_count(self) -> int:
        """Weights then biases, layer by layer: theta = [W1 (in x out, row-major), b1, W2, b2, ...]."""
        sizes = self.layer_sizes
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    @property
    def label_width(self) -> int:
        return 1 if self.family == "logreg" else self.classes

    @property
    def step_outputs(self) -> tuple[str, ...]:
        """The step circuit's outputs, in order: its hashed public values where its inputs are private."""
        if self.commits_data:
            return ("theta_next", "input_check")  # the inputs are hashed: H(G), H(X), H(y), H(b) come first
        return ("global_model", "no_features", "no_labels", "binding", "theta_next", "input_check")

    @property
    def update_output(self) -> int:
        """Which of the step's outputs is the update."""
        return self.step_outputs.index("theta_next")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        # A spec written before circuit version 6 has no commits_data: its step hashed every input.
        commits_data = data.get("commits_data", True)
        if not isinstance(commits_data, bool):
            raise ValueError(f"commits_data must be true or false, got {commits_data!r}")
        return cls(
            family=str(data["family"]),
            features=int(data["features"]),
            batch=int(data["batch"]),
            scale=int(data["scale"]),
            learning_rate=float(data["learning_rate"]),
            classes=int(data.get("classes", 2)),
            hidden=tuple(int(h) for h in data.get("hidden", ())),
            local_steps=int(data.get("local_steps", 1)),
            feature_bound=float(data.get("feature_bound", DEFAULT_FEATURE_BOUND)),
            commits_data=commits_data,
        )

    def check_bounds(self) -> None:
        """The bound must be a positive number exact at the spec's scale (the circuit compares integers)."""
        quantized = self.feature_bound * 2**self.scale
        if not 0 < self.feature_bound <= 8 or quantized != round(quantized):
            raise ValueError(f"feature bound {self.feature_bound} must be in (0, 8] and a multiple of 2^-{self.scale}")

    def spec_hash(self) -> str:
        payload = {"circuit_version": CIRCUIT_VERSION, **self.to_dict()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
