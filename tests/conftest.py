"""Shared, expensive fixtures: one circuit, one anvil, a few real proofs per session.

Nothing here is mocked: the chain is anvil, the broker is the RabbitMQ at
ZKFL_TEST_BROKER (default 127.0.0.1:5672), the proofs are ezkl's. A missing service
fails the tests that need it; it never skips them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# Caches (circuits, keys, SRS, solc output) survive between local runs; CI starts clean.
os.environ.setdefault("ZKFL_HOME", str(REPO / ".zkfl" / "test-home"))

import numpy as np  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from web3 import Web3  # noqa: E402

from zkfl.aggregator.fedavg import fedavg  # noqa: E402
from zkfl.circuits.registry import default_spec  # noqa: E402
from zkfl.contracts.chain import AnvilProcess, account_from_key, chain_key, connect, dev_keys, start_anvil  # noqa: E402
from zkfl.contracts.federation import Federation, TaskParams  # noqa: E402
from zkfl.contracts.verifiers import deploy_circuit_verifier, deploy_verifier  # noqa: E402
from zkfl.field.binding import binding_chunks, binding_value  # noqa: E402
from zkfl.field.commit import commit  # noqa: E402
from zkfl.field.quantize import Quantizer  # noqa: E402
from zkfl.middleware.transport.base import Delivery  # noqa: E402
from zkfl.organisation import prepare_aggregation_circuit, prepare_circuit  # noqa: E402
from zkfl.prover.ezkl.aggregation import AggregationProof, prove_aggregation  # noqa: E402
from zkfl.prover.ezkl.circuit import CircuitArtifacts  # noqa: E402
from zkfl.prover.ezkl.evm import verifier as ezkl_verifier  # noqa: E402
from zkfl.prover.ezkl.prove import prove_step  # noqa: E402
from zkfl.prover.records import StepProof  # noqa: E402
from zkfl.store import cid_of  # noqa: E402

BROKER_URL = os.environ.get("ZKFL_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672/%2F")
AGGREGATION_SLOTS = 4
#: The shortest collection window the contract allows: tests that wait it out move anvil's clock this far.
TEST_COLLECTION_WINDOW = 10
# Every update a fixture proved, by commitment: what a test aggregator averages.
KNOWN_UPDATES: dict[int, list[int]] = {}
# The FedAvg verifier deployed on each test chain (by chain_key).
AGGREGATION_VERIFIERS: dict[str, str] = {}


@pytest.fixture(scope="session")
def artifacts() -> CircuitArtifacts:
    return prepare_circuit(default_spec("logreg", 30))


@pytest.fixture(scope="session")
def quantizer(artifacts: CircuitArtifacts) -> Quantizer:
    return Quantizer(artifacts.spec.scale)


@dataclass(frozen=True)
class ProvenStep:
    global_model: np.ndarray
    x: np.ndarray
    y: np.ndarray
    binding: np.ndarray
    proof: StepProof


def test_binding(seed: int) -> np.ndarray:
    """A fixed binding value, for proofs that never go on chain (the contract derives the
    binding a proof must carry from its chain, Federation, task and wallet)."""
    return binding_chunks(bytes([seed]) * 32)


test_binding.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def prove(artifacts: CircuitArtifacts, quantizer: Quantizer, seed: int, global_model: np.ndarray,
          binding: np.ndarray | None = None) -> ProvenStep:
    rng = np.random.default_rng(seed)
    spec = artifacts.spec
    x = quantizer.to_int(rng.uniform(-3, 3, (spec.batch, spec.features)))
    y = quantizer.to_int(rng.integers(0, 2, spec.batch))
    binding = test_binding(seed) if binding is None else binding
    step = ProvenStep(global_model, x, y, binding, prove_step(artifacts, global_model, x, y, binding))
    KNOWN_UPDATES[step.proof.update_commitment] = list(step.proof.update)
    return step


# Proofs bound to a (chain, Federation, task, wallet), by binding, data seed and start model.
_BOUND: dict[tuple[object, ...], ProvenStep] = {}


def prove_for(artifacts: CircuitArtifacts, quantizer: Quantizer, federation: Federation, task_id: int,
              wallet: str, seed: int, global_model: np.ndarray) -> ProvenStep:
    """A real proof for ``wallet`` in ``task_id`` on ``federation``: it carries the binding the
    contract derives for exactly that context, so it is accepted there and nowhere else.
    Proofs are never shared between tasks or wallets; one context's proof is made once."""
    binding = binding_value(federation.w3.eth.chain_id, federation.address, task_id, wallet)
    key = (tuple(int(c) for c in binding), seed, tuple(int(v) for v in global_model))
    if key not in _BOUND:
        _BOUND[key] = prove(artifacts, quantizer, seed, global_model, binding)
    return _BOUND[key]


