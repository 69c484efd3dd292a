"""`zkfl audit`: re-check a task from the chain and the content-addressed artifacts alone.

For every accepted update, the proof and public values are taken from the
`submitUpdate` transaction's calldata and verified off chain with the task's published
verifying key. The checks: the proof starts from that round's global model, carries the
participant's registered binding, and outputs the accepted update commitment. For every
published round, the FedAvg proof is taken from the `publishGlobalModel` calldata and
verified off chain with the package's aggregation key; its public values must name
exactly the round's accepted updates in order, their sample counts, no weight in an
absent slot, and the published commitment. With that proof, a round stands without
the weights. As a second check the model and its aggregation manifest are fetched by
the CIDs on chain; the manifest must list exactly the round's accepted updates; each update must
hash to its accepted commitment; and their FedAvg must be the published model.
Payouts are checked against the task's reward rule, and the verifier contracts on chain
must be the package's. Nothing is taken from the aggregator's word.

Each of these sections is one checker (``check_verifiers``, ``check_accepted_updates``,
``check_aggregation_proofs``, ``check_published_models``, ``check_payouts``) over an
:class:`AuditContext` fetched once; each verdict is a :class:`Finding` named by a :class:`Check`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np
from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_names, get_abi_input_types

from zkfl.artifacts import AggregationManifest, ModelArtifact, TaskPackage
from zkfl.contracts.federation import (
    Federation,
    Reason,
    RewardRule,
    SlashRule,
    TaskState,
    accepted_digest,
    decode_update,
    replay_accepted,
)
from zkfl.contracts.verifiers import check_verifier_on_chain
from zkfl.errors import ZkflError
from zkfl.field.commit import commit, commitment_hex
from zkfl.prover.ezkl.aggregation import statement_problems
from zkfl.prover.ezkl.circuit import CircuitArtifacts
from zkfl.prover.ezkl.keys import artifacts_from_package
from zkfl.prover.ezkl.prove import proof_json, verify_proof
from zkfl.prover.fedavg import fedavg
from zkfl.prover.records import (
    BINDING_INDEX,
    CHECK_INDEX,
    GLOBAL_INDEX,
    INPUTS_VALID,
    STEP_PUBLIC_LAYOUT,
    UPDATE_INDEX,
    StepCircuit,
    commits_to_data,
)
from zkfl.prover.registry import backend_of, get_backend
from zkfl.store import ContentStore, cid_from_bytes, open_store


class Check(StrEnum):
    """The name of each audit check. The values are the strings `zkfl audit --json` and the demo
    report have always carried, so changing one changes their output."""

    # loading the task
    TASK_PACKAGE = "task package"
    STEP_CIRCUIT = "step circuit in the package"
    AGGREGATION_CIRCUIT = "aggregation circuit in the package"
    # the verifier contracts
    DATA_COMMITMENT = "step commits to data exactly where the task pins it"
    STEP_VERIFIER = "step verifier on chain is the package's"
    AGGREGATION_VERIFIER = "aggregation verifier on chain is the package's"
    # every accepted update
    CALLDATA = "calldata"
    PUBLIC_VALUES = "public values"
    STARTS_FROM_GLOBAL_MODEL = "starts from the round's global model"
    BOUND_TO_PARTICIPANT = "bound to the participant"
    OUTPUTS_ACCEPTED_UPDATE = "outputs the accepted update"
    INPUTS_WITHIN_BOUNDS = "inputs within the task's bounds"
    DATA_PRIVATE = "proof commits to no data (the task does not pin it)"
    PUBLISHED_UPDATE_IS_OUTPUT = "published update is the proof's output"
    STEP_PROOF_VERIFIES = "proof verifies off chain"
    # every published round: its FedAvg proof
    AGGREGATION_PROOF = "aggregation proof"
    AGGREGATION_CALLDATA = "aggregation calldata"
    AGGREGATION_STATEMENT = "aggregation proof averages exactly the accepted updates"
    AGGREGATION_PROOF_VERIFIES = "aggregation proof verifies off chain"
    # every published round: its artifacts
    ARTIFACTS = "artifacts"
    MODEL_COMMITMENT = "published model matches its commitment"
    MANIFEST = "manifest lists exactly the accepted updates"
    UPDATE_ARTIFACT = "update artifact matches its accepted commitment"
    SAMPLE_WEIGHT = "weight is the task's samples per update"
    FEDAVG = "global model is the FedAvg of the accepted updates"
    # settlement
    PAYOUT = "payout follows the reward rule"


@dataclass(frozen=True)
class Finding:
    round: int | None
    wallet: str | None
    check: Check
    ok: bool
    detail: str = ""


@dataclass
class AuditReport:
    task_id: int
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def rounds(self) -> dict[int, bool]:
        verdicts: dict[int, bool] = {}
        for f in self.findings:
            if f.round is not None:
                verdicts[f.round] = verdicts.get(f.round, True) and f.ok
        return verdicts

    def to_json(self) -> dict[str, Any]:
        # The check as a plain string, so every serialiser (json, pydantic, yaml) writes its value.
        return {"task_id": self.task_id, "ok": self.ok,
                "rounds": {str(r): ("ok" if v else "FAILED") for r, v in sorted(self.rounds().items())},
                "findings": [{**asdict(f), "check": f.check.value} for f in self.findings]}


@dataclass
class AuditContext:
    """What every checker reads, fetched once: the task, its package's circuits, and the events
    the checks share. Checkers append their verdicts to ``findings``."""

    fed: Federation
    task_id: int
    task: TaskState
    store: ContentStore
    package: TaskPackage
    step: StepCircuit
    aggregation: CircuitArtifacts | None
    created: Any  # the TaskCreated event's args
    terms: Any  # the TaskTerms event's args
    accepted_events: list[Any]  # every UpdateAccepted event, withdrawn ones included, in acceptance order
    withdrawn: set[tuple[int, str]]  # (round, wallet) of updates accepted and later shown unavailable
    slot_order: dict[int, list[int]]  # round -> accepted commitments in the contract's order (`replay_accepted`)
    published_events: dict[int, Any]  # GlobalModelPublished by the round it starts (round + 1)
    update_data: dict[tuple[int, str], list[int]]  # (round, lowercase wallet): the update's values on chain
    findings: list[Finding]
    # The binding each wallet's proofs must carry is derived by the contract from the
    # context alone, so joins, leaves and rejoins do not change it: fetched once per wallet.
    bindings: dict[str, int] = field(default_factory=dict)

    @cached_property
    def start(self) -> dict[int, int]:
        """The global commitment each round starts from: the task's, then each published model's."""
        start = {0: int(self.created["globalCommitment"])}
        start.update({r: int(e["args"]["globalCommitment"]) for r, e in self.published_events.items()})
        return start

    @cached_property
    def accepted(self) -> dict[int, dict[str, int]]:
        """Round -> wallet -> update commitment, of the updates that stayed accepted, in the
        contract's acceptance order."""
        accepted: dict[int, dict[str, int]] = {}
        for event in self.accepted_events:
            args = event["args"]
            round_, wallet = int(args["round"]), str(args["participant"])
            if (round_, wallet) not in self.withdrawn:
                accepted.setdefault(round_, {})[wallet] = int(args["updateCommitment"])
        return accepted

    def binding(self, wallet: str) -> int:
        if wallet not in self.bindings:
            self.bindings[wallet] = self.fed.binding_of(self.task_id, wallet)
        return self.bindings[wallet]

    def record(self, round_: int | None, wallet: str | None, check: Check, ok: bool, detail: str = "") -> None:
        self.findings.append(Finding(round_, wallet, check, bool(ok), "" if ok else detail))


