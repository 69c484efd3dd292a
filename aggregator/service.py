"""The aggregator: consume submissions, relay them for on-chain verification, FedAvg
the accepted updates and publish the next global model.

Round life cycle: open -> collecting -> aggregating -> published. A round closes when
every active participant has a decision on chain (accepted, or rejected and slashed),
or when the task's collection window (fixed on chain at creation) has passed with at
least one accepted update; the contract refuses an earlier close.

Every accepted update's values are on chain (the contract emits them in ``UpdateData``),
so an update a participant submitted directly, never sending it to the broker, is taken
from the chain. One whose published values are not its proof's output is challenged on
chain (``challengeUpdate``): it leaves the round and its submitter is slashed. Nobody can
freeze a round by withholding data.

A message is acked only after its decision is on chain *and* in the aggregator's
SQLite state (or it is dead-lettered with its reason). A crash therefore never loses a
submission: the broker redelivers it, and a redelivered submission that the chain has
already decided is adopted from the message (its update must match the commitment the
chain accepted) with no second effect. A round caught mid-aggregation is recomputed
from the stored updates, so a restart publishes the model a clean run publishes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace

import numpy as np
from eth_account.signers.local import LocalAccount
from web3 import Web3

from zkfl.aggregator.fedavg import fedavg
from zkfl.aggregator.records import Rejection, RoundRecord, metrics_path, save_rounds
from zkfl.aggregator.state import AggregatorState, Decision, default_path
from zkfl.artifacts import AggregationManifest, ManifestEntry, ModelArtifact, TaskPackage
from zkfl.contracts.chain import chain_key, latest_block_time, next_block_time
from zkfl.contracts.federation import BatchResult, Federation, Reason, SignedUpdate, Status, SubmitResult
from zkfl.contracts.verifiers import check_verifier_on_chain
from zkfl.errors import BrokerError, ChainError, MessageError, StoreUnavailable, ZkflError
from zkfl.field.commit import commit, commitment_hex
from zkfl.middleware.messages import UpdateSubmission, decode_submission
from zkfl.middleware.transport.base import Delivery, Transport, task_key
from zkfl.prover.ezkl.aggregation import prove_aggregation
from zkfl.prover.ezkl.circuit import CircuitArtifacts
from zkfl.prover.ezkl.evm import verifier
from zkfl.prover.ezkl.keys import artifacts_from_package
from zkfl.store import ContentStore, cid_from_bytes, open_store

log = logging.getLogger("zkfl.aggregator")


class RoundChanged(ZkflError):
    """The round's accepted set changed between proving its FedAvg and publishing it."""


class StillCollecting(ZkflError):
    """The contract would not close the round yet: its collection window has not passed on chain."""

#: (model ints at the model scale) -> (loss, accuracy) on held-out data
Evaluator = Callable[[list[int]], tuple[float, float]]
#: (round, accepted wallets) -> held-out accuracy of float FedAvg over the same batches, for a runner
#: that sees every participant's data (a simulation or the demo); None where it cannot say
Reference = Callable[[int, list[str]], float | None]