@dataclass(frozen=True)
class Prover:
    """``prover.step(federation, task_id, account, seed, model)``: a bound proof, in one line."""

    artifacts: CircuitArtifacts
    quantizer: Quantizer

    def step(self, federation: Federation, task_id: int, account: LocalAccount | str, seed: int,
             global_model: np.ndarray) -> ProvenStep:
        wallet = account if isinstance(account, str) else account.address
        return prove_for(self.artifacts, self.quantizer, federation, task_id, wallet, seed, global_model)


@pytest.fixture(scope="session")
def prover(artifacts: CircuitArtifacts, quantizer: Quantizer) -> Prover:
    return Prover(artifacts, quantizer)


@pytest.fixture(scope="session")
def pinned_prover(quantizer: Quantizer) -> Prover:
    """The step of a task that pins data: its proofs commit to the batch (H(X), H(y)); the same
    circuit `post_logreg_task(pin_data=True)` builds."""
    return Prover(prepare_circuit(replace(default_spec("logreg", 30), commits_data=True)), quantizer)


def submit_step(federation: Federation, relayer: LocalAccount, signer: LocalAccount, task_id: int, round_: int,
                step: ProvenStep, update: list[int] | None = None, proof: bytes | None = None,
                gas: int | None = None):  # type: ignore[no-untyped-def]
    """Sign and relay a step as its participant would (``update``: other values, signed as such)."""
    values = list(step.proof.update) if update is None else update
    proof_bytes = step.proof.proof_bytes if proof is None else proof
    commitment = commit(np.array(values, dtype=np.int64))
    signature = federation.sign_submission(signer, task_id, round_, commitment, values, step.proof.instances,
                                           proof_bytes)
    return federation.submit_update(relayer, task_id, round_, signer.address, commitment, values, proof_bytes,
                                    step.proof.instances, signature, gas=gas)


@dataclass
class Aggregation:
    """The FedAvg circuit of the test step, and its proofs (one per distinct accepted set)."""

    artifacts: CircuitArtifacts
    update_scale: int  # the step's output scale: what the averaged updates carry
    proofs: dict[tuple[object, ...], AggregationProof]

    def prove(self, updates: list[list[int]], samples: list[int], model: list[int]) -> AggregationProof:
        key = (tuple(tuple(u) for u in updates), tuple(samples), tuple(model))
        if key not in self.proofs:
            self.proofs[key] = prove_aggregation(self.artifacts, updates, samples, model)
        return self.proofs[key]


@pytest.fixture(scope="session")
def aggregation(artifacts: CircuitArtifacts) -> Aggregation:
    return Aggregation(prepare_aggregation_circuit(artifacts, AGGREGATION_SLOTS), artifacts.update_scale, {})


def deploy_aggregation_verifier(w3: Web3, account: LocalAccount, aggregation: Aggregation) -> str:
    address, _ = deploy_circuit_verifier(w3, account, ezkl_verifier(aggregation.artifacts))
    AGGREGATION_VERIFIERS[chain_key(w3)] = address
    return address


def assert_gas_decides_no_verdict(call: Any, gases: range) -> None:
    """A verifier's ``call`` on a valid proof, at each gas: true, or a revert (out of gas,
    ``VerifierOutOfGas``: no verdict, the Federation judges nobody), never false; a revert at the
    lowest gas and true at the highest, so the range spans the edge."""
    outcomes: dict[int, object] = {}
    for gas in gases:
        try:
            outcomes[gas] = call.call({"gas": gas})
        except Exception as exc:
            outcomes[gas] = type(exc).__name__
    assert False not in outcomes.values(), outcomes
    assert outcomes[gases[0]] is not True and outcomes[gases[-1]] is True, outcomes


