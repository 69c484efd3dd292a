"""The interface every proving backend implements (a task picks one at creation).

In the style of web3.py's ``BaseProvider`` and Flower's ``Strategy``: a few named hooks,
each with a documented contract. Code outside ``zkfl.prover`` asks the registry
(:mod:`zkfl.prover.registry`) for a backend by name, or for the backend of a circuit,
and calls these hooks; it never tests which backend it holds.

Adding a backend: a folder beside ``prover/ezkl/`` and ``prover/zokrates/`` with a
subclass of :class:`ProvingBackend`, and one line in the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from zkfl.circuits.spec import ModelSpec
from zkfl.field.quantize import IntArray
from zkfl.prover.records import StepCircuit, StepProof, VerifierSource

if TYPE_CHECKING:
    from zkfl.artifacts import TaskPackage
    from zkfl.store import ContentStore


class ProvingBackend(ABC):
    #: The name tasks record in their package (``TaskPackage.backend``).
    name: ClassVar[str]
    #: How many proofs a machine's cores make best at once (a single-threaded prover gains from two).
    parallel_provers: ClassVar[int] = 1
    #: Whether its verifier contract checks several proofs at once (``verifyProofs``): relayers
    #: then gain from sending a round's updates in one ``submitUpdates`` transaction.
    batch_verifies: ClassVar[bool] = False

    def unsupported(self, spec: ModelSpec) -> str | None:
        """Why this backend cannot prove ``spec``'s step, or None if it can."""
        return None

    @abstractmethod
    def build_step(self, spec: ModelSpec) -> StepCircuit:
        """The organisation's side: compile the step circuit, make its keys and verifier (cached)."""

    @abstractmethod
    def step_from_package(self, package: TaskPackage, store: ContentStore) -> StepCircuit:
        """A participant's or auditor's side: the task's circuit from its published package,
        checked against it (a circuit or key that differs from the published one is refused)."""

    @abstractmethod
    def package_files(self, circuit: StepCircuit) -> dict[str, Path]:
        """The files a task package publishes for this circuit, by role."""

    @abstractmethod
    def prove_step(self, circuit: StepCircuit, global_model: IntArray, x: IntArray, y: IntArray,
                   binding: IntArray) -> StepProof:
        """Prove one training step on integer inputs at the spec's scale."""

    @abstractmethod
    def verify_step(self, circuit: StepCircuit, proof: bytes, public_values: list[int]) -> tuple[bool, str]:
        """Off-chain verification of a step proof in its calldata form, deciding as the
        on-chain verifier does: (ok, reason)."""

    @abstractmethod
    def proof_length(self, circuit: StepCircuit) -> int:
        """The exact length in bytes of the proofs the circuit's verifier accepts."""

    @abstractmethod
    def verifier(self, circuit: StepCircuit) -> VerifierSource:
        """The Solidity verifier of the circuit, checked to be generated from its verifying key."""