def audit_task(fed: Federation, task_id: int, store: ContentStore | None = None) -> AuditReport:
    findings: list[Finding] = []
    ctx = _load_context(fed, task_id, store or open_store(), findings)
    if ctx is not None:
        for checker in CHECKERS:
            checker(ctx)
    return AuditReport(task_id, findings)


def _load_context(fed: Federation, task_id: int, store: ContentStore,
                  findings: list[Finding]) -> AuditContext | None:
    """The task's context, or None, with the finding that says why, when its package or step
    circuit cannot be had: without them no proof can be checked."""
    task = fed.task(task_id)
    try:
        package = TaskPackage.get(store, task.package_cid)
    except ZkflError as exc:
        findings.append(Finding(None, None, Check.TASK_PACKAGE, False, str(exc)))
        return None
    # Loading a circuit rebuilds it from the package's spec and its keys from the published SRS: a
    # package whose circuit or keys are not its spec's fails here (zkfl.prover.ezkl.keys).
    try:
        step = get_backend(package.backend).step_from_package(package, store)
    except ZkflError as exc:
        findings.append(Finding(None, None, Check.STEP_CIRCUIT, False, str(exc)))
        return None
    findings.append(Finding(None, None, Check.STEP_CIRCUIT, True))
    aggregation = _aggregation_circuit(package, store, findings)
    # An update accepted and later shown (challengeUpdate) not to match its published values left the round.
    accepted, rejected = fed.events("UpdateAccepted", task_id), fed.events("UpdateRejected", task_id)
    withdrawn = {(int(e["args"]["round"]), str(e["args"]["participant"])) for e in rejected
                 if Reason(int(e["args"]["reason"])) == Reason.UPDATE_UNAVAILABLE}
    return AuditContext(
        fed=fed, task_id=task_id, task=task, store=store, package=package, step=step, aggregation=aggregation,
        created=fed.events("TaskCreated", task_id)[0]["args"],
        terms=fed.events("TaskTerms", task_id)[0]["args"],
        accepted_events=accepted,
        withdrawn=withdrawn,
        slot_order=replay_accepted([*accepted, *rejected]),
        published_events={int(e["args"]["round"]): e for e in fed.events("GlobalModelPublished", task_id)},
        update_data={(int(e["args"]["round"]), str(e["args"]["participant"]).lower()):
                     decode_update(bytes(e["args"]["update"])) for e in fed.events("UpdateData", task_id)},
        findings=findings,
    )


