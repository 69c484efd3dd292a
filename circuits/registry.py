"""Model families: the step module, the float reference and the metrics, by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from zkfl.circuits import logreg
from zkfl.circuits.spec import ModelSpec

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModelFamily:
    name: str
    step_module: Callable[[ModelSpec], torch.nn.Module]
    float_step: Callable[[ModelSpec, FloatArray, FloatArray, FloatArray], FloatArray]
    loss_and_accuracy: Callable[[FloatArray, FloatArray, FloatArray], tuple[float, float]]


FAMILIES: dict[str, ModelFamily] = {
    "logreg": ModelFamily("logreg", logreg.LogRegStep, logreg.float_step, logreg.loss_and_accuracy),
}


def family(name: str) -> ModelFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def default_spec(model: str, features: int) -> ModelSpec:
    family(model)
    # batch 16 at scale 12 proves at 2**15 rows (about 7 s on 2 cores).
    return ModelSpec(family=model, features=features, batch=16, scale=12, learning_rate=0.5)
