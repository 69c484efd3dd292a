"""Proving and off-chain verification of a training step with ezkl (halo2, KZG, BN254).

The statement of a step proof (see docs/protocol.md): given public values
``[H(G), H(X), H(y), H(b), H(W)]``, the prover knows integer tensors G, X, y, b, W with
those Poseidon hashes such that W = Step(G, X, y), in the fixed-point arithmetic of
the compiled circuit.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zkfl.circuits.spec import ModelSpec
from zkfl.errors import ProofError
from zkfl.field.binding import BINDING_CHUNKS
from zkfl.field.ezkl_api import ezkl
from zkfl.field.quantize import IntArray, felt_to_uint, felts_to_ints, uint_to_felt
from zkfl.paths import build_lock, configure_ezkl_cache
from zkfl.prover.ezkl.circuit import CircuitArtifacts
from zkfl.prover.records import STEP_PUBLIC_LAYOUT, StepProof


@dataclass
class EzklProof:
    """An ezkl proof and its public values, as the EVM verifier takes them."""

    proof: dict[str, Any]  # ezkl's proof.json, as written
    instances: list[int]  # public values as uint256, in the circuit's layout

    @property
    def proof_bytes(self) -> bytes:
        return bytes.fromhex(self.proof["hex_proof"].removeprefix("0x"))


def commits_by_kzg(artifacts: CircuitArtifacts) -> bool:
    """Whether any of the circuit's tensors is committed as a KZG point (zkfl.circuits.linked)."""
    run = artifacts.settings_json()["run_args"]
    return any(run[side] == "KZGCommit" for side in ("input_visibility", "output_visibility"))


def proof_json(proof: bytes, public_values: list[int]) -> dict[str, Any]:
    """ezkl's proof.json, rebuilt from a proof's calldata and public values."""
    return {"protocol": None, "instances": [[uint_to_felt(v) for v in public_values]], "proof": list(proof),
            "hex_proof": "0x" + proof.hex(), "split": None, "pretty_public_inputs": None, "timestamp": None,
            "version": None}


def ensure_keys(artifacts: CircuitArtifacts) -> None:
    """Run setup once per circuit: keys are deterministic given the circuit and the SRS."""
    configure_ezkl_cache()
    if artifacts.vk.exists() and artifacts.pk.exists():
        return
    with build_lock(artifacts.root):
        setup_keys_locked(artifacts)


def setup_keys_locked(artifacts: CircuitArtifacts) -> None:
    """Setup, for a caller that already holds the circuit folder's build lock."""
    configure_ezkl_cache()
    if artifacts.vk.exists() and artifacts.pk.exists():
        return
    with tempfile.TemporaryDirectory(dir=artifacts.root) as tmp:
        vk, pk = Path(tmp) / "vk.key", Path(tmp) / "pk.key"
        ezkl.setup(str(artifacts.compiled), str(vk), str(pk), srs_path=str(artifacts.srs))
        shutil.move(str(pk), artifacts.pk)
        shutil.move(str(vk), artifacts.vk)


def input_json(tensors: tuple[IntArray, ...], scale: int) -> dict[str, Any]:
    unit = 2.0**-scale
    return {"input_data": [(np.asarray(t, dtype=np.float64).ravel() * unit).tolist() for t in tensors]}


def prove_input(artifacts: CircuitArtifacts, input_json: dict[str, Any], what: str,
                workdir: Path | None = None) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """Witness, check (mock), prove: ezkl's flow for any of zkfl's circuits."""
    ensure_keys(artifacts)
    configure_ezkl_cache()
    timings: dict[str, float] = {}
    own_dir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="zkfl-prove-")) if workdir is None else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        data_path, witness_path, proof_path = work / "input.json", work / "witness.json", work / "proof.json"
        data_path.write_text(json.dumps(input_json))
        start = time.perf_counter()
        try:
            # A circuit with KZG-committed (polycommit) tensors needs the key and SRS in its witness.
            keyed = (str(artifacts.vk), str(artifacts.srs)) if commits_by_kzg(artifacts) else ()
            witness = ezkl.gen_witness(str(data_path), str(artifacts.compiled), str(witness_path), *keyed)
        except Exception as exc:  # ezkl raises RuntimeError when a value leaves the circuit's ranges
            raise ProofError(f"the {what}'s witness cannot be generated (values out of range?): {exc}") from exc
        timings["witness"] = time.perf_counter() - start
        # A witness outside the circuit's ranges would make prove() hang for minutes:
        # mock first, and fail fast with a reason.
        start = time.perf_counter()
        try:
            ezkl.mock(str(witness_path), str(artifacts.compiled))
        except Exception as exc:  # ezkl raises RuntimeError with the failing constraint
            raise ProofError(f"the {what}'s witness does not satisfy the circuit (values out of range?): "
                             f"{exc}") from exc
        timings["mock"] = time.perf_counter() - start
        start = time.perf_counter()
        ezkl.prove(str(witness_path), str(artifacts.compiled), str(artifacts.pk), str(proof_path),
                   srs_path=str(artifacts.srs))
        timings["prove"] = time.perf_counter() - start
        proof = json.loads(proof_path.read_text())
    finally:
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)
    return proof, witness, timings