def _aggregation_circuit(package: TaskPackage, store: ContentStore, findings: list[Finding]) -> CircuitArtifacts | None:
    if not package.aggregation_slots:
        return None
    try:
        circuit = artifacts_from_package(package, store, "aggregation")
    except ZkflError as exc:
        findings.append(Finding(None, None, Check.AGGREGATION_CIRCUIT, False, str(exc)))
        return None
    findings.append(Finding(None, None, Check.AGGREGATION_CIRCUIT, True))
    return circuit


# ---- the contracts that judged this task verify with the package's keys, not others

def check_verifiers(ctx: AuditContext) -> None:
    ctx.record(None, None, Check.DATA_COMMITMENT, ctx.step.spec.commits_data == ctx.task.pin_data,
               "the task pins data, but its step commits to none" if ctx.task.pin_data else
               "the task does not pin data, but its step publishes a commitment to each batch")
    for check, address, circuit in ((Check.STEP_VERIFIER, ctx.task.verifier, ctx.step),
                                    (Check.AGGREGATION_VERIFIER, ctx.task.aggregation_verifier, ctx.aggregation)):
        if circuit is None:
            ctx.record(None, None, check, False, "no such circuit could be loaded from the task package")
            continue
        try:
            check_verifier_on_chain(ctx.fed.w3, address, backend_of(circuit).verifier(circuit))
            ctx.record(None, None, check, True)
        except ZkflError as exc:
            ctx.record(None, None, check, False, str(exc))


# ---- every accepted update: its proof, re-verified from the calldata

def check_accepted_updates(ctx: AuditContext) -> None:
    for event in ctx.accepted_events:
        if (int(event["args"]["round"]), str(event["args"]["participant"])) not in ctx.withdrawn:
            _check_accepted_update(ctx, event)


