"""The one list of proving backends: a name, and where its implementation lives.

Implementations are imported on first use, so a party that proves with one backend
never loads the other's toolchain.
"""

from __future__ import annotations

import importlib
from functools import cache

from zkfl.errors import ZkflError
from zkfl.prover.backend import ProvingBackend
from zkfl.prover.records import StepCircuit

_BACKENDS = {
    "ezkl": "zkfl.prover.ezkl.backend:EzklBackend",  # halo2/KZG: every model family
    "zokrates": "zkfl.prover.zokrates.backend:ZokratesBackend",  # Groth16: linear models, cheapest to verify
}

#: The backend names, the default first.
BACKENDS = tuple(_BACKENDS)
DEFAULT_BACKEND = BACKENDS[0]


@cache
def get_backend(name: str) -> ProvingBackend:
    if name not in _BACKENDS:
        raise ZkflError(f"unknown proving backend {name!r}; known: {', '.join(BACKENDS)}")
    module, _, cls = _BACKENDS[name].partition(":")
    backend: ProvingBackend = getattr(importlib.import_module(module), cls)()
    return backend


def backend_of(circuit: StepCircuit) -> ProvingBackend:
    return get_backend(circuit.backend)