def advance_chain_time(w3: Web3, seconds: int) -> None:
    """Move anvil's clock forward (and mine a block at the new time)."""
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def wait_out_collection_window(federation: Federation, task_id: int, round_: int) -> None:
    """Let the round's collection window pass on chain, unless every active participant was accepted."""
    task, state = federation.task(task_id), federation.round(task_id, round_)
    if state.accepted >= task.active_participants:
        return
    now = int(federation.w3.eth.get_block("latest")["timestamp"])
    if now < state.opened_at + task.collection_window:
        advance_chain_time(federation.w3, state.opened_at + task.collection_window - now)


# A well-formed CID for tasks whose artifacts no test reads (cid_of(b"zkfl test stand-in")).
STAND_IN_CID = cid_of(b"zkfl test stand-in")


def publish_aggregate(federation: Federation, aggregation: Aggregation, aggregator: LocalAccount, task_id: int,
                      round_: int, model_cid: str = STAND_IN_CID, wait: bool = True) -> np.ndarray:
    """What an honest aggregator does: FedAvg the round's accepted updates (in the
    contract's order), prove it, publish (after the collection window unless ``wait`` is
    False). Returns the new global model."""
    if wait:
        wait_out_collection_window(federation, task_id, round_)
    order = federation.accepted_updates(task_id, round_)
    updates = [KNOWN_UPDATES[c] for c in order]
    samples = [federation.task(task_id).samples_per_update] * len(updates)
    model = fedavg(updates, samples, aggregation.update_scale, aggregation.artifacts.spec.scale)
    proof = aggregation.prove(updates, samples, model)
    federation.publish_global_model(aggregator, task_id, round_, commit(np.array(model, dtype=np.int64)),
                                    model_cid, STAND_IN_CID, proof.proof_bytes, proof.instances)
    return np.array(model, dtype=np.int64)


@pytest.fixture(scope="session")
def initial_model(artifacts: CircuitArtifacts) -> np.ndarray:
    return np.zeros(artifacts.spec.param_count, dtype=np.int64)


@pytest.fixture(scope="session")
def step_a(artifacts: CircuitArtifacts, quantizer: Quantizer, initial_model: np.ndarray) -> ProvenStep:
    """A real proof of one step from the initial model (client A's data)."""
    return prove(artifacts, quantizer, 1, initial_model)


@pytest.fixture(scope="session")
def step_b(artifacts: CircuitArtifacts, quantizer: Quantizer, initial_model: np.ndarray) -> ProvenStep:
    """A second real proof from the initial model (client B's data)."""
    return prove(artifacts, quantizer, 2, initial_model)


@pytest.fixture(scope="session")
def next_model(artifacts: CircuitArtifacts, step_a: ProvenStep) -> np.ndarray:
    """G1 = FedAvg of wallet 2's round-0 update alone (what a test aggregator publishes)."""
    from zkfl.aggregator.fedavg import fedavg

    spec = artifacts.spec
    return np.array(fedavg([step_a.proof.update], [spec.batch], step_a.proof.update_scale, spec.scale),
                    dtype=np.int64)


@pytest.fixture(scope="session")
def step_a_next(artifacts: CircuitArtifacts, quantizer: Quantizer, next_model: np.ndarray) -> ProvenStep:
    """Wallet 2's round-1 step from G1, on the same data as its round-0 step."""
    return prove(artifacts, quantizer, 1, next_model)


@pytest.fixture(scope="session")
def step_b_next(artifacts: CircuitArtifacts, quantizer: Quantizer, next_model: np.ndarray) -> ProvenStep:
    """Wallet 3's round-1 step from G1."""
    return prove(artifacts, quantizer, 2, next_model)


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    with start_anvil() as process:
        yield process


# The session chain, once connected: tests move its clock forward (collection windows,
# deadlines), so after a while it runs hours ahead of the wall clock.
SESSION_CHAIN: list[Web3] = []


@pytest.fixture(scope="session")
def w3(anvil: AnvilProcess) -> Web3:
    SESSION_CHAIN[:] = [connect(anvil.rpc_url)]
    return SESSION_CHAIN[0]


