"""The ZoKrates backend: real Groth16 proofs, three verifiers that agree, its soundness traps,
and the Federation on anvil judging its proofs like ezkl's."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
from eth_account.signers.local import LocalAccount
from py_ecc.optimized_bn128 import FQ12, multiply, neg, normalize
from py_ecc.optimized_bn128 import add as ec_add
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from tests.conftest import aggregation_verifier_for, assert_gas_decides_no_verdict, task_params, test_binding
from zkfl.audit import calldata_of
from zkfl.circuits.registry import default_spec, family
from zkfl.circuits.zokrates_step import FixedPoint
from zkfl.contracts.chain import decode_revert
from zkfl.contracts.federation import Federation, Reason, SignedUpdate, Status, deploy
from zkfl.contracts.solc import compile_contract
from zkfl.errors import ChainError, ProofError, ZkflError
from zkfl.field.binding import binding_value
from zkfl.field.commit import commit
from zkfl.field.poseidon import P, poseidon_commit
from zkfl.field.quantize import Quantizer
from zkfl.prover.records import INPUTS_VALID, StepProof
from zkfl.prover.zokrates import groth16
from zkfl.prover.zokrates.circuit import ZokratesCircuit, build_circuit, check_key, prove_step
from zkfl.prover.zokrates.driver import WitnessError, run
from zkfl.prover.zokrates.step import linear_step, packed_features

STAKE, REWARD = 10**17, 10**18
BASE_FIELD = groth16.field_modulus


@dataclass(frozen=True)
class ZkStep:
    g: np.ndarray
    x: np.ndarray
    y: np.ndarray
    binding: np.ndarray
    proof: StepProof


@pytest.fixture(scope="module")
def circuit() -> ZokratesCircuit:
    return build_circuit(default_spec("logreg", 30))


def _prove(circuit: ZokratesCircuit, seed: int, binding: np.ndarray | None = None,
           g: np.ndarray | None = None) -> ZkStep:
    rng = np.random.default_rng(seed)
    spec, q = circuit.spec, Quantizer(circuit.spec.scale)
    g = np.zeros(spec.param_count, dtype=np.int64) if g is None else g
    x = q.to_int(rng.uniform(-3, 3, (spec.batch, spec.features)))
    y = q.to_int(rng.integers(0, 2, spec.batch))
    binding = test_binding(seed) if binding is None else binding
    return ZkStep(g, x, y, binding, prove_step(circuit, g, x, y, binding))


def _bound_step(circuit: ZokratesCircuit, federation: Federation, task_id: int, wallet: LocalAccount, seed: int,
                g: np.ndarray | None = None) -> ZkStep:
    """A real proof for ``wallet`` in ``task_id`` on ``federation``: it carries the binding the
    contract derived when the wallet joined, so it counts there and nowhere else."""
    binding = binding_value(federation.w3.eth.chain_id, federation.address, task_id, wallet.address)
    step = _prove(circuit, seed, binding, g)
    assert step.proof.binding_commitment == federation.participant(task_id, wallet.address).binding
    return step


@pytest.fixture(scope="module")
def zk_a(circuit: ZokratesCircuit) -> ZkStep:
    return _prove(circuit, 1)


@pytest.fixture(scope="module")
def zk_verifier(w3: Web3, accounts: list[LocalAccount], circuit: ZokratesCircuit) -> Any:
    compiled = compile_contract(circuit.verifier_sol, "Verifier")
    address, _ = deploy(w3, accounts[0], compiled)
    return w3.eth.contract(address=address, abi=compiled.abi)


@pytest.mark.slow
def test_public_values_are_ezkls_commitments_and_the_update_is_one_sgd_step(circuit, zk_a) -> None:  # type: ignore[no-untyped-def]
    g, update = zk_a.g, np.array(zk_a.proof.update)
    # The sixth value is the input check's commitment: the program only proves batches within
    # the task's bounds, so it is always H([0]), the contract's INPUTS_VALID. The task does not
    # pin data, so the program hashes neither X nor Y: H([0]) stands in their places too (the
    # softmax test below proves a step that commits to its data).
    assert not circuit.spec.commits_data
    assert zk_a.proof.instances == [commit(g), INPUTS_VALID, INPUTS_VALID, commit(zk_a.binding), commit(update),
                                    INPUTS_VALID]
    assert poseidon_commit([0]) == INPUTS_VALID and zk_a.proof.inputs_valid
    spec, q = circuit.spec, Quantizer(circuit.spec.scale)
    expected = family("logreg").float_step(spec, np.zeros(spec.param_count), q.to_float(zk_a.x),
                                              q.to_float(zk_a.y).reshape(-1, 1))
    assert np.abs(update / 2.0**spec.scale - expected).max() < 1e-3
    assert circuit.verifying_key().unbound_inputs() == []


# ---------------------------------------------------------------- three verifiers agree

def _node_verifies(circuit: ZokratesCircuit, proof: bytes, values: list[int]) -> bool:
    if len(proof) != groth16.PROOF_BYTES:
        return False  # not expressible as ZoKrates proof JSON
    w = [f"0x{v:064x}" for v in groth16.decode_proof(proof)]
    document = {"scheme": "g16", "curve": "bn128", "proof": {"a": w[0:2], "b": [w[2:4], w[4:6]], "c": w[6:8]},
                "inputs": [f"0x{v:064x}" for v in values]}
    try:
        return bool(run("verify", vk=circuit.vk, proof=document)["ok"])
    except ZkflError:
        return False  # zokrates-js refuses malformed points with an error


def _contract_verifies(contract: Any, proof: bytes, values: list[int]) -> bool:
    try:
        return bool(contract.functions.verifyProof(proof, values).call())
    except Exception:  # a revert is a rejection, as the Federation reads it
        return False


def _words(proof: bytes) -> list[int]:
    return groth16.decode_proof(proof)


def _pack(words: list[int]) -> bytes:
    return b"".join(w.to_bytes(32, "big") for w in words)


def _cases(zk_a: ZkStep) -> dict[str, tuple[bytes, list[int], bool]]:
    good, values = zk_a.proof.proof_bytes, zk_a.proof.instances
    w = _words(good)
    swapped = [w[0], w[1], w[3], w[2], w[5], w[4], w[6], w[7]]  # G2 as [imaginary, real]: the precompile's order
    cases: dict[str, tuple[bytes, list[int], bool]] = {
        "good": (good, values, True),
        "G2 coordinates swapped": (_pack(swapped), values, False),
        "a negated": (_pack([w[0], BASE_FIELD - w[1], *w[2:]]), values, False),
        "a off the curve": (_pack([w[0], (w[1] + 1) % BASE_FIELD, *w[2:]]), values, False),
        "c.y not reduced (y + q)": (_pack([*w[:7], w[7] + BASE_FIELD]), values, False),
        "c replaced by a": (_pack([*w[:6], w[0], w[1]]), values, False),
        "short proof": (good[:-32], values, False),
        "one public value too few": (good, values[:-1], False),
        "public value + r (same residue)": (good, [values[0] + P, *values[1:]], False),
    }
    for i, name in enumerate(("global model", "features", "labels", "binding", "update", "input check")):
        cases[f"{name} changed"] = (good, [v + (k == i) for k, v in enumerate(values)], False)
    return cases


@pytest.mark.slow
def test_node_py_ecc_and_the_contract_agree_on_good_and_bad_proofs(circuit, zk_a, zk_verifier) -> None:  # type: ignore[no-untyped-def]
    vk = circuit.verifying_key()
    verdicts = {}
    for name, (proof, values, expected) in _cases(zk_a).items():
        verdicts[name] = (groth16.verify(vk, proof, values)[0], _node_verifies(circuit, proof, values),
                          _contract_verifies(zk_verifier, proof, values), expected)
    disagreements = {k: v for k, v in verdicts.items() if len(set(v)) != 1}
    assert not disagreements, f"(py-ecc, node, contract, expected): {disagreements}"
    # The batch verifier decides each case the same way beside a good proof, first or second: the
    # first proof's coefficient is 1, so its points reach the pairing without an ecMul.
    good = (zk_a.proof.proof_bytes, zk_a.proof.instances)
    batched = {name: (_batch_verifies(zk_verifier, [good, (proof, values)]),
                      _batch_verifies(zk_verifier, [(proof, values), good]))
               for name, (proof, values, _) in _cases(zk_a).items()}
    wrong = {name: verdict for name, verdict in batched.items() if verdict != (verdicts[name][-1],) * 2}
    assert not wrong, f"verifyProofs disagrees with the expected verdict: {wrong}"
    # Gas decides no verdict: with too little, verifyProof reverts, it never says false of a valid proof.
    # Its 250k starting guard, and what it uses, lie in this range.
    assert_gas_decides_no_verdict(zk_verifier.functions.verifyProof(*good), range(200_000, 330_000, 2_000))


def _batch_verifies(contract: Any, items: list[tuple[bytes, list[int]]]) -> bool:
    try:
        return bool(contract.functions.verifyProofs([p for p, _ in items], [v for _, v in items]).call())
    except Exception:  # a revert is not a verdict of "valid"
        return False


def _sum_check_holds(vk: groth16.VerifyingKey, items: list[tuple[bytes, list[int]]]) -> bool:
    """The batch equation with every coefficient 1: prod e(a_i, b_i) = e(alpha, beta)^n
    e(sum vk_x_i, gamma) e(sum c_i, delta). What a batch verifier without random weights checks."""
    pairs, vk_x, c_sum = [], None, None
    for proof, values in items:
        w = groth16.decode_proof(proof)
        pairs.append((groth16.g1(w[0:2]), groth16.g2(w[2:6])))
        x = vk.gamma_abc[0]
        for value, point in zip(values, vk.gamma_abc[1:], strict=True):
            x = ec_add(x, multiply(point, value))
        vk_x = x if vk_x is None else ec_add(vk_x, x)
        c = groth16.g1(w[6:8])
        c_sum = c if c_sum is None else ec_add(c_sum, c)
    pairs += [(neg(multiply(vk.alpha, len(items))), vk.beta), (neg(vk_x), vk.gamma), (neg(c_sum), vk.delta)]
    return groth16._product_is_one(pairs, FQ12.one())


@pytest.mark.slow
def test_two_bad_proofs_whose_errors_cancel_in_a_plain_sum_are_refused_as_a_batch(zk_a, zk_verifier, circuit) -> None:  # type: ignore[no-untyped-def]
    """c + T in one proof and c - T in the other: each is invalid, and their errors cancel
    when the batch equation sums the proofs with equal weights. verifyProofs weighs each proof
    by a coefficient drawn from a hash of the whole batch, so they do not cancel there."""
    vk, proof, values = circuit.verifying_key(), zk_a.proof.proof_bytes, zk_a.proof.instances
    w = _words(proof)
    c, t = groth16.g1(w[6:8]), multiply(groth16.g1(w[0:2]), 7)

    def with_c(point: Any) -> bytes:
        x, y = normalize(point)
        return _pack([*w[:6], int(x), int(y)])

    plus, minus = with_c(ec_add(c, t)), with_c(ec_add(c, neg(t)))
    items = [(plus, values), (minus, values)]
    assert not groth16.verify(vk, plus, values)[0] and not groth16.verify(vk, minus, values)[0]
    assert _sum_check_holds(vk, items)  # the attack works on an unweighted batch check
    assert not _batch_verifies(zk_verifier, items)
    assert _batch_verifies(zk_verifier, [(proof, values), (proof, values)])  # the control: valid proofs pass


def test_g2_order_json_and_py_ecc_real_first_precompile_imaginary_first(circuit, zk_a) -> None:  # type: ignore[no-untyped-def]
    """ZoKrates' JSON and py-ecc's FQ2 both take [real, imaginary]; the precompile takes
    imaginary first, and the generated Pairing library swaps (X[1] before X[0])."""
    b = zk_a.proof.proof["proof"]["b"]
    words = _words(zk_a.proof.proof_bytes)
    assert words[2:6] == [int(b[0][0], 16), int(b[0][1], 16), int(b[1][0], 16), int(b[1][1], 16)]
    source = circuit.verifier_sol.read_text()
    assert "input[i * 6 + 2] = p2[i].X[1];" in source and "input[i * 6 + 3] = p2[i].X[0];" in source
    ok, reason = groth16.verify(circuit.verifying_key(), _pack([*words[:2], words[3], words[2], words[5], words[4],
                                                                *words[6:]]), zk_a.proof.instances)
    assert not ok and "twist" in reason


# ---------------------------------------------------------------- soundness traps

_TRAP = """
import "utils/pack/bool/unpack_unchecked";
import "utils/pack/bool/pack";
{range}
// round(v / 16) with hints: v + 8 = 16 q + r, r a 4-bit remainder.
def main(private field v, private field q, private field r) -> field {{
    assert(v + 8 == q * 16 + r);
    assert(in_range(r));
    return q;
}}
"""
_ASSERTED = """def in_range(field r) -> bool {
    bool[4] bits = unpack_unchecked::<4>(r);
    assert(pack(bits) == r);
    return true;
}"""
_DECOMPOSED_ONLY = """def in_range(field r) -> bool {
    bool[4] bits = unpack_unchecked::<4>(r);
    return true;
}"""


def _witness_output(tmp_path, source: str, args: list[str]) -> str:  # type: ignore[no-untyped-def]
    (tmp_path / "p.zok").write_text(source)
    info = run("compile", source=tmp_path / "p.zok", program=tmp_path / "p.bin", abi=tmp_path / "abi.json")
    assert info["constraints"] >= 1
    return str(run("witness", program=tmp_path / "p.bin", abi=tmp_path / "abi.json", args=args)["output"])


@pytest.mark.slow
def test_a_range_check_must_be_asserted_a_forged_negative_remainder_is_refused(tmp_path, circuit, zk_a) -> None:  # type: ignore[no-untyped-def]
    # 37 / 16 rounds to 2 (37 + 8 = 2*16 + 13). The forger claims 3 with remainder -3.
    honest, forged = ["37", "2", "13"], ["37", "3", str(P - 3)]
    weak = _TRAP.format(range=_DECOMPOSED_ONLY)
    assert _witness_output(tmp_path, weak, forged) == "3"  # the unused decomposition checked nothing
    strong = _TRAP.format(range=_ASSERTED)
    assert _witness_output(tmp_path, strong, honest) == "2"
    with pytest.raises(WitnessError):
        _witness_output(tmp_path, strong, forged)
    # The step program: the same forgery on a logit's rounding, or a clamp's branch, is refused.
    witness = linear_step(circuit.spec, zk_a.g, zk_a.x, zk_a.y, zk_a.binding)
    for index, forge in ((4, lambda a: [str((int(a[0]) + 1) % P), *a[1:]]),  # zq + 1 ...
                         (5, lambda a: [str((int(a[0]) - 2 ** 14) % P), *a[1:]]),  # ... zr - 2^14
                         (6, lambda a: [str(1 - int(a[0])), *a[1:]])):  # the other clamp branch
        args = list(witness.args)
        if index == 4:
            args[4], args[5] = forge(args[4]), (lambda a: [str((int(a[0]) - 2 ** 14) % P), *a[1:]])(args[5])
        else:
            args[index] = forge(args[index])
        with pytest.raises(WitnessError):
            run("witness", program=circuit.path("program"), abi=circuit.path("abi"), args=args)


def test_a_feature_past_the_tasks_bound_cannot_be_proven(circuit, zk_a) -> None:  # type: ignore[no-untyped-def]
    """The task declares |x| <= 4; the program's old range check (|x| < 8) let 4.5 through.
    The host refuses such a batch, and so does the program when a host that skips the check
    hands it a witness whose hints are otherwise right."""
    spec = circuit.spec
    unit, old_limit = 2**spec.scale, 2 ** FixedPoint(spec.scale).feature_bits
    assert spec.feature_bound == 4.0 and 4.5 * unit < old_limit  # within the old check, past the task's bound
    at_bound, past, past_negative = zk_a.x.copy(), zk_a.x.copy(), zk_a.x.copy()
    at_bound[0, 0], past[0, 0], past_negative[3, 7] = 4 * unit, int(4.5 * unit), -4 * unit - 1
    for x in (past, past_negative):
        with pytest.raises(ProofError, match="outside the task's declared bound"):
            prove_step(circuit, zk_a.g, x, zk_a.y, zk_a.binding)
    # A lax host (its bound raised to 8) computes the same arithmetic and the right hints for
    # any |x| < 8: the program itself then decides. At the bound it proves (the control) ...
    lax = replace(spec, feature_bound=8.0)
    program = {"program": circuit.path("program"), "abi": circuit.path("abi")}
    output = run("witness", **program, args=linear_step(lax, zk_a.g, at_bound, zk_a.y, zk_a.binding).args)["output"]
    assert int(output[5]) == INPUTS_VALID
    # ... and one quantum past it, or 4.5, it refuses.
    for x in (past, past_negative):
        with pytest.raises(WitnessError):
            run("witness", **program, args=linear_step(lax, zk_a.g, x, zk_a.y, zk_a.binding).args)


def test_labels_other_than_0_or_1_cannot_be_proven(circuit, zk_a) -> None:  # type: ignore[no-untyped-def]
    """Labels 2 / -1 or 0.5 / 0.5: the host refuses them, and so does the program. To reach
    the program with hints that are otherwise right, take two rows with the same features and
    labels 0 and 1: moving label mass between them leaves every sum of the step (so every
    hint, and the update) unchanged. Swapping the labels is the control: it proves."""
    spec, unit = circuit.spec, 2**circuit.spec.scale
    x, y = zk_a.x.copy(), zk_a.y.copy()
    x[1], y[0], y[1] = x[0], 0, unit
    witness = linear_step(spec, zk_a.g, x, y, zk_a.binding)
    program = {"program": circuit.path("program"), "abi": circuit.path("abi")}

    def relabelled(first: int, second: int) -> list[Any]:
        args = list(witness.args)
        args[2] = [str(first % P), str(second % P), *args[2][2:]]
        return args

    output = run("witness", **program, args=relabelled(unit, 0))["output"]
    assert int(output[4]) == commit(np.array(witness.update)) and int(output[5]) == INPUTS_VALID
    for first, second in ((2 * unit, -unit), (-unit, 2 * unit), (unit // 2, unit // 2)):
        labels = y.copy()
        labels[0], labels[1] = first, second
        with pytest.raises(ProofError, match="labels must be 0 or 1"):
            prove_step(circuit, zk_a.g, x, labels, zk_a.binding)
        with pytest.raises(WitnessError):
            run("witness", **program, args=relabelled(first, second))


def test_an_unbound_public_input_would_accept_any_value_and_such_a_key_is_refused(circuit, zk_a, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Groth16: an input no constraint touches has the identity as its gamma_abc point, so
    its value drops out of the check. Build such a key from the real one (fold input 3's
    value into gamma_abc[0]): the real proof then verifies with any binding value."""
    vk_json = json.loads(circuit.vk.read_text())
    vk = groth16.VerifyingKey.from_zokrates(vk_json)
    values = zk_a.proof.instances
    x, y = normalize(ec_add(vk.gamma_abc[0], multiply(vk.gamma_abc[4], values[3])))
    vk_json["gamma_abc"][0] = [f"0x{int(x):064x}", f"0x{int(y):064x}"]
    vk_json["gamma_abc"][4] = ["0x0", "0x0"]
    malleable = groth16.VerifyingKey.from_zokrates(vk_json)
    assert malleable.unbound_inputs() == [3]
    for binding in (values[3], 0, 12345):
        assert groth16.verify(malleable, zk_a.proof.proof_bytes, [*values[:3], binding, *values[4:]])[0]
    (tmp_path / "vk.json").write_text(json.dumps(vk_json))
    with pytest.raises(ZkflError, match="unconstrained.*binding"):
        check_key(ZokratesCircuit(circuit.spec, tmp_path))
    # zkfl's own key binds every input: changing any value breaks the proof (see the agreement test).
    assert vk.unbound_inputs() == []


