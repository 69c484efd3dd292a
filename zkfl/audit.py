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
Payouts are checked against the task's reward rule. Nothing is taken from the
aggregator's word.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from zkfl.artifacts import AggregationManifest, ModelArtifact, TaskPackage
from zkfl.contracts.federation import Federation, Reason, RewardRule, SlashRule, decode_update
from zkfl.contracts.verifiers import check_verifier_on_chain
from zkfl.errors import ZkflError
from zkfl.field.commit import commit, commitment_hex
from zkfl.prover.ezkl.aggregation import statement_problems
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
)
from zkfl.prover.registry import backend_of, get_backend
from zkfl.store import ContentStore, cid_from_bytes, open_store


@dataclass(frozen=True)
class Finding:
    round: int | None
    wallet: str | None
    check: str
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
        return {"task_id": self.task_id, "ok": self.ok,
                "rounds": {str(r): ("ok" if v else "FAILED") for r, v in sorted(self.rounds().items())},
                "findings": [asdict(f) for f in self.findings]}


def _calldata(fed: Federation, event: Any) -> tuple[str, dict[str, Any]]:
    """The Federation call that emitted ``event``: the transaction's own input, or, for a call
    relayed through another contract (a wallet, a multicall), the inner call to the Federation
    in the transaction's call trace that succeeded and decodes to the event's round and
    participant. ("", {}) if there is none."""
    tx = fed.w3.eth.get_transaction(event["transactionHash"])
    direct = str(tx["to"]).lower() == fed.address.lower()
    inputs = [bytes(tx["input"])] if direct else _inner_calls(fed, event)
    args = event["args"]
    for data in inputs:
        try:
            function, call = fed.contract.decode_function_input(data)
        except ValueError:
            continue
        if "participant" in args and (int(call.get("round", -1)), str(call.get("participant"))) != (
                int(args["round"]), str(args["participant"])):
            continue  # another call in the same transaction (a multicall's other items)
        return str(function.fn_name), dict(call)
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
        if str(frame.get("to", "")).lower() == fed.address.lower() and frame.get("input"):
            found.append(bytes.fromhex(str(frame["input"]).removeprefix("0x")))
        stack.extend(frame.get("calls") or [])
    return found


