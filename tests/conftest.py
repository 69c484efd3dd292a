"""Shared, expensive fixtures: one circuit, one anvil, a few real proofs per session.

Nothing here is mocked: the chain is anvil, the broker is the RabbitMQ at
ZKFL_TEST_BROKER (default 127.0.0.1:5672), the proofs are ezkl's. A missing service
fails the tests that need it; it never skips them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Caches (circuits, keys, SRS, solc output) survive between local runs; CI starts clean.
os.environ.setdefault("ZKFL_HOME", str(REPO / ".zkfl" / "test-home"))

import numpy as np  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from web3 import Web3  # noqa: E402

from zkfl.circuits.cache import CircuitArtifacts  # noqa: E402
from zkfl.circuits.registry import default_spec  # noqa: E402
from zkfl.contracts.chain import AnvilProcess, account_from_key, connect, dev_keys, start_anvil  # noqa: E402
from zkfl.contracts.federation import Federation, TaskParams, deploy_verifier  # noqa: E402
from zkfl.organisation import prepare_circuit  # noqa: E402
from zkfl.prover.binding import binding_chunks  # noqa: E402
from zkfl.prover.commit import commit  # noqa: E402
from zkfl.prover.ezkl_backend import STEP_PUBLIC_LAYOUT, StepProof, prove_step  # noqa: E402
from zkfl.prover.quantize import Quantizer  # noqa: E402

BROKER_URL = os.environ.get("ZKFL_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672/%2F")


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
    """A fixed binding value per test wallet, so one proof serves every test task."""
    return binding_chunks(bytes([seed]) * 32)


test_binding.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def prove(artifacts: CircuitArtifacts, quantizer: Quantizer, seed: int, global_model: np.ndarray,
          binding: np.ndarray | None = None) -> ProvenStep:
    rng = np.random.default_rng(seed)
    spec = artifacts.spec
    x = quantizer.to_int(rng.uniform(-3, 3, (spec.batch, spec.features)))
    y = quantizer.to_int(rng.integers(0, 2, spec.batch))
    binding = test_binding(seed) if binding is None else binding
    return ProvenStep(global_model, x, y, binding, prove_step(artifacts, global_model, x, y, binding))


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
def anvil() -> Iterator[AnvilProcess]:
    with start_anvil() as process:
        yield process


@pytest.fixture(scope="session")
def w3(anvil: AnvilProcess) -> Web3:
    return connect(anvil.rpc_url)


@pytest.fixture(scope="session")
def accounts() -> list[LocalAccount]:
    return [account_from_key(k) for k in dev_keys()]


@pytest.fixture(scope="session")
def federation(w3: Web3, accounts: list[LocalAccount]) -> Federation:
    return Federation.deploy(w3, accounts[0])


@pytest.fixture(scope="session")
def verifier_address(w3: Web3, accounts: list[LocalAccount], artifacts: CircuitArtifacts) -> str:
    address, _ = deploy_verifier(w3, accounts[0], artifacts.verifier_sol)
    return address


def task_params(aggregator: str, verifier: str, global_model: np.ndarray, rounds: int = 2,
                deadline_in: int = 3600, min_stake: int = 10**17, samples: int = 16,
                pin_data: bool = False, now: int | None = None, **terms: object) -> TaskParams:
    return TaskParams(
        aggregator=aggregator, verifier=verifier, deadline=(now or int(time.time())) + deadline_in, rounds=rounds,
        samples_per_update=samples, public_value_count=len(STEP_PUBLIC_LAYOUT), min_stake=min_stake,
        global_commitment=commit(global_model), model_digest=b"\x11" * 32, package_digest=b"\x22" * 32,
        pin_data=pin_data, **terms)  # type: ignore[arg-type]


@pytest.fixture()
def rabbitmq_url() -> str:
    """The real broker; a test needing it fails (never skips) when it is absent."""
    from zkfl.middleware.transport.rabbitmq import RabbitMQTransport

    RabbitMQTransport(BROKER_URL).close()
    return BROKER_URL


def post_logreg_task(w3: Web3, rounds: int = 1, min_stake: int = 10**17):  # type: ignore[no-untyped-def]
    """A real task (package, verifier, Federation) on breast_cancer, posted by dev account 0
    with dev account 1 as its aggregator: the set-up the end-to-end tests share."""
    from zkfl.organisation import post_task

    keys = dev_keys()
    return post_task(w3, account_from_key(keys[0]), model="logreg", dataset="breast_cancer", rounds=rounds,
                     reward_wei=10**18, min_stake_wei=min_stake, deadline_seconds=3600,
                     aggregator=account_from_key(keys[1]).address)