# ---------------------------------------------------------------- the Federation judges it like ezkl's

def _task(federation: Federation, accounts: list[LocalAccount], verifier: str, initial: np.ndarray,
          wallets: list[LocalAccount], slots: int = 4) -> int:
    params = task_params(accounts[1].address, verifier, initial, slots=slots,
                         aggregation_verifier=aggregation_verifier_for(federation))
    task_id = federation.create_task(accounts[0], params, REWARD)
    for participant in wallets:
        federation.join(participant, task_id, STAKE)
    return task_id


def _submission(federation: Federation, task_id: int, signer: LocalAccount, step: ZkStep,
                update: list[int] | None = None, proof: bytes | None = None,
                values: list[int] | None = None) -> tuple[int, str, int, list[int], bytes, list[int], bytes]:
    """What ``signer`` signs and a relayer sends: (task, participant, commitment, update, proof, values, signature)."""
    update = list(step.proof.update) if update is None else update
    proof = step.proof.proof_bytes if proof is None else proof
    values = step.proof.instances if values is None else values
    commitment = commit(np.array(update, dtype=np.int64))
    signature = federation.sign_submission(signer, task_id, 0, commitment, update, values, proof)
    return task_id, signer.address, commitment, update, proof, values, signature


def _submit(federation: Federation, accounts: list[LocalAccount], task_id: int, signer: LocalAccount,
            step: ZkStep, gas: int | None = None, **change: Any):  # type: ignore[no-untyped-def]
    task, participant, commitment, update, proof, values, signature = _submission(
        federation, task_id, signer, step, **change)
    return federation.submit_update(accounts[1], task, 0, participant, commitment, update, proof, values, signature,
                                    gas=gas)


