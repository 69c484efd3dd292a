"""ezkl's reusable verifier behind an adapter: how circuits whose own verifier is over
the 24,576-byte limit (softmax, MLP) are verified on chain. Tested with the logreg
circuit, whose proofs are cheap; the adapter does not depend on the circuit. (A relayer
starving the adapter of gas: tests/test_incentives.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import ProvenStep, aggregation_verifier_for, submit_step, task_params
from zkfl.contracts.federation import EIP170_LIMIT, Reason, Status
from zkfl.contracts.solc import compile_contract
from zkfl.contracts.verifiers import adapter_contract, check_verifier_on_chain, deploy_reusable_adapter
from zkfl.errors import ZkflError
from zkfl.field.quantize import FIELD_MODULUS
from zkfl.prover.ezkl.evm import verifier as ezkl_verifier
from zkfl.prover.records import BINDING_INDEX, StepProof

STAKE = 10**17
REWARD = 10**18


@pytest.fixture(scope="module")
def adapter(w3, accounts, artifacts) -> str:  # type: ignore[no-untyped-def]
    address, _, _ = deploy_reusable_adapter(w3, accounts[0], ezkl_verifier(artifacts).reusable())
    return address


def test_reusable_pieces_fit_the_size_limit(artifacts) -> None:  # type: ignore[no-untyped-def]
    shared = ezkl_verifier(artifacts).reusable()
    assert compile_contract(shared.solidity, shared.contract).deployed_size < EIP170_LIMIT
    assert adapter_contract().deployed_size < EIP170_LIMIT


def test_adapter_accepts_exactly_the_valid_proofs(w3, adapter, step_a) -> None:  # type: ignore[no-untyped-def]
    contract = w3.eth.contract(address=adapter, abi=adapter_contract().abi)
    proof, values = step_a.proof.proof_bytes, step_a.proof.instances
    assert contract.functions.verifyProof(proof, values).call() is True
    for index in range(len(values)):
        changed = list(values)
        changed[index] = (changed[index] + 1) % FIELD_MODULUS
        assert contract.functions.verifyProof(proof, changed).call() is False, index
    broken = bytearray(proof)
    broken[200] ^= 1
    assert contract.functions.verifyProof(bytes(broken), values).call() is False


@pytest.mark.slow
def test_federation_task_on_the_adapter(federation, accounts, adapter, initial_model, verifier_address,  # type: ignore[no-untyped-def]
                                        prover) -> None:
    """Wallet 2's proof is accepted through the adapter. Wallet 3 signs the same proof with its
    own binding in place of wallet 2's (every other public value the same, so every check
    the contract makes itself passes): the adapter's verifier rejects it, and it is slashed."""
    params = task_params(accounts[1].address, adapter, initial_model,
                         aggregation_verifier=aggregation_verifier_for(federation))
    task_id = federation.create_task(accounts[0], params, REWARD)
    honest, copier = accounts[2], accounts[3]
    for wallet in (honest, copier):
        federation.join(wallet, task_id, STAKE)
    step = prover.step(federation, task_id, honest, 1, initial_model)
    assert step.proof.binding_commitment == federation.participant(task_id, honest.address).binding
    result = submit_step(federation, accounts[1], honest, task_id, 0, step)
    assert (result.accepted, result.reason) == (True, Reason.NONE)
    assert federation.submission_status(task_id, 0, honest.address) == (Status.ACCEPTED, Reason.NONE)

    rebound = list(step.proof.instances)
    rebound[BINDING_INDEX] = federation.participant(task_id, copier.address).binding
    assert rebound != step.proof.instances
    copied = ProvenStep(step.global_model, step.x, step.y, step.binding,
                        StepProof(step.proof.proof_bytes, rebound, list(step.proof.update)))
    result = submit_step(federation, accounts[1], copier, task_id, 0, copied)
    assert (result.accepted, result.reason) == (False, Reason.INVALID_PROOF)
    assert federation.participant(task_id, copier.address).slashed
    assert federation.accepted_updates(task_id, 0) == [step.proof.update_commitment]


def test_clients_check_the_adapter_before_proving(w3, accounts, adapter, artifacts) -> None:  # type: ignore[no-untyped-def]
    check_verifier_on_chain(w3, adapter, ezkl_verifier(artifacts))
    shared = ezkl_verifier(artifacts).reusable()
    forged = [*shared.vka_words[:-1], bytes(31) + b"\x01"]
    other, _, _ = deploy_reusable_adapter(w3, accounts[0], replace(shared, vka_words=forged))
    with pytest.raises(ZkflError, match="another circuit's verifying key"):
        check_verifier_on_chain(w3, other, ezkl_verifier(artifacts))


def test_a_verifier_made_for_another_srs_is_refused_though_its_package_was_fetched_first(  # type: ignore[no-untyped-def]
        w3, accounts, artifacts, tmp_path) -> None:
    """Two packages with the same compiled circuit but different SRSs, so different keys: an
    attacker's (whose SRS secret it knows) and an honest-looking one whose verifier address
    holds the attacker's verifier. A party that fetched the attacker's package first must not
    compare the second task's chain code with a verifier left over from the first's key."""
    from zkfl.artifacts import TaskPackage
    from zkfl.contracts.verifiers import deploy_verifier
    from zkfl.field.ezkl_api import ezkl
    from zkfl.prover.ezkl.keys import artifacts_from_package
    from zkfl.store import LocalStore

    store = LocalStore(tmp_path / "store")
    known_srs, vk, pk = tmp_path / "known.srs", tmp_path / "vk.key", tmp_path / "pk.key"
    ezkl.gen_srs(str(known_srs), artifacts.logrows)  # its toxic waste is the attacker's to keep
    ezkl.setup(str(artifacts.compiled), str(vk), str(pk), srs_path=str(known_srs))
    shared = {"settings": store.put_file(artifacts.settings), "compiled": store.put_file(artifacts.compiled)}

    def package(vk_file, srs_file) -> TaskPackage:  # type: ignore[no-untyped-def]
        cids = {**shared, "vk": store.put_file(vk_file), "srs": store.put_file(srs_file)}
        return TaskPackage(artifacts.spec, "breast_cancer", "ezkl", artifacts.update_scale, cids)

    attackers = artifacts_from_package(package(vk, known_srs), store)
    forged_verifier, _ = deploy_verifier(w3, accounts[0], ezkl_verifier(attackers))
    honest = artifacts_from_package(package(artifacts.vk, artifacts.srs), store)
    assert honest.root != attackers.root  # nothing derived from the first key is reused
    assert ezkl_verifier(honest).solidity.read_text() == ezkl_verifier(artifacts).solidity.read_text()
    with pytest.raises(ZkflError, match="not generated from this task's verifying key"):
        check_verifier_on_chain(w3, forged_verifier, ezkl_verifier(honest))
