"""`zkfl verify`: check a trained update against the chain, off chain, as the contract would.

It needs no trust in the client, the aggregator or the broker: the proof is verified
with the task's published verifying key, and every public value is compared with
what the chain says it must be for this task, round and wallet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zkfl.artifacts import TaskPackage
from zkfl.contracts.federation import Federation
from zkfl.field.commit import commit
from zkfl.middleware.bundle import UpdateBundle
from zkfl.prover.records import (
    BINDING_INDEX,
    CHECK_INDEX,
    GLOBAL_INDEX,
    INPUTS_VALID,
    STEP_PUBLIC_LAYOUT,
    UPDATE_INDEX,
)
from zkfl.prover.registry import get_backend
from zkfl.store import ContentStore, open_store


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def verify_bundle(fed: Federation, task_id: int, wallet: str, bundle: UpdateBundle,
                  store: ContentStore | None = None) -> list[Check]:
    store = store or open_store()
    task = fed.task(task_id)
    package = TaskPackage.get(store, task.package_cid)
    values = bundle.public_values
    checks = [Check("task", bundle.task_id == task_id, f"bundle is for task {bundle.task_id}")]
    if len(values) != len(STEP_PUBLIC_LAYOUT):
        detail = f"{len(values)} public values, expected {len(STEP_PUBLIC_LAYOUT)}"
        return [*checks, Check("public values", False, detail)]
    round_state = fed.round(task_id, bundle.round)
    participant = fed.participant(task_id, wallet)
    checks += step_checks(values, bundle.update, global_commitment=round_state.global_commitment,
                          binding=fed.binding_of(task_id, wallet), feature_bound=package.spec.feature_bound,
                          round_=bundle.round, wallet=wallet, task_id=task_id)
    checks.append(Check("joined", participant.joined and not participant.slashed,
                        f"{wallet} is not an active participant of task {task_id}"))
    data = bytes(fed.w3.keccak(b"".join(v.to_bytes(32, "big") for v in values[GLOBAL_INDEX + 1 : BINDING_INDEX])))
    if task.pin_data and participant.data_commitment != b"\x00" * 32:
        checks.append(Check("data", data == participant.data_commitment,
                            "data commitment differs from the participant's earlier rounds"))
    # ezkl's verifier for an ezkl task; for a ZoKrates task, the pure-Python Groth16 check.
    backend = get_backend(package.backend)
    ok, reason = backend.verify_step(backend.step_from_package(package, store), bundle.proof_bytes, values)
    checks.append(Check("proof", ok, reason))
    return checks


def step_checks(values: list[int], update: list[int], *, global_commitment: int, binding: int, feature_bound: float,
                round_: int, wallet: str, task_id: int) -> list[Check]:
    """What a step proof's public values must say, checked as the contract checks them: it starts
    from the round's global model, is bound to this wallet in this task, outputs this update, and
    its batch was inside the declared bounds. (The proof itself is the backend's to verify.)"""
    if len(values) != len(STEP_PUBLIC_LAYOUT):
        return [Check("public values", False, f"{len(values)} public values, expected {len(STEP_PUBLIC_LAYOUT)}")]
    try:
        output = commit(np.array(update, dtype=np.int64))
    except OverflowError:
        output = None
    return [
        Check("global model", values[GLOBAL_INDEX] == global_commitment,
              f"proof does not start from round {round_}'s global model"),
        Check("binding", values[BINDING_INDEX] == binding,
              f"proof is not bound to {wallet} in task {task_id} on this Federation and chain"),
        Check("update", output == values[UPDATE_INDEX], "update is not the proof's output"),
        Check("inputs", values[CHECK_INDEX] == INPUTS_VALID,
              f"the batch is outside the task's declared bounds (|x| <= {feature_bound:g}, labels 0/1 or one-hot)"),
    ]