def _revert(federation: Federation, relayer: LocalAccount, task_id: int, signer: LocalAccount, step: ZkStep,
            gas: int) -> str:
    """How the contract answers the submission at this gas limit (eth_call): its revert, decoded."""
    task, participant, commitment, update, proof, values, signature = _submission(federation, task_id, signer, step)
    call = federation.submit_call(task, 0, participant, commitment, update, proof, values, signature)
    try:
        call.call({"from": relayer.address, "gas": gas})
    except (ContractCustomError, ContractLogicError) as exc:
        return decode_revert(call, exc)
    except Web3RPCError as exc:  # the transaction as a whole ran out of gas
        return str(exc.rpc_response.get("error", {}).get("message", exc)) if exc.rpc_response else str(exc)
    return "no revert"


def _bound_steps(circuit: ZokratesCircuit, federation: Federation, task_id: int,
                 wallets: list[tuple[LocalAccount, int]]) -> list[ZkStep]:
    """Proofs for several wallets, two at a time (zokrates-js proves on one core)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda ws: _bound_step(circuit, federation, task_id, *ws), wallets))


def _signed(federation: Federation, task_id: int, signer: LocalAccount, step: ZkStep, **change: Any) -> SignedUpdate:
    _, participant, commitment, update, proof, values, signature = _submission(federation, task_id, signer, step,
                                                                               **change)
    return SignedUpdate(participant, commitment, update, proof, values, signature)


@pytest.mark.slow
def test_the_federation_accepts_and_rejects_zokrates_proofs_as_it_does_ezkls(  # type: ignore[no-untyped-def]
        federation, accounts, verifier_address, zk_verifier, circuit, zk_a) -> None:
    """One task, one wallet per case: a decided submission is final (and a rejection slashes),
    so each case is its own wallet with its own proof, bound to this task and that wallet.
    Two honest updates go in one batch (verified together); the cheats go in a second batch
    with a third honest update, which the batch's bad proofs must not drag down."""
    verifier, owner, copier, second, third = zk_verifier.address, accounts[2], accounts[3], accounts[8], accounts[9]
    cheats = accounts[4:8]
    task_id = _task(federation, accounts, verifier, zk_a.g, [owner, copier, *cheats, second, third], slots=8)
    honest, honest_2, honest_3, *cheat_steps = _bound_steps(
        circuit, federation, task_id, [(owner, 1), (second, 3), (third, 4), *((w, 2) for w in cheats)])
    result = _submit(federation, accounts, task_id, copier, honest)  # wallet 3 copies wallet 2's proof
    assert not result.accepted and result.reason == Reason.BINDING_MISMATCH
    together = federation.submit_updates(accounts[1], task_id, 0, [_signed(federation, task_id, owner, honest),
                                                                    _signed(federation, task_id, second, honest_2)])
    assert together.together and all(r.accepted for r in together.results.values()), together
    assert federation.submission_status(task_id, 0, owner.address) == (Status.ACCEPTED, Reason.NONE)
    print(f"two ZoKrates updates verified together: {together.gas_per_update} gas each")

    vk = circuit.verifying_key()

    def tampered(proof: bytes) -> bytes:
        return _pack([*_words(proof)[:7], _words(proof)[7] ^ 1])

    def off_curve(proof: bytes) -> bytes:  # fails the precompile: rejected and slashed, not reverted as out of gas
        return _pack([1, 1, *_words(proof)[2:]])

    def violation(values: list[int]) -> list[int]:  # the input check's commitment claims a violation of 1
        return [*values[:5], poseidon_commit([1])]

    cases = [("update mismatch", lambda s: {"update": [s.proof.update[0] + 1, *s.proof.update[1:]]},
              Reason.UPDATE_MISMATCH),
             ("tampered proof", lambda s: {"proof": tampered(s.proof.proof_bytes)}, Reason.INVALID_PROOF),
             ("off-curve point", lambda s: {"proof": off_curve(s.proof.proof_bytes)}, Reason.INVALID_PROOF),
             # The program returns H([0]) as a constant: no ZoKrates proof carries another input check
             # (a batch past the bounds cannot be proven at all, see above). A participant that claims
             # one anyway is judged by the contract's own check, made before the pairing.
             ("inputs out of bounds", lambda s: {"values": violation(s.proof.instances)}, Reason.INPUTS_OUT_OF_BOUNDS)]
    batch = [_signed(federation, task_id, third, honest_3)]
    for wallet, step, (_, change, reason) in zip(cheats, cheat_steps, cases, strict=True):
        if reason == Reason.INPUTS_OUT_OF_BOUNDS:
            assert not groth16.verify(vk, step.proof.proof_bytes, violation(step.proof.instances))[0]
        batch.append(_signed(federation, task_id, wallet, step, **change(step)))
    mixed = federation.submit_updates(accounts[1], task_id, 0, batch)
    assert not mixed.together
    assert mixed.results[third.address.lower()].accepted
    assert not federation.participant(task_id, third.address).slashed
    for wallet, (name, _, reason) in zip(cheats, cases, strict=True):
        result = mixed.results[wallet.address.lower()]
        assert not result.accepted and result.reason == reason, name
        assert federation.participant(task_id, wallet.address).slashed, name
    first_batch = sorted(((owner, honest), (second, honest_2)), key=lambda ws: int(ws[0].address, 16))
    assert federation.accepted_updates(task_id, 0) == [
        *(s.proof.update_commitment for _, s in first_batch), honest_3.proof.update_commitment]  # the batch's order
    # The audit recovers each batched update's own proof from the submitUpdates calldata.
    for event in federation.events("UpdateAccepted", task_id):
        function, call = calldata_of(federation, event)
        step = {owner.address: honest, second.address: honest_2, third.address: honest_3}[event["args"]["participant"]]
        assert function == "submitUpdate" and bytes(call["proof"]) == step.proof.proof_bytes
        assert [int(v) for v in call["publicValues"]] == step.proof.instances
    with pytest.raises(ChainError, match="already submitted"):  # a decided submission is final, in a batch too
        federation.submit_updates(accounts[1], task_id, 0, [_signed(federation, task_id, owner, honest)])

    stale = _task(federation, accounts, verifier, zk_a.g + 1, [owner])
    step = _bound_step(circuit, federation, stale, owner, 1, g=zk_a.g)  # from the zero model, not this task's
    result = _submit(federation, accounts, stale, owner, step)
    assert not result.accepted and result.reason == Reason.STALE_GLOBAL_MODEL


