"""Real data that ships with scikit-learn (never downloaded), split into client shards.

Features are standardized with the training split's statistics and clipped to
[-4, 4], which keeps every fixed-point product of the step well inside the circuit's
range. The held-out split is what the aggregator reports accuracy on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from zkfl.errors import ZkflError

FloatArray = npt.NDArray[np.float64]
FEATURE_CLIP = 4.0
DATASETS = ("breast_cancer", "digits", "wine")


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: FloatArray
    y_train: FloatArray
    x_test: FloatArray
    y_test: FloatArray

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _loader(name: str) -> Any:
    # wine: 13 features, 3 classes, a softmax small enough for the ZoKrates backend.
    if name not in DATASETS:
        raise ZkflError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    import sklearn.datasets  # imported on use: the command line lists the names without it

    return getattr(sklearn.datasets, f"load_{name}")


def load(name: str, seed: int = 0) -> Dataset:
    bunch = _loader(name)()
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.float64)
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0

    def prep(a: FloatArray) -> FloatArray:
        return np.clip((a - mean) / std, -FEATURE_CLIP, FEATURE_CLIP)

    return Dataset(name, prep(x_train), y_train, prep(x_test), y_test)


def parse_shard(text: str) -> tuple[int, int]:
    """``"N/M"`` (1-based) -> (N, M)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ZkflError(f"shard must look like N/M (e.g. 1/3), got {text!r}") from None
    if not 1 <= index <= count:
        raise ZkflError(f"shard {text}: N must be between 1 and M")
    return index, count


def shard(dataset: Dataset, index: int, count: int) -> tuple[FloatArray, FloatArray]:
    """The ``index``-th of ``count`` disjoint shards of the training split (1-based)."""
    order = np.random.default_rng(1234).permutation(len(dataset.x_train))
    part = np.array_split(order, count)[index - 1]
    return dataset.x_train[part], dataset.y_train[part]


def round_batch(x: FloatArray, y: FloatArray, round_: int, batch: int) -> tuple[FloatArray, FloatArray]:
    """The batch a client trains on in a round: its data in order, wrapping around."""
    if len(x) < batch:
        raise ZkflError(f"a client needs at least {batch} samples for one step, it has {len(x)}")
    start = (round_ * batch) % len(x)
    rows = [(start + i) % len(x) for i in range(batch)]
    return x[rows], y[rows]
