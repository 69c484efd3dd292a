"""ezkl's reusable verifier behind an adapter: how circuits whose own verifier is over
the 24,576-byte limit (softmax, MLP) are verified on chain. Tested with the logreg
circuit, whose proofs are cheap; the adapter does not depend on the circuit."""

from __future__ import annotations

import pytest

from tests.conftest import aggregation_verifier_for, task_params, test_binding
from tests.test_federation_contract import submit
from zkfl.contracts.federation import EIP170_LIMIT, Reason, adapter_contract, deploy_reusable_adapter
from zkfl.contracts.solc import compile_contract
from zkfl.errors import ZkflError
from zkfl.prover.commit import commit
from zkfl.prover.evm import reusable_verifier_source, vka_words
from zkfl.prover.keys import check_verifier_on_chain
from zkfl.prover.quantize import FIELD_MODULUS


@pytest.fixture(scope="module")
def adapter(w3, accounts, artifacts) -> str:  # type: ignore[no-untyped-def]
    address, _, _ = deploy_reusable_adapter(w3, accounts[0], reusable_verifier_source(artifacts), vka_words(artifacts))
    return address


def test_reusable_pieces_fit_the_size_limit(artifacts) -> None:  # type: ignore[no-untyped-def]
    assert compile_contract(reusable_verifier_source(artifacts), "Halo2VerifierReusable").deployed_size < EIP170_LIMIT
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


def test_federation_task_on_the_adapter(federation, accounts, adapter, initial_model, step_a, step_b,
                                        verifier_address) -> None:  # type: ignore[no-untyped-def]
    params = task_params(accounts[1].address, adapter, initial_model,
                         aggregation_verifier=aggregation_verifier_for(federation))
    task_id = federation.create_task(accounts[0], params, 10**18)
    for seed, wallet in ((1, accounts[2]), (2, accounts[3])):
        federation.join(wallet, task_id, 10**17, commit(test_binding(seed)))
    accepted = submit(federation, accounts[1], accounts[2], task_id, 0, step_a)
    assert accepted.accepted
    proof = bytearray(step_b.proof.proof_bytes)
    proof[300] ^= 1
    rejected = submit(federation, accounts[1], accounts[3], task_id, 0, step_b, proof=bytes(proof))
    assert not rejected.accepted and rejected.reason == Reason.INVALID_PROOF


def test_clients_check_the_adapter_before_proving(w3, accounts, adapter, artifacts) -> None:  # type: ignore[no-untyped-def]
    check_verifier_on_chain(w3, adapter, artifacts)
    words = vka_words(artifacts)
    forged = [*words[:-1], bytes(31) + b"\x01"]
    other, _, _ = deploy_reusable_adapter(w3, accounts[0], reusable_verifier_source(artifacts), forged)
    with pytest.raises(ZkflError, match="another circuit's verifying key"):
        check_verifier_on_chain(w3, other, artifacts)