@pytest.mark.slow
def test_a_relayer_cannot_starve_the_zokrates_verifier_to_slash_an_honest_client(  # type: ignore[no-untyped-def]
        federation, accounts, verifier_address, zk_verifier, circuit, zk_a) -> None:
    """The Federation gives the verifier exactly the task's verify gas (4M by default) and
    refuses to call it with less left (VerifierOutOfGas): a relayer's gas limit cannot starve
    it. Nothing is recorded. The control: the same gas records a rejection that does not
    reach the verifier (a copied proof), so the gas was not simply too little for any decision."""
    honest, copiers = accounts[2], accounts[3:6]
    task_id = _task(federation, accounts, zk_verifier.address, zk_a.g, [honest, *copiers])
    step = _bound_step(circuit, federation, task_id, honest, 1)
    limits = ((300_000, "VerifierOutOfGas"), (420_000, "VerifierOutOfGas"), (3_000_000, "VerifierOutOfGas"))
    for gas, why in limits:
        assert why in _revert(federation, accounts[1], task_id, honest, step, gas), gas
        with pytest.raises(ChainError, match="reverted"):
            _submit(federation, accounts, task_id, honest, step, gas=gas)
        assert federation.submission_status(task_id, 0, honest.address) == (Status.NONE, Reason.NONE)
        assert not federation.participant(task_id, honest.address).slashed
    for (gas, _), copier in zip(limits, copiers, strict=True):
        control = _submit(federation, accounts, task_id, copier, step, gas=gas)
        assert not control.accepted and control.reason == Reason.BINDING_MISMATCH, gas
        assert federation.submission_status(task_id, 0, copier.address) == (Status.REJECTED, Reason.BINDING_MISMATCH)
    assert _submit(federation, accounts, task_id, honest, step, gas=5_000_000).accepted