def check_step_inputs(spec: ModelSpec, global_model: IntArray, x: IntArray, y: IntArray, binding: IntArray) -> None:
    """A step's inputs must have the spec's shapes: a clear error here, not ezkl's later."""
    if np.asarray(global_model).size != spec.param_count:
        raise ProofError(f"global model has {np.asarray(global_model).size} values, expected {spec.param_count}")
    if np.asarray(x).shape != (spec.batch, spec.features) or np.asarray(y).size != spec.batch * spec.label_width:
        raise ProofError(
            f"batch must be {spec.batch} x {spec.features} features with {spec.batch} x {spec.label_width} "
            f"labels, got {np.asarray(x).shape} and {np.asarray(y).size}"
        )
    if np.asarray(binding).size != BINDING_CHUNKS:
        raise ProofError(f"binding must have {BINDING_CHUNKS} chunks, got {np.asarray(binding).size}")


def prove_step(
    artifacts: CircuitArtifacts,
    global_model: IntArray,
    x: IntArray,
    y: IntArray,
    binding: IntArray,
    workdir: Path | None = None,
) -> StepProof:
    """Witness, check (mock), prove. Inputs are integers at the spec's scale."""
    spec = artifacts.spec
    check_step_inputs(spec, global_model, x, y, binding)
    proof, witness, timings = prove_input(artifacts, input_json((global_model, x, y, binding), spec.scale),
                                          "step", workdir)
    instances = [felt_to_uint(f) for f in proof["instances"][0]]
    if len(instances) != len(STEP_PUBLIC_LAYOUT):
        raise ProofError(f"proof has {len(instances)} public values, expected {len(STEP_PUBLIC_LAYOUT)}")
    update = [int(v) for v in felts_to_ints(witness["outputs"][spec.update_output])]
    return StepProof(
        proof_bytes=bytes.fromhex(proof["hex_proof"].removeprefix("0x")),
        proof=proof,
        instances=instances,
        update=update,
        update_scale=artifacts.update_scale,
        prove_seconds=timings["prove"],
        timings=timings,
    )


def witness_step(artifacts: CircuitArtifacts, global_model: IntArray, x: IntArray, y: IntArray,
                 binding: IntArray) -> list[int]:
    """The circuit's output for these inputs, without a proof: exactly the update a proof
    of the same inputs attests (for studies of the proven arithmetic at scale)."""
    configure_ezkl_cache()
    with tempfile.TemporaryDirectory(prefix="zkfl-witness-") as tmp:
        data_path = Path(tmp) / "input.json"
        data_path.write_text(json.dumps(input_json((global_model, x, y, binding), artifacts.spec.scale)))
        witness = ezkl.gen_witness(str(data_path), str(artifacts.compiled), str(Path(tmp) / "witness.json"))
    return [int(v) for v in felts_to_ints(witness["outputs"][artifacts.spec.update_output])]


def verify_proof(artifacts: CircuitArtifacts, proof: dict[str, Any]) -> tuple[bool, str]:
    """Off-chain verification. ezkl raises on a bad proof; this returns (ok, reason)."""
    configure_ezkl_cache()
    ensure_keys(artifacts)
    with tempfile.TemporaryDirectory(prefix="zkfl-verify-") as tmp:
        path = Path(tmp) / "proof.json"
        path.write_text(json.dumps(proof))
        try:
            ok = ezkl.verify(str(path), str(artifacts.settings), str(artifacts.vk),
                             srs_path=str(artifacts.srs))
        except Exception as exc:
            return False, f"proof does not verify: {str(exc).strip() or type(exc).__name__}"
    return (True, "") if ok is True else (False, "proof does not verify")
