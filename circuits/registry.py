"""Model families by name: step module, label encoding, float reference, metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from zkfl.circuits import logreg, mlp, softmax
from zkfl.circuits.spec import MODEL_FAMILIES, ModelSpec

if TYPE_CHECKING:
    import torch

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModelFamily:
    name: str
    step_module: Callable[[ModelSpec], torch.nn.Module]
    encode_labels: Callable[[ModelSpec, FloatArray], FloatArray]
    float_step: Callable[[ModelSpec, FloatArray, FloatArray, FloatArray], FloatArray]
    loss_and_accuracy: Callable[[ModelSpec, FloatArray, FloatArray, FloatArray], tuple[float, float]]


def _step_module(name: str) -> Callable[[ModelSpec], torch.nn.Module]:
    def build(spec: ModelSpec) -> torch.nn.Module:
        # torch only where a circuit is built: a participant, aggregator or auditor that fetches
        # compiled circuits by CID never pays its import (about 2 s of CPU a process).
        from zkfl.circuits.modules import STEP_MODULES, DataPrivateStep

        step = STEP_MODULES[name](spec)
        return step if spec.commits_data else DataPrivateStep(step)

    return build


def _family(name: str, module: ModuleType) -> ModelFamily:
    return ModelFamily(name, _step_module(name), module.encode_labels, module.float_step, module.loss_and_accuracy)


FAMILIES: dict[str, ModelFamily] = {
    "logreg": _family("logreg", logreg),
    "softmax": _family("softmax", softmax),
    "mlp": _family("mlp", mlp),
}
assert tuple(FAMILIES) == MODEL_FAMILIES, "circuits.spec.MODEL_FAMILIES names the families registered here"

#: The data set each model is demonstrated on, and the model's defaults there.
DEFAULTS: dict[str, dict[str, object]] = {
    "logreg": {"dataset": "breast_cancer", "batch": 16, "learning_rate": 0.5},
    "softmax": {"dataset": "digits", "batch": 16, "learning_rate": 0.5},
    "mlp": {"dataset": "digits", "batch": 16, "learning_rate": 0.5, "hidden": (16,)},
}


def initial_parameters(spec: ModelSpec, seed: int = 0) -> FloatArray:
    """Zeros for the linear models; for an MLP, He-scaled random weights (zeros would
    leave every hidden unit identical forever) and zero biases."""
    if spec.family != "mlp":
        return np.zeros(spec.param_count)
    rng = np.random.default_rng(seed)
    parts = []
    sizes = spec.layer_sizes
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        parts += [rng.normal(0.0, np.sqrt(2.0 / fan_in), fan_in * fan_out), np.zeros(fan_out)]
    return np.concatenate(parts)


def family(name: str) -> ModelFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def default_spec(model: str, features: int, classes: int = 2, *, batch: int | None = None,
                 local_steps: int = 1, hidden: tuple[int, ...] | None = None) -> ModelSpec:
    family(model)
    defaults = DEFAULTS[model]
    return ModelSpec(
        family=model, features=features, classes=classes,
        batch=int(batch if batch is not None else defaults["batch"]),  # type: ignore[call-overload]
        scale=12, learning_rate=float(defaults["learning_rate"]),  # type: ignore[arg-type]
        hidden=tuple(hidden if hidden is not None else defaults.get("hidden", ())),  # type: ignore[arg-type]
        local_steps=local_steps,
    )