@pytest.mark.slow
def test_the_zokrates_demo_rejects_the_cheater_pays_the_honest_and_audits_clean(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`zkfl demo --backend zokrates`, small: the package path (program recompiled and
    compared, verifier checked on chain), proofs two at a time, the FedAvg proof over
    ZoKrates-proven updates, settlement, and the audit re-verifying with py-ecc."""
    from zkfl.demo import DemoConfig, run_demo

    report = run_demo(DemoConfig(clients=3, rounds=1, malicious=1, backend="zokrates", quiet=True,
                                 report=tmp_path / "report.json")).model_dump(mode="json")
    [round_] = report["rounds"]
    assert len(round_["accepted"]) == 2
    assert round_["rejected"][0]["reason"] == "submitted update is not the proof's output"
    cheater = round_["rejected"][0]["wallet"]
    assert report["slashed"] == [cheater] and int(report["rewards"][cheater]) == 0
    assert all(int(report["rewards"][w]) > 0 for w in round_["accepted"])
    assert round_["aggregation_proof"]["verified_on_chain"]
    assert report["audit"]["ok"], report["audit"]


# ---------------------------------------------------------------- softmax

@pytest.mark.slow
def test_softmax_step_on_wine_is_proven_with_the_same_commitments(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Softmax regression (13 features, 3 classes, exp as Taylor-then-squaring) on real data, for a
    task that pins data: the program commits to X (packed 15 features a word) and Y. Batch 8, half
    the default, keeps the suite's time: nothing here depends on the batch."""
    from zkfl.datasets import load

    data = load("wine")
    spec = replace(default_spec("softmax", data.features, data.classes, batch=8), commits_data=True)
    circuit = build_circuit(spec)
    fam, q = family("softmax"), Quantizer(spec.scale)
    theta = np.random.default_rng(3).normal(0, 0.5, spec.param_count)
    x, labels = data.x_train[: spec.batch], fam.encode_labels(spec, data.y_train[: spec.batch])
    g, xi, yi = q.to_int(theta), q.to_int(x), q.to_int(labels)
    proof = prove_step(circuit, g, xi, yi, test_binding(7))
    assert proof.instances == [commit(g), poseidon_commit(packed_features(spec, xi)), commit(yi),
                               commit(test_binding(7)), commit(np.array(proof.update)), INPUTS_VALID]
    expected = fam.float_step(spec, q.to_float(g), q.to_float(xi), q.to_float(yi))
    assert np.abs(np.array(proof.update) / 2.0**spec.scale - expected).max() < 2e-3
    assert groth16.verify(circuit.verifying_key(), proof.proof_bytes, proof.instances)[0]
    assert _node_verifies(circuit, proof.proof_bytes, proof.instances)
    tampered = [*proof.instances[:4], proof.instances[4] + 1, proof.instances[5]]
    assert not groth16.verify(circuit.verifying_key(), proof.proof_bytes, tampered)[0]


def test_a_model_too_large_for_zokrates_js_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="ezkl backend"):
        build_circuit(default_spec("softmax", 64, 10))  # digits: 650 parameters


