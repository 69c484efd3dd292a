"""Whether one reply may enter the average: the checks the Federation makes on chain, made by
the strategy off chain, first failure first. Pure: no Flower, no chain, no transport."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from zkfl.artifacts import TaskPackage
from zkfl.contracts.federation import submission_signer
from zkfl.errors import ConfigError
from zkfl.flower.task import FlowerTask
from zkfl.middleware.messages import UpdateSubmission
from zkfl.prover.records import StepCircuit
from zkfl.prover.registry import backend_of
from zkfl.verify import step_checks


@dataclass(frozen=True)
class RoundTerms:
    """What every reply of one round must match."""

    task: FlowerTask
    round: int
    global_commitment: int  # of the model the server sent this round
    package: TaskPackage
    circuit: StepCircuit
    participants: Collection[str] | None = None  # checksummed wallets allowed to take part; None: any


@dataclass(frozen=True)
class Verdict:
    reason: str | None  # None: the reply may be averaged
    signed: bool  # the wallet it names signed it (else a rejection must not be put to that wallet's name)


def judge(s: UpdateSubmission, terms: RoundTerms) -> Verdict:
    addressed = _addressed(s, terms)
    if addressed is not None:
        return Verdict(addressed, signed=False)
    signature = _signed(s)
    if signature is not None:
        return Verdict(signature, signed=False)
    return Verdict(_shaped(s, terms) or _proven(s, terms), signed=True)


def _addressed(s: UpdateSubmission, terms: RoundTerms) -> str | None:
    task = terms.task
    if (s.chain_id, s.federation.lower(), s.task_id) != (task.chain_id, task.federation.lower(), task.task_id):
        return f"the reply is for task {s.task_id} of {s.federation} on chain {s.chain_id}, not this one"
    if s.round != terms.round:
        return f"the reply is for round {s.round}, this is round {terms.round}"
    if terms.participants is not None and s.wallet not in terms.participants:
        return f"{s.wallet} is not a participant of this task"
    return None


def _signed(s: UpdateSubmission) -> str | None:
    try:
        signer = submission_signer(s.signature_bytes, s.chain_id, s.federation, s.task_id, s.round,
                                   s.update_commitment_int, s.update, s.public_value_ints, s.proof_bytes)
    except ConfigError as exc:
        return str(exc)
    return None if signer == s.wallet else f"the submission is not signed by {s.wallet}"


def _shaped(s: UpdateSubmission, terms: RoundTerms) -> str | None:
    spec, package = terms.package.spec, terms.package
    if s.backend != package.backend:
        return f"a {s.backend} proof for a {package.backend} task"
    if s.num_samples != spec.batch:
        return f"num-examples {s.num_samples} is not the task's {spec.batch} per step"
    if s.update_scale != package.update_scale:
        return f"update scale {s.update_scale} is not the task's {package.update_scale}"
    if len(s.update) != spec.param_count:
        return f"{len(s.update)} update values, the model has {spec.param_count}"
    if package.proof_bytes is not None and len(s.proof_bytes) != package.proof_bytes:
        return f"a proof of {len(s.proof_bytes)} bytes; the task's verifier takes {package.proof_bytes}"
    return None


def _proven(s: UpdateSubmission, terms: RoundTerms) -> str | None:
    values = s.public_value_ints
    checks = step_checks(values, s.update, global_commitment=terms.global_commitment,
                         binding=terms.task.binding_commitment(s.wallet),
                         feature_bound=terms.package.spec.feature_bound, round_=s.round, wallet=s.wallet,
                         task_id=s.task_id)
    failed = [c.detail for c in checks if not c.ok]
    if failed:
        return failed[0]
    ok, reason = backend_of(terms.circuit).verify_step(terms.circuit, s.proof_bytes, values)
    return None if ok else f"the proof does not verify: {reason}"