def _check_accepted_update(ctx: AuditContext, event: Any) -> None:
    args = event["args"]
    round_, wallet, commitment = int(args["round"]), str(args["participant"]), int(args["updateCommitment"])
    function, call = calldata_of(ctx.fed, event)
    same_wallet = str(call.get("participant", "")).lower() == wallet.lower()  # a lenient decode gives lower case
    if function != "submitUpdate" or int(call["round"]) != round_ or not same_wallet:
        ctx.record(round_, wallet, Check.CALLDATA, False, "the accepting call (its proof) cannot be recovered")
        return
    values = [int(v) for v in call["publicValues"]]
    if len(values) != len(STEP_PUBLIC_LAYOUT):
        ctx.record(round_, wallet, Check.PUBLIC_VALUES, False, f"{len(values)} public values")
        return
    ctx.record(round_, wallet, Check.STARTS_FROM_GLOBAL_MODEL, values[GLOBAL_INDEX] == ctx.start.get(round_),
               "the proof's global model is not the round's")
    ctx.record(round_, wallet, Check.BOUND_TO_PARTICIPANT, values[BINDING_INDEX] == ctx.binding(wallet),
               "the proof carries another wallet's, task's or deployment's binding")
    ctx.record(round_, wallet, Check.OUTPUTS_ACCEPTED_UPDATE, values[UPDATE_INDEX] == commitment,
               "the proof's output is not the accepted update")
    ctx.record(round_, wallet, Check.INPUTS_WITHIN_BOUNDS, values[CHECK_INDEX] == INPUTS_VALID,
               f"the proof's batch is outside |x| <= {ctx.package.spec.feature_bound} or its labels are not 0/1")
    if not ctx.task.pin_data:
        ctx.record(round_, wallet, Check.DATA_PRIVATE, not commits_to_data(values),
                   "the proof's public values carry a hash of the participant's batch")
    # The values as the chain published them (UpdateData), whatever the call carried.
    published_values = ctx.update_data.get((round_, wallet.lower()), [])
    ctx.record(round_, wallet, Check.PUBLISHED_UPDATE_IS_OUTPUT,
               len(published_values) == ctx.package.spec.param_count
               and commit(np.array(published_values, dtype=np.int64)) == commitment,
               "the update's values on chain do not hash to the accepted commitment")
    ok, reason = backend_of(ctx.step).verify_step(ctx.step, bytes(call["proof"]), values)
    ctx.record(round_, wallet, Check.STEP_PROOF_VERIFIES, ok, reason)


# ---- every published round: its FedAvg proof, re-verified from the calldata

def check_aggregation_proofs(ctx: AuditContext) -> None:
    for round_ in range(ctx.task.rounds):
        event = ctx.published_events.get(round_ + 1)
        if event is not None:
            # The accepted updates' commitments in the contract's acceptance order (the proof's slot order).
            _check_aggregation_proof(ctx, round_, event, ctx.slot_order.get(round_, []))


def _check_aggregation_proof(ctx: AuditContext, round_: int, event: Any, order: list[int]) -> None:
    if ctx.aggregation is None:
        ctx.record(round_, None, Check.AGGREGATION_PROOF, False, "the task package has no aggregation circuit")
        return
    function, call = calldata_of(ctx.fed, event)
    if function != "publishGlobalModel" or int(call["round"]) != round_:
        ctx.record(round_, None, Check.AGGREGATION_CALLDATA, False, "the publishing transaction is not this round's")
        return
    values = [int(v) for v in call["aggregationValues"]]
    problems = statement_problems(values, ctx.package.aggregation_slots, order,
                                  [ctx.task.samples_per_update] * len(order), int(event["args"]["globalCommitment"]))
    if accepted_digest(order) != ctx.fed.accepted_set_digest(ctx.task_id, round_):
        problems.append("the node's UpdateAccepted and UpdateRejected logs do not add up to the round's accepted set")
    ctx.record(round_, None, Check.AGGREGATION_STATEMENT, not problems, "; ".join(problems))
    ok, reason = verify_proof(ctx.aggregation, proof_json(bytes(call["aggregationProof"]), values))
    ctx.record(round_, None, Check.AGGREGATION_PROOF_VERIFIES, ok, reason)


# ---- every published round: model, manifest, and FedAvg re-derived (a second check)

def check_published_models(ctx: AuditContext) -> None:
    for round_ in range(ctx.task.rounds):
        event = ctx.published_events.get(round_ + 1)
        if event is not None:
            on_chain = {w.lower(): c for w, c in ctx.accepted.get(round_, {}).items()}
            _check_published_model(ctx, round_, event["args"], on_chain)


