"""What every proving backend hands back, whichever made it: the neutral records.

A step proof's public values are fixed by the Federation contract (its
``STEP_PUBLIC_VALUES`` and the index constants beside it), not by a backend or a task:
``[H(G), H(X), H(y), H(b), H(W), H(check)]`` with ezkl's Poseidon. This module mirrors
that layout once for Python; the contract, the aggregator, the FedAvg proof and the
dashboard read public values by these names and never ask which backend made a proof.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from zkfl.circuits.spec import ModelSpec

#: The order of a step proof's public values (the contract's STEP_PUBLIC_VALUES).
STEP_PUBLIC_LAYOUT = ("global_model", "features", "labels", "binding", "update", "input_check")
GLOBAL_INDEX = 0
FEATURES_INDEX = 1
LABELS_INDEX = 2
BINDING_INDEX = 3
UPDATE_INDEX = 4
CHECK_INDEX = 5
#: H([0]): the input check's commitment when the batch is within the task's bounds (the
#: contract's INPUTS_VALID; tests check the two agree).
INPUTS_VALID = 8065231320233546845889504658050882987663732304574489295982393739117377810121


def commits_to_data(values: Sequence[int]) -> bool:
    """Whether a step proof's public values may say anything about its batch. A step that keeps the
    data private (every task that does not pin data) carries H([0]) where H(X) and H(y) would be, in
    both backends, for every batch within the task's bounds (the only batches the SDK proves);
    anything else there depends on the data."""
    return values[FEATURES_INDEX] != INPUTS_VALID or values[LABELS_INDEX] != INPUTS_VALID


class StepCircuit(Protocol):
    """A task's compiled step circuit with its keys, as a backend built or fetched it."""

    backend: ClassVar[str]  # the registry name of the backend that proves with it

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def key(self) -> str:
        """Names the circuit among a chain's deployed verifiers."""
        ...

    @property
    def update_scale(self) -> int:
        """The fixed-point scale of the step's output (the update)."""
        ...


@dataclass
class StepProof:
    """A proven step: the update it produced and the proof (public values in STEP_PUBLIC_LAYOUT order)."""

    proof_bytes: bytes  # the proof as the step's verifier contract takes it
    instances: list[int]  # public values as uint256
    update: list[int] = field(default_factory=list)  # W as integers at update_scale
    update_scale: int = 0
    proof: dict[str, Any] = field(default_factory=dict)  # the backend's own proof document (ezkl's proof.json, ...)
    prove_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def global_commitment(self) -> int:
        return self.instances[GLOBAL_INDEX]

    @property
    def update_commitment(self) -> int:
        return self.instances[UPDATE_INDEX]

    @property
    def binding_commitment(self) -> int:
        return self.instances[BINDING_INDEX]

    @property
    def inputs_valid(self) -> bool:
        return self.instances[CHECK_INDEX] == INPUTS_VALID

    @property
    def data_commitments(self) -> list[int]:
        return self.instances[GLOBAL_INDEX + 1 : BINDING_INDEX]


@dataclass(frozen=True)
class ReusableVerifier:
    """A verifier shared by every circuit of a backend, fed each circuit's verifying key
    (a VKA) through an adapter: what a circuit uses when its own verifier is too large."""

    solidity: Path
    contract: str
    vka_words: list[bytes]  # the circuit's verifying-key artifact, 32-byte words


@dataclass(frozen=True)
class VerifierSource:
    """The Solidity that verifies a circuit's proofs, and how to build it.

    ``reusable`` is None for a backend without a shared verifier; else it makes the
    shared form on demand (generating it costs seconds).
    """

    solidity: Path
    contract: str
    reusable: Callable[[], ReusableVerifier] | None = None