def test_an_auditor_checks_a_proof_with_py_ecc_alone_no_node_no_chain(tmp_path, circuit, zk_a) -> None:  # type: ignore[no-untyped-def]
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from zkfl.middleware.bundle import UpdateBundle

    bundle = UpdateBundle(task_id=1, round=0, num_samples=16, update_scale=12, update=zk_a.proof.update,
                          public_values=zk_a.proof.instances, proof_bytes=zk_a.proof.proof_bytes,
                          proof=zk_a.proof.proof)
    good = bundle.save(tmp_path / "good")
    bundle.public_values = [*zk_a.proof.instances[:4], zk_a.proof.instances[4] + 1, zk_a.proof.instances[5]]
    bad = bundle.save(tmp_path / "bad")
    shutil.copy(circuit.vk, tmp_path / "vk.json")
    # PATH holds only the virtualenv: no node anywhere, and no RPC URL is given.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    zkfl = [sys.executable, "-m", "zkfl.cli"]
    ok = subprocess.run([*zkfl, "proof-verify", "--vk", str(tmp_path / "vk.json"), str(good)], env=env,
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "verified" in ok.stdout, ok.stderr
    refused = subprocess.run([*zkfl, "proof-verify", "--vk", str(tmp_path / "vk.json"), str(bad)], env=env,
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and "proof does not verify" in refused.stderr


def test_clients_on_one_machine_check_the_verifier_side_by_side(tmp_path, circuit, zk_verifier, w3) -> None:  # type: ignore[no-untyped-def]
    """The demo proves two clients at a time: their first check of the on-chain verifier
    regenerates it in the shared package folder, under its lock."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from zkfl.contracts.verifiers import check_verifier_on_chain
    from zkfl.prover.zokrates.backend import ZokratesBackend

    shared = ZokratesCircuit(circuit.spec, tmp_path / "package")
    shared.root.mkdir()
    for path in circuit.files().values():
        shutil.copy(path, shared.root / path.name)
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda _: check_verifier_on_chain(w3, zk_verifier.address, ZokratesBackend().verifier(shared)),
                      range(3)))
    assert (shared.root / "Verifier.expected.sol").read_text() == circuit.verifier_sol.read_text()