def _check_published_model(ctx: AuditContext, round_: int, published: Any, on_chain: dict[str, int]) -> None:
    commitment = int(published["globalCommitment"])
    try:
        model = ModelArtifact.get(ctx.store, cid_from_bytes(bytes(published["modelCid"])))
        manifest = AggregationManifest.get(ctx.store, cid_from_bytes(bytes(published["manifestCid"])))
    except ZkflError as exc:
        ctx.record(round_, None, Check.ARTIFACTS, False, str(exc))
        return
    ctx.record(round_, None, Check.MODEL_COMMITMENT, commit(model.array()) == commitment,
               "the model artifact does not hash to the published commitment")
    listed = {e.wallet.lower(): int(e.update_commitment, 16) for e in manifest.entries}
    ctx.record(round_, None, Check.MANIFEST, listed == on_chain,
               f"manifest lists {sorted(listed)}, the chain accepted {sorted(on_chain)}")
    if listed != on_chain:
        return  # a wrong manifest may list anything: fetch nothing it names
    updates = _checked_updates(ctx, round_, manifest, on_chain)
    if updates:
        _check_fedavg(ctx, round_, updates, commitment)


def _checked_updates(ctx: AuditContext, round_: int, manifest: AggregationManifest,
                     on_chain: dict[str, int]) -> list[list[int]]:
    """The manifest's updates, each checked against its accepted commitment and weight; [] when
    one cannot be fetched, as a FedAvg over fewer updates would prove nothing."""
    updates: list[list[int]] = []
    for entry in manifest.entries:
        try:
            update = ModelArtifact.get(ctx.store, entry.update_cid)
        except ZkflError as exc:
            ctx.record(round_, entry.wallet, Check.UPDATE_ARTIFACT, False, str(exc))
            return []
        ctx.record(round_, entry.wallet, Check.UPDATE_ARTIFACT,
                   commit(update.array()) == on_chain.get(entry.wallet.lower()),
                   "the update artifact does not hash to the accepted commitment")
        ctx.record(round_, entry.wallet, Check.SAMPLE_WEIGHT, entry.samples == ctx.task.samples_per_update,
                   f"weighted {entry.samples}, the task says {ctx.task.samples_per_update}")
        updates.append(update.values)
    return updates


def _check_fedavg(ctx: AuditContext, round_: int, updates: list[list[int]], commitment: int) -> None:
    # Every update weighs the task's samples per update, whatever the manifest says (checked above).
    samples = [ctx.task.samples_per_update] * len(updates)
    average = commit(np.array(fedavg(updates, samples, ctx.package.update_scale, ctx.package.spec.scale),
                              dtype=np.int64))
    ctx.record(round_, None, Check.FEDAVG, average == commitment,
               f"published {commitment_hex(commitment)}, FedAvg of the accepted updates is {commitment_hex(average)}")


# ---- payouts follow the reward rule

def check_payouts(ctx: AuditContext) -> None:
    if not ctx.task.settled:
        return
    slashed_events = ctx.fed.events("Slashed", ctx.task_id)
    slashed = {str(e["args"]["participant"]) for e in slashed_events}
    samples_by = _rewarded_samples(ctx.accepted_events, slashed)
    pool = int(ctx.created["rewardPool"]) + sum(
        int(e["args"]["amount"]) for e in ctx.fed.events("ToppedUp", ctx.task_id))
    if SlashRule(int(ctx.terms["slashRule"])) == SlashRule.TO_REWARD_POOL:
        pool += sum(int(e["args"]["amount"]) for e in slashed_events)
    rule = RewardRule(int(ctx.terms["rewardRule"]))
    for event in ctx.fed.events("Withdrawn", ctx.task_id):
        wallet, reward = str(event["args"]["account"]), int(event["args"]["reward"])
        expected = _expected_reward(rule, pool, samples_by, wallet)
        ctx.record(None, wallet, Check.PAYOUT, reward == expected, f"paid {reward} wei, the rule gives {expected}")


def _rewarded_samples(accepted_events: list[Any], slashed: set[str]) -> dict[str, int]:
    """Samples each unslashed wallet contributed. Withdrawn updates need no exception: the
    challenge that withdraws an update slashes its wallet."""
    samples_by: dict[str, int] = {}
    for event in accepted_events:
        wallet = str(event["args"]["participant"])
        if wallet not in slashed:
            samples_by[wallet] = samples_by.get(wallet, 0) + int(event["args"]["samples"])
    return samples_by


def _expected_reward(rule: RewardRule, pool: int, samples_by: dict[str, int], wallet: str) -> int:
    mine, total = samples_by.get(wallet, 0), sum(samples_by.values())
    if mine == 0 or total == 0:
        return 0
    if rule == RewardRule.EQUAL_SHARES:
        return pool // len(samples_by)
    return pool * mine // total