def session_chain_now() -> int:
    """Now, by the session chain's clock where it runs ahead of the wall's."""
    latest = int(SESSION_CHAIN[0].eth.get_block("latest")["timestamp"]) if SESSION_CHAIN else 0
    return max(latest, int(time.time()))


@pytest.fixture(scope="session")
def accounts() -> list[LocalAccount]:
    return [account_from_key(k) for k in dev_keys()]


@pytest.fixture(scope="session")
def federation(w3: Web3, accounts: list[LocalAccount]) -> Federation:
    return Federation.deploy(w3, accounts[0])


@pytest.fixture(scope="session")
def verifier_address(w3: Web3, accounts: list[LocalAccount], artifacts: CircuitArtifacts,
                     aggregation: Aggregation) -> str:
    """The step verifier on the session chain (and, beside it, the FedAvg verifier)."""
    address, _ = deploy_verifier(w3, accounts[0], ezkl_verifier(artifacts))
    deploy_aggregation_verifier(w3, accounts[0], aggregation)
    return address


def task_params(aggregator: str, verifier: str, global_model: np.ndarray, rounds: int = 2,
                deadline_in: int = 3600, min_stake: int = 10**17, samples: int = 16,
                pin_data: bool = False, now: int | None = None, *, aggregation_verifier: str,
                slots: int = AGGREGATION_SLOTS, update_values: int = 31, **terms: object) -> TaskParams:
    """A task's terms for the tests; its deadline counts from ``now``, by default the session chain's."""
    return TaskParams(
        aggregator=aggregator, verifier=verifier, aggregation_verifier=aggregation_verifier, aggregation_slots=slots,
        deadline=(now or session_chain_now()) + deadline_in, rounds=rounds,
        samples_per_update=samples, min_stake=min_stake, update_values=update_values,
        global_commitment=commit(global_model), model_cid=STAND_IN_CID, package_cid=STAND_IN_CID,
        pin_data=pin_data, **{"collection_window": TEST_COLLECTION_WINDOW, **terms})  # type: ignore[arg-type]


class Observed(Delivery):
    """A real delivery, passed through, that remembers what the aggregator did with it."""

    def __init__(self, inner: Delivery) -> None:
        self.inner = inner
        self.body = inner.body
        self.outcome: str | None = None

    def ack(self) -> None:
        assert self.outcome is None, "settled twice"
        self.inner.ack()
        self.outcome = "ack"

    def reject(self, reason: str) -> None:
        assert self.outcome is None, "settled twice"
        self.inner.reject(reason)
        self.outcome = f"dead: {reason}"

    def retry_later(self) -> None:
        assert self.outcome is None, "settled twice"
        self.inner.retry_later()
        self.outcome = "requeued"


@pytest.fixture()
def rabbitmq_url() -> str:
    """The real broker; a test needing it fails (never skips) when it is absent."""
    from zkfl.middleware.transport.rabbitmq import RabbitMQTransport

    RabbitMQTransport(BROKER_URL).close()
    return BROKER_URL


def post_logreg_task(w3: Web3, rounds: int = 1, min_stake: int = 10**17, **terms: object):  # type: ignore[no-untyped-def]
    """A real task (package, verifier, Federation) on breast_cancer, posted by dev account 0
    with dev account 1 as its aggregator: the set-up the end-to-end tests share."""
    from zkfl.organisation import post_task

    keys = dev_keys()
    # A window long enough for slow proving on a loaded machine: every test round closes early, once
    # all its participants were accepted.
    return post_task(w3, account_from_key(keys[0]), model="logreg", dataset="breast_cancer", rounds=rounds,
                     reward_wei=10**18, min_stake_wei=min_stake, deadline_seconds=3600,
                     aggregator=account_from_key(keys[1]).address,
                     **{"collection_window": 1800, **terms})  # type: ignore[arg-type]


def aggregation_verifier_for(federation: Federation) -> str:
    """The FedAvg verifier deployed beside ``federation`` (by the fixture of its chain)."""
    return AGGREGATION_VERIFIERS[chain_key(federation.w3)]