def audit_task(fed: Federation, task_id: int, store: ContentStore | None = None) -> AuditReport:
    store = store or open_store()
    findings: list[Finding] = []

    def check(round_: int | None, wallet: str | None, name: str, ok: bool, detail: str = "") -> None:
        findings.append(Finding(round_, wallet, name, bool(ok), "" if ok else detail))

    task = fed.task(task_id)
    try:
        package = TaskPackage.get(store, task.package_cid)
    except ZkflError as exc:
        check(None, None, "task package", False, str(exc))
        return AuditReport(task_id, findings)
    spec = package.spec
    try:
        artifacts = get_backend(package.backend).step_from_package(package, store)
    except ZkflError as exc:
        check(None, None, "step circuit in the package", False, str(exc))
        return AuditReport(task_id, findings)
    aggregation = artifacts_from_package(package, store, "aggregation") if package.aggregation_slots else None
    # The contracts that judged this task verify with the package's keys, not others.
    for name, address, circuit in (("step verifier", task.verifier, artifacts),
                                   ("aggregation verifier", task.aggregation_verifier, aggregation)):
        if circuit is None:
            check(None, None, f"{name} on chain is the package's", False, "the task package has no such circuit")
            continue
        try:
            check_verifier_on_chain(fed.w3, address, backend_of(circuit).verifier(circuit))
            check(None, None, f"{name} on chain is the package's", True)
        except ZkflError as exc:
            check(None, None, f"{name} on chain is the package's", False, str(exc))
    created = fed.events("TaskCreated", task_id)[0]["args"]
    terms = fed.events("TaskTerms", task_id)[0]["args"]
    # The binding each wallet's proofs must carry is derived by the contract from the
    # context alone, so joins, leaves and rejoins do not change it.
    bindings: dict[str, int] = {}
    # An update accepted and later shown (challengeUpdate) not to match its published values left the round.
    withdrawn = {(int(e["args"]["round"]), str(e["args"]["participant"])) for e in fed.events("UpdateRejected", task_id)
                 if Reason(int(e["args"]["reason"])) == Reason.UPDATE_UNAVAILABLE}
    published_events = {int(e["args"]["round"]): e for e in fed.events("GlobalModelPublished", task_id)}
    published = {r: e["args"] for r, e in published_events.items()}
    start = {0: int(created["globalCommitment"])}
    start.update({r: int(a["globalCommitment"]) for r, a in published.items()})
    accepted: dict[int, dict[str, int]] = {}
    update_data = {(int(e["args"]["round"]), str(e["args"]["participant"]).lower()):
                   decode_update(bytes(e["args"]["update"])) for e in fed.events("UpdateData", task_id)}

    # ---- every accepted update: its proof, re-verified from the calldata
    for event in fed.events("UpdateAccepted", task_id):
        args = event["args"]
        round_, wallet, commitment = int(args["round"]), str(args["participant"]), int(args["updateCommitment"])
        if (round_, wallet) in withdrawn:
            continue
        accepted.setdefault(round_, {})[wallet] = commitment
        function, call = _calldata(fed, event)
        if function != "submitUpdate" or int(call["round"]) != round_ or call["participant"] != wallet:
            check(round_, wallet, "calldata", False, "the accepting call (its proof) cannot be recovered")
            continue
        values = [int(v) for v in call["publicValues"]]
        if len(values) != len(STEP_PUBLIC_LAYOUT):
            check(round_, wallet, "public values", False, f"{len(values)} public values")
            continue
        if wallet not in bindings:
            bindings[wallet] = fed.binding_of(task_id, wallet)
        check(round_, wallet, "starts from the round's global model", values[GLOBAL_INDEX] == start.get(round_),
              "the proof's global model is not the round's")
        check(round_, wallet, "bound to the participant", values[BINDING_INDEX] == bindings[wallet],
              "the proof carries another wallet's, task's or deployment's binding")
        check(round_, wallet, "outputs the accepted update", values[UPDATE_INDEX] == commitment,
              "the proof's output is not the accepted update")
        check(round_, wallet, "inputs within the task's bounds", values[CHECK_INDEX] == INPUTS_VALID,
              f"the proof's batch is outside |x| <= {spec.feature_bound} or its labels are not 0/1")
        # The values as the chain published them (UpdateData), whatever the call carried.
        published_values = update_data.get((round_, wallet.lower()), [])
        check(round_, wallet, "published update is the proof's output",
              len(published_values) == spec.param_count
              and commit(np.array(published_values, dtype=np.int64)) == commitment,
              "the update's values on chain do not hash to the accepted commitment")
        ok, reason = backend_of(artifacts).verify_step(artifacts, bytes(call["proof"]), values)
        check(round_, wallet, "proof verifies off chain", ok, reason)

    # ---- every published round: its FedAvg proof, re-verified from the calldata
    for round_ in range(task.rounds):
        event = published_events.get(round_ + 1)
        if event is None:
            continue
        if aggregation is None:
            check(round_, None, "aggregation proof", False, "the task package has no aggregation circuit")
            continue
        function, call = _calldata(fed, event)
        if function != "publishGlobalModel" or int(call["round"]) != round_:
            check(round_, None, "aggregation calldata", False, "the publishing transaction is not this round's")
            continue
        values = [int(v) for v in call["aggregationValues"]]
        order = list(accepted.get(round_, {}).values())  # events come in the contract's acceptance order
        problems = statement_problems(values, package.aggregation_slots, order,
                                      [task.samples_per_update] * len(order), int(event["args"]["globalCommitment"]))
        check(round_, None, "aggregation proof averages exactly the accepted updates", not problems,
              "; ".join(problems))
        ok, reason = verify_proof(aggregation, proof_json(bytes(call["aggregationProof"]), values))
        check(round_, None, "aggregation proof verifies off chain", ok, reason)

    # ---- every published round: model, manifest, and FedAvg re-derived (a second check)
    for round_ in range(task.rounds):
        event = published.get(round_ + 1)
        if event is None:
            continue
        commitment = int(event["globalCommitment"])
        try:
            model = ModelArtifact.get(store, cid_from_bytes(bytes(event["modelCid"])))
            manifest = AggregationManifest.get(store, cid_from_bytes(bytes(event["manifestCid"])))
        except ZkflError as exc:
            check(round_, None, "artifacts", False, str(exc))
            continue
        check(round_, None, "published model matches its commitment", commit(model.array()) == commitment,
              "the model artifact does not hash to the published commitment")
        listed = {e.wallet.lower(): int(e.update_commitment, 16) for e in manifest.entries}
        on_chain = {w.lower(): c for w, c in accepted.get(round_, {}).items()}
        check(round_, None, "manifest lists exactly the accepted updates", listed == on_chain,
              f"manifest lists {sorted(listed)}, the chain accepted {sorted(on_chain)}")
        if listed != on_chain:
            continue  # a wrong manifest may list anything: fetch nothing it names
        updates: list[list[int]] = []
        samples: list[int] = []
        for entry in manifest.entries:
            try:
                update = ModelArtifact.get(store, entry.update_cid)
            except ZkflError as exc:
                check(round_, entry.wallet, "update artifact matches its accepted commitment", False, str(exc))
                updates = []
                break
            check(round_, entry.wallet, "update artifact matches its accepted commitment",
                  commit(update.array()) == on_chain.get(entry.wallet.lower()),
                  "the update artifact does not hash to the accepted commitment")
            check(round_, entry.wallet, "weight is the task's samples per update",
                  entry.samples == task.samples_per_update, f"weighted {entry.samples}, the task says "
                  f"{task.samples_per_update}")
            updates.append(update.values)
            samples.append(task.samples_per_update)
        if updates:
            average = fedavg(updates, samples, package.update_scale, spec.scale)
            check(round_, None, "global model is the FedAvg of the accepted updates",
                  commit(np.array(average, dtype=np.int64)) == commitment,
                  f"published {commitment_hex(commitment)}, FedAvg of the accepted updates is "
                  f"{commitment_hex(commit(np.array(average, dtype=np.int64)))}")

    # ---- payouts follow the reward rule
    if task.settled:
        slashed = {str(e["args"]["participant"]) for e in fed.events("Slashed", task_id)}
        samples_by: dict[str, int] = {}
        for event in fed.events("UpdateAccepted", task_id):
            wallet = str(event["args"]["participant"])
            if wallet not in slashed:
                samples_by[wallet] = samples_by.get(wallet, 0) + int(event["args"]["samples"])
        pool = int(created["rewardPool"]) + sum(int(e["args"]["amount"]) for e in fed.events("ToppedUp", task_id))
        if SlashRule(int(terms["slashRule"])) == SlashRule.TO_REWARD_POOL:
            pool += sum(int(e["args"]["amount"]) for e in fed.events("Slashed", task_id))
        total = sum(samples_by.values())
        for event in fed.events("Withdrawn", task_id):
            wallet, reward = str(event["args"]["account"]), int(event["args"]["reward"])
            mine = samples_by.get(wallet, 0)
            if mine == 0 or total == 0:
                expected = 0
            elif RewardRule(int(terms["rewardRule"])) == RewardRule.EQUAL_SHARES:
                expected = pool // len(samples_by)
            else:
                expected = pool * mine // total
            check(None, wallet, "payout follows the reward rule", reward == expected,
                  f"paid {reward} wei, the rule gives {expected}")
    return AuditReport(task_id, findings)