#: The audit's sections, in the order their findings are reported.
CHECKERS: tuple[Callable[[AuditContext], None], ...] = (
    check_verifiers,
    check_accepted_updates,
    check_aggregation_proofs,
    check_published_models,
    check_payouts,
)


def calldata_of(fed: Federation, event: Any) -> tuple[str, dict[str, Any]]:
    """The Federation call that emitted ``event``: the transaction's own input, or, for a call
    relayed through another contract (a wallet, a multicall), the inner call to the Federation
    in the transaction's call trace that succeeded and decodes to the event's task, round,
    participant and update commitment. ("", {}) if there is none."""
    tx = fed.w3.eth.get_transaction(event["transactionHash"])
    direct = str(tx["to"]).lower() == fed.address.lower()
    inputs = [bytes(tx["input"])] if direct else _inner_calls(fed, event)
    args = event["args"]
    for data in inputs:
        decoded = _decode_call(fed, data)
        if decoded is None:
            continue
        name, call = decoded
        if name == "submitUpdates" and "participant" in args:
            name, call = _batch_entry(call, str(args["participant"]))
        if _emitted_by(call, args):
            return name, call
    return "", {}


def _emitted_by(call: dict[str, Any], args: Any) -> bool:
    """Whether ``call`` is the one ``args`` (an event's) come from, and not another call of the same
    transaction (a multicall's other items, another task's entry for the same wallet)."""
    # GlobalModelPublished names the round it opens, one past the call's: only its task is compared.
    names = ("taskId", "round", "participant", "updateCommitment") if "participant" in args else ("taskId",)
    return all(str(call.get(name, "")).lower() == str(args[name]).lower() for name in names if name in args)


def _decode_call(fed: Federation, data: bytes) -> tuple[str, dict[str, Any]] | None:
    """A Federation call's name and arguments. The contract ignores non-zero ABI padding
    (Solidity reads only the bytes it needs), so a call the strict decoder refuses is decoded
    leniently: a relayer's stray byte must not hide a participant's proof from the audit."""
    try:
        function, call = fed.contract.decode_function_input(data)
        return str(function.fn_name), dict(call)
    except (ValueError, DecodingError):
        pass
    for abi in fed.contract.abi:
        if abi.get("type") == "function" and function_abi_to_4byte_selector(abi) == data[:4]:
            try:
                values = abi_decode(get_abi_input_types(abi), data[4:], strict=False)
            except (ValueError, DecodingError):
                return None
            return str(abi["name"]), dict(zip([str(n) for n in get_abi_input_names(abi)], values, strict=True))
    return None


_SIGNED_UPDATE = ("participant", "updateCommitment", "update", "proof", "publicValues", "signature")


def _batch_entry(call: dict[str, Any], participant: str) -> tuple[str, dict[str, Any]]:
    """A `submitUpdates` batch's entry for ``participant``, as the `submitUpdate` call it stands for."""
    for entry in call["batch"]:
        fields = dict(entry) if isinstance(entry, dict) else dict(zip(_SIGNED_UPDATE, entry, strict=True))
        if str(fields["participant"]).lower() == participant.lower():
            return "submitUpdate", {"taskId": call["taskId"], "round": call["round"], **fields}
    return "", {}


def _inner_calls(fed: Federation, event: Any) -> list[bytes]:
    """Inputs of the successful calls to the Federation inside a transaction
    (debug_traceTransaction's callTracer, which anvil and most archive nodes serve); [] where
    the node has no tracer."""
    try:
        trace = fed.w3.provider.make_request(
            "debug_traceTransaction", [event["transactionHash"].to_0x_hex(), {"tracer": "callTracer"}])
    except Exception:
        return []
    found: list[bytes] = []
    stack = [trace.get("result") or {}]
    while stack:
        frame = stack.pop()
        if frame.get("error"):
            continue  # a reverted frame (and everything under it) emitted nothing
        # Only a CALL runs the Federation on its own storage: a DELEGATECALL to its code emits
        # events from the caller's address, never from this Federation's.
        if frame.get("type") == "CALL" and str(frame.get("to", "")).lower() == fed.address.lower() \
                and frame.get("input"):
            found.append(bytes.fromhex(str(frame["input"]).removeprefix("0x")))
        stack.extend(frame.get("calls") or [])
    return found