class Aggregator:
    def __init__(
        self,
        federation: Federation,
        task_id: int,
        account: LocalAccount,
        transport: Transport,
        store: ContentStore | None = None,
        *,
        evaluator: Evaluator | None = None,
        reference: Reference | None = None,
        on_round: Callable[[RoundRecord], None] | None = None,
        state: AggregatorState | None = None,
        relayer: LocalAccount | None = None,
        batch_size: int = 1,
        batch_wait: float = 2.0,
    ) -> None:
        self.federation = federation
        self.task_id = task_id
        self.account = account
        # Submissions are relayed by `relayer` (anyone may relay: the participant's
        # signature decides whose they are). Workers sharing a queue use their own.
        self.relayer = relayer or account
        # Up to batch_size admitted submissions go in one transaction (submitUpdates), the first
        # of them waiting at most batch_wait seconds for the others.
        self.batch_size, self.batch_wait = max(1, batch_size), batch_wait
        self.transport = transport
        self.store = store or open_store()
        self.evaluator = evaluator
        self.reference = reference
        self.on_round = on_round
        self.store_retry_seconds = 5.0  # between tries to publish while the content store is unavailable
        task = federation.task(task_id)
        role = federation.contract.functions.aggregatorRole(task_id).call()
        if not federation.contract.functions.hasRole(role, account.address).call():
            raise ChainError(f"{account.address} is not an aggregator of task {task_id}")
        self.package = TaskPackage.get(self.store, task.package_cid)
        self.chain_id = federation.w3.eth.chain_id
        self.queue_key = task_key(chain_key(federation.w3), federation.address, task_id)
        self.state = state or AggregatorState(default_path(self.queue_key))
        self.history: list[RoundRecord] = []
        self._metrics_path = metrics_path(self.queue_key)
        self._aggregation: CircuitArtifacts | None = None
        self._refused_early: set[int] = set()  # rounds the contract said were still collecting
        self.clock: Callable[[], float] = time.time  # this machine's clock (a test may set it ahead)
        self._sync_published(task.current_round)

    # ------------------------------------------------------------- hooks
    # Named points a subclass may override to observe the aggregator (or, in the fault
    # tests, to hold it still at a crash point). Both are between a chain transaction and
    # the local bookkeeping that follows it, where a crash must lose nothing.

    def after_relay(self, submission: UpdateSubmission) -> None:
        """A submission's decision is on chain; it is not yet recorded or acknowledged."""

    def before_publish(self, round_: int) -> None:
        """The round's model, manifest and FedAvg proof are made; the publish transaction is not sent."""

    # ------------------------------------------------------------- rounds

    def _sync_published(self, current_round: int) -> None:
        """Rounds the chain has published are published here too (a crash may have hit
        between the publish transaction and the state update)."""
        events = {int(e["args"]["round"]): e for e in self.federation.events("GlobalModelPublished", self.task_id)}
        for round_ in range(current_round):
            saved = self.state.round_state(round_)
            if saved is None or saved["state"] != "published":
                event = events.get(round_ + 1)
                commitment = commitment_hex(int(event["args"]["globalCommitment"])) if event else None
                cid = cid_from_bytes(bytes(event["args"]["modelCid"])) if event else None
                self.state.set_round(round_, "published", global_commitment=commitment, model_cid=cid)

    def run(self, stop: threading.Event | None = None, poll: float = 0.5) -> list[RoundRecord]:
        """Serve the task until its last round is published (or ``stop`` is set). With
        ``batch_size`` over 1, admitted submissions wait (at most ``batch_wait`` seconds) to be
        relayed together."""
        pending: list[tuple[Delivery, UpdateSubmission]] = []
        first_pending = 0.0
        while not (stop is not None and stop.is_set()):
            task = self.federation.task(self.task_id)
            if task.finished or task.settled:
                break
            delivery = self.transport.receive_submission(self.queue_key, timeout=poll)
            if delivery is not None:
                admitted = self._admit_safely(delivery)
                if admitted is not None:
                    first_pending = first_pending if pending else time.monotonic()
                    pending.append((delivery, admitted))
            if pending and (len(pending) >= self.batch_size or time.monotonic() - first_pending >= self.batch_wait):
                self.relay_batch(pending)
                pending = []
            if not pending:  # submissions received in time are relayed before their round may close
                self.maybe_close_round()
        for delivery, _ in pending:
            delivery.retry_later()  # stopped before relaying: the broker keeps them
        return self.history

    def _admit_safely(self, delivery: Delivery) -> UpdateSubmission | None:
        try:
            return self.admit(delivery)
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            # A message no check foresaw: dead-letter it, never a crash on every redelivery.
            self._refuse(delivery, None, None, f"unprocessable message: {type(exc).__name__}: {exc}")
            return None

    def maybe_close_round(self) -> bool:
        task = self.federation.task(self.task_id)
        if task.finished:
            return False
        round_ = task.current_round
        on_chain = self.federation.round(self.task_id, round_)
        saved = self.state.round_state(round_)
        resuming = saved is not None and saved["state"] == "aggregating"
        everyone_decided = on_chain.accepted >= task.active_participants  # what the contract lets close early
        window_over = self._chain_time(round_) >= on_chain.opened_at + task.collection_window
        if on_chain.accepted == 0 or not (resuming or everyone_decided or window_over):
            return False
        if not self.adopt_from_chain(round_):
            return False
        try:
            self.aggregate_and_publish(round_)
        except (RoundChanged, StillCollecting):
            return False
        except StoreUnavailable as exc:
            # The IPFS node is down or slow: the round stays open on chain, and is published
            # once the node answers again (the FedAvg proof is cheap to redo next time).
            log.warning("round %d: cannot publish yet: %s", round_, exc)
            time.sleep(self.store_retry_seconds)
            return False
        return True

    def _chain_time(self, round_: int) -> int:
        """When a publication sent now would land. This machine's clock stands in for an idle
        chain's (its next block takes the time it is mined at), until the contract has refused
        the round as still collecting: then only the chain's own latest block says when."""
        if round_ in self._refused_early:
            return latest_block_time(self.federation.w3)
        return next_block_time(self.federation.w3, self.clock)

    def adopt_from_chain(self, round_: int) -> bool:
        """Check every accepted update's values as the chain published them (``UpdateData``):
        take those this aggregator never received over the broker, and challenge those that
        are not their proof's output (even one it holds good values for: the chain's copy is
        what anyone else can use). True when every accepted update of the round is held."""
        held = {d.wallet for d in self.state.accepted(round_)}
        complete = True
        for wallet, values in self.federation.published_updates(self.task_id, round_).items():
            submission = self.federation.submission(self.task_id, round_, wallet)  # status, seal and commitment
            if submission.status != Status.ACCEPTED:
                continue
            commitment = submission.update_commitment
            if not submission.seals(commitment, values):  # the chain's own record says the node's logs are wrong
                raise ChainError(f"round {round_}: the node's UpdateAccepted and UpdateData logs for {wallet} are not "
                                 "what the chain recorded: use another RPC node")
            matches = len(values) == self.package.spec.param_count and \
                commit(np.array(values, dtype=np.int64)) == commitment
            if matches and wallet not in held:
                log.info("round %d: adopted %s's update from the chain", round_, wallet)
                self.state.record_decision(Decision(
                    round=round_, wallet=wallet, status="accepted", reason="", update_commitment=commitment_hex(
                        commitment), update_scale=self.package.update_scale, update_values=values,
                    num_samples=self.package.spec.batch, gas=None, metrics={}))
            elif not matches:
                self._challenge(round_, wallet, values, commitment)
                complete = False  # the round's accepted set changed: look again
        return complete and len(self.state.accepted(round_)) >= self.federation.round(self.task_id, round_).accepted

    def _challenge(self, round_: int, wallet: str, values: list[int], commitment: int) -> None:
        log.warning("round %d: %s's published update is not its proof's output: challenging", round_, wallet)
        try:
            self.federation.challenge_update(self.relayer, self.task_id, round_, wallet, values)
        except ChainError:  # another worker (or anyone) challenged it first
            if self.federation.submission_status(self.task_id, round_, wallet)[0] == Status.ACCEPTED:
                raise
        self.state.record_rejection(round_, wallet, Reason.UPDATE_UNAVAILABLE.text, commitment_hex(commitment),
                                    self.package.update_scale, self.package.spec.batch)

    def aggregation_circuit(self) -> CircuitArtifacts:
        """The package's FedAvg circuit, keys rebuilt here (checked against the published vk)."""
        if self._aggregation is None:
            circuit = artifacts_from_package(self.package, self.store, "aggregation")
            # Proofs are only worth making for the verifier the contract will ask.
            check_verifier_on_chain(self.federation.w3, self.federation.task(self.task_id).aggregation_verifier,
                                    verifier(circuit))
            self._aggregation = circuit
        return self._aggregation

    def _refuse_if_still_collecting(self, round_: int) -> None:
        """The contract refused to close the round before its window ends: this machine's clock
        ran ahead of the chain's. Collect again, and let the chain's clock decide from now on."""
        task, on_chain = self.federation.task(self.task_id), self.federation.round(self.task_id, round_)
        chain_now = latest_block_time(self.federation.w3)
        if chain_now < on_chain.opened_at + task.collection_window and on_chain.accepted < task.active_participants:
            log.warning("round %d: the chain is still collecting submissions (its clock is behind this "
                        "machine's); publishing once its window has passed", round_)
            self._refused_early.add(round_)
            self.state.set_round(round_, "collecting")
            raise StillCollecting(round_) from None

    def accepted_in_chain_order(self, round_: int) -> list[Decision]:
        """The round's accepted updates in the order the contract recorded them: slot k of
        the FedAvg proof must hold the k-th accepted update."""
        by_commitment = {int(d.update_commitment, 16): d for d in self.state.accepted(round_)}
        order = self.federation.accepted_updates(self.task_id, round_)
        missing = [c for c in order if c not in by_commitment]
        if missing:
            raise ZkflError(f"round {round_}: {len(missing)} accepted update(s) are not in the aggregator's state")
        return [by_commitment[c] for c in order]

    def aggregate_and_publish(self, round_: int) -> RoundRecord:
        self.state.set_round(round_, "aggregating")
        accepted = self.accepted_in_chain_order(round_)
        spec = self.package.spec
        updates, samples = [d.update_values or [] for d in accepted], [d.num_samples for d in accepted]
        values = fedavg(updates, samples, self.package.update_scale, spec.scale)
        model = ModelArtifact(spec.spec_hash(), spec.scale, values)
        cid = model.put(self.store)
        commitment = commit(np.array(values, dtype=np.int64))
        entries = []
        for d in accepted:
            update = ModelArtifact(spec.spec_hash(), d.update_scale, d.update_values or [])
            entries.append(ManifestEntry(d.wallet, update.put(self.store), d.update_commitment, d.num_samples))
        manifest = AggregationManifest(round_, cid, entries)
        manifest_cid = manifest.put(self.store)
        proof = prove_aggregation(self.aggregation_circuit(), updates, samples, values)
        self.before_publish(round_)
        gas: int | None = None
        tx: str | None = None
        try:
            published = self.federation.publish_global_model(
                self.account, self.task_id, round_, commitment, cid, manifest_cid,
                proof.proof_bytes, proof.instances)
            gas, tx = published.gas_used, published.tx_hash
        except ChainError:
            if self.federation.task(self.task_id).current_round <= round_:
                if self.federation.accepted_updates(self.task_id, round_) != [
                        int(d.update_commitment, 16) for d in accepted]:
                    # An update was accepted (or challenged out) while this one was being proved:
                    # the round is still open, so aggregate again over the set the chain now holds.
                    log.info("round %d: the accepted set changed while proving; aggregating again", round_)
                    raise RoundChanged(round_) from None
                self._refuse_if_still_collecting(round_)
                raise
            # another aggregator worker published this round first
        loss, accuracy = self.evaluator(values) if self.evaluator is not None else (None, None)
        reference = self.reference(round_, [d.wallet for d in accepted]) if self.reference is not None else None
        self.state.set_round(round_, "published", global_commitment=commitment_hex(commitment), model_cid=cid,
                             publish_gas=gas, publish_tx=tx, aggregation_prove_seconds=proof.prove_seconds,
                             accuracy=accuracy, loss=loss, reference_accuracy=reference)
        record = self.round_record(round_)
        self.history.append(record)
        save_rounds(self._metrics_path, [self.round_record(r) for r in range(round_ + 1)])
        log.info("round %d published: %s", round_, record.global_commitment)
        try:
            self.transport.publish_event(self.queue_key, {"type": "round_published", **record.to_json()})
        except BrokerError as exc:  # the chain and the state hold the truth; the fan-out is a convenience
            log.warning("could not fan out round %d: %s", round_, exc)
        if self.on_round is not None:
            self.on_round(record)
        return record

    def round_record(self, round_: int) -> RoundRecord:
        """The round as the aggregator saw it, rebuilt from its state."""
        start = self.federation.round(self.task_id, round_).global_commitment
        record = RoundRecord(round=round_, start_commitment=commitment_hex(start))
        for d in self.state.decisions(round_):
            wallet = Web3.to_checksum_address(d.wallet)
            if d.status == "accepted":
                record.accepted.append(wallet)
            else:
                record.rejected.append(Rejection(wallet, d.reason, on_chain=True))
            if d.gas is not None:
                record.verify_gas.append(d.gas)
            if d.metrics.get("prove_seconds") is not None:
                record.prove_seconds.append(float(d.metrics["prove_seconds"]))
            record.client_metrics[wallet] = d.metrics
        for _, wallet, reason in self.state.refusals(round_):
            record.rejected.append(Rejection(wallet or "unknown", reason, on_chain=False))
        saved = self.state.round_state(round_) or {}
        record.global_commitment = saved.get("global_commitment")
        record.model_cid = saved.get("model_cid")
        record.publish_gas = saved.get("publish_gas")
        record.publish_tx = saved.get("publish_tx")
        record.aggregation_prove_seconds = saved.get("aggregation_prove_seconds")
        record.accuracy, record.loss = saved.get("accuracy"), saved.get("loss")
        record.reference_accuracy = saved.get("reference_accuracy")
        return record

    # ------------------------------------------------------------- messages

    def handle(self, delivery: Delivery) -> None:
        """Check one message and relay it on its own."""
        submission = self.admit(delivery)
        if submission is not None:
            self._relay_one(delivery, submission)

    def handle_together(self, deliveries: list[Delivery]) -> None:
        """Check several messages and relay those admitted in one transaction (``relay_batch``)."""
        admitted = [(delivery, s) for delivery in deliveries if (s := self._admit_safely(delivery)) is not None]
        if admitted:
            self.relay_batch(admitted)

    def admit(self, delivery: Delivery) -> UpdateSubmission | None:
        """Every check before the chain. Returns the submission to relay, or None when the
        message was answered here (refused, adopted from the chain, or sent back to the queue)."""
        try:
            submission = decode_submission(delivery.body)
            self._check_header(submission)  # before fetching anything the message names
            submission = self._resolve_update(submission)
        except MessageError as exc:
            self._refuse(delivery, None, None, exc.reason)
            return None
        except StoreUnavailable as exc:
            log.warning("an update sent by CID cannot be fetched yet (%s): back to the queue", exc)
            delivery.retry_later()
            time.sleep(self.store_retry_seconds)
            return None
        status, reason = self.federation.submission_status(self.task_id, submission.round, submission.wallet)
        if status != Status.NONE:
            self._adopt(delivery, submission, status, reason)
            return None
        current = self.federation.task(self.task_id).current_round
        if submission.round != current:
            self._refuse(delivery, submission.round, submission.wallet,
                         f"submission is for round {submission.round}, but round {current} is open")
            return None
        try:
            self._check_payload(submission)
        except MessageError as exc:
            self._refuse(delivery, submission.round, submission.wallet, exc.reason)
            return None
        return submission

    def _relay_one(self, delivery: Delivery, submission: UpdateSubmission) -> None:
        try:
            result = self.federation.submit_update(
                self.relayer, self.task_id, submission.round, submission.wallet,
                submission.update_commitment_int, submission.update, submission.proof_bytes,
                submission.public_value_ints, submission.signature_bytes)
        except ChainError as exc:
            status, reason = self.federation.submission_status(self.task_id, submission.round, submission.wallet)
            if status != Status.NONE:  # another worker relayed a copy first
                self._adopt(delivery, submission, status, reason)
                return
            self._refuse(delivery, submission.round, submission.wallet, f"chain refused the submission: {exc}")
            return
        self._settle(delivery, submission, result, result.gas_used)

    def _settle(self, delivery: Delivery, submission: UpdateSubmission, result: SubmitResult, gas: int) -> None:
        """The chain decided ``submission``: record the decision, then acknowledge its message."""
        self.after_relay(submission)
        self._record(submission, "accepted" if result.accepted else "rejected", result.reason.text, gas)
        delivery.ack()

    def relay_batch(self, items: list[tuple[Delivery, UpdateSubmission]]) -> None:
        """Several admitted submissions of one round in one `submitUpdates` transaction (their
        proofs verified together where the task's verifier can). If the chain refuses the batch
        as a whole (a copy relayed by another worker, a round that filled up), each is relayed
        on its own, so nothing is lost and every message gets its own answer."""
        one_round = len({s.round for _, s in items}) == 1
        batch = self._submit_together(items) if one_round and len(items) > 1 else None
        for delivery, submission in items:
            if batch is None:
                self._relay_one(delivery, submission)
            else:
                self._settle(delivery, submission, batch.results[submission.wallet.lower()], batch.gas_per_update)

    def _submit_together(self, items: list[tuple[Delivery, UpdateSubmission]]) -> BatchResult | None:
        """One `submitUpdates` transaction for ``items``; None if the chain refused it as a whole."""
        updates = [SignedUpdate(s.wallet, s.update_commitment_int, s.update, s.proof_bytes, s.public_value_ints,
                                s.signature_bytes) for _, s in items]
        try:
            return self.federation.submit_updates(self.relayer, self.task_id, items[0][1].round, updates)
        except ChainError as exc:
            log.info("a batch of %d was refused as a whole (%s): relaying each on its own", len(items), exc)
            return None

    def _resolve_update(self, s: UpdateSubmission) -> UpdateSubmission:
        """Fetch an update sent by CID from the content store (checked against its CID)."""
        if s.update_cid is None:
            return s
        try:
            artifact = ModelArtifact.get(self.store, s.update_cid)
        except StoreUnavailable:
            raise  # not the message's fault: it goes back to the queue
        except ZkflError as exc:
            raise MessageError(f"update {s.update_cid} cannot be fetched: {exc}") from None
        if artifact.scale != s.update_scale:
            raise MessageError(f"update {s.update_cid} has scale {artifact.scale}, the message says {s.update_scale}")
        return replace(s, update=artifact.values)

    def _record(self, s: UpdateSubmission, status: str, reason: str, gas: int | None) -> None:
        accepted = status == "accepted"
        # The values are kept in the state; their artifact goes to the content store with the
        # round's manifest, so an unavailable store never stands between a decision and its record.
        self.state.record_decision(Decision(
            round=s.round, wallet=s.wallet, status=status, reason=reason, update_commitment=s.update_commitment,
            update_scale=s.update_scale, update_values=s.update if accepted else None, num_samples=s.num_samples,
            gas=gas, metrics=asdict(s.metrics)))

    def _adopt(self, delivery: Delivery, s: UpdateSubmission, status: Status, reason: Reason) -> None:
        """A submission the chain has already decided: a redelivery after a crash, or a re-send.

        Only the very submission that was decided is adopted (its update must hash to the
        commitment on chain); anything else for that round and wallet is refused."""
        on_chain = self.federation.submission(self.task_id, s.round, s.wallet)
        if not on_chain.seals(s.update_commitment_int, s.update) or \
                commit(np.array(s.update, dtype=np.int64)) != s.update_commitment_int:
            self._refuse(delivery, s.round, s.wallet,
                         f"round {s.round} already has a decided submission from this wallet, and this is not it")
            return
        if not any(d.wallet == s.wallet.lower() for d in self.state.decisions(s.round)):
            self._record(s, "accepted" if status == Status.ACCEPTED else "rejected", reason.text, None)
        delivery.ack()  # stored now or before: no second effect

    def _refuse(self, delivery: Delivery, round_: int | None, wallet: str | None, reason: str) -> None:
        log.warning("refused a submission from %s: %s", wallet or "unknown", reason)
        self.state.record_refusal(round_, wallet, reason)
        delivery.reject(reason)

    def _check_header(self, s: UpdateSubmission) -> None:
        if s.task_id != self.task_id or s.federation.lower() != self.federation.address.lower() \
                or s.chain_id != self.chain_id:
            raise MessageError(f"submission is for task {s.task_id} on {s.federation} (chain {s.chain_id}), "
                               f"not task {self.task_id} on {self.federation.address}")
        if s.backend != self.package.backend:
            raise MessageError(f"backend {s.backend!r} does not match the task's {self.package.backend!r}")
        participant = self.federation.participant(self.task_id, s.wallet)
        if not participant.joined:
            raise MessageError(f"unknown wallet {s.wallet}: it has not joined task {self.task_id}")

    def _check_payload(self, s: UpdateSubmission) -> None:
        spec = self.package.spec
        if len(s.update) != spec.param_count:
            raise MessageError(f"update has {len(s.update)} values, the model has {spec.param_count}")
        if s.update_scale != self.package.update_scale:
            raise MessageError(f"update scale {s.update_scale} is not the circuit's {self.package.update_scale}")
        expected = self.package.proof_bytes
        if expected is not None and len(s.proof_bytes) != expected:
            raise MessageError(f"truncated or padded proof: {len(s.proof_bytes)} bytes, this circuit's proofs are "
                               f"{expected}")
        if s.num_samples != spec.batch:
            raise MessageError(f"num_samples {s.num_samples} is not the task's {spec.batch} per step")
        if commit(np.array(s.update, dtype=np.int64)) != s.update_commitment_int:
            raise MessageError("update does not match its signed commitment (altered in transit?)")
