"""The aggregator: consume submissions, relay them for on-chain verification, FedAvg
the accepted updates and publish the next global model.

Round life cycle: open -> collecting -> aggregating -> published. A round closes when
every active participant has a decision on chain (accepted, or rejected and slashed),
or when ``round_timeout`` has passed with at least one accepted update.

A message is acked only after its effect is on chain (or it is dead-lettered with its
reason), so a crash never loses a submission: the broker redelivers it, and a
redelivered submission that already has a decision on chain is acked with no effect.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
from eth_account.signers.local import LocalAccount

from zkfl.aggregator.fedavg import fedavg
from zkfl.aggregator.records import Rejection, RoundRecord, metrics_path, save_rounds
from zkfl.artifacts import ModelArtifact, TaskPackage
from zkfl.contracts.chain import chain_key
from zkfl.contracts.federation import Federation, Status
from zkfl.errors import ChainError, MessageError
from zkfl.middleware.messages import UpdateSubmission, decode_submission
from zkfl.middleware.transport.base import Delivery, Transport, task_key
from zkfl.prover.commit import commit, commitment_hex
from zkfl.store import ContentStore, cid_from_digest, digest_of_cid

log = logging.getLogger("zkfl.aggregator")

#: (model ints at the model scale) -> (loss, accuracy) on held-out data
Evaluator = Callable[[list[int]], tuple[float, float]]


class Aggregator:
    def __init__(
        self,
        federation: Federation,
        task_id: int,
        account: LocalAccount,
        transport: Transport,
        store: ContentStore | None = None,
        *,
        round_timeout: float = 600.0,
        evaluator: Evaluator | None = None,
        on_round: Callable[[RoundRecord], None] | None = None,
    ) -> None:
        self.federation = federation
        self.task_id = task_id
        self.account = account
        self.transport = transport
        self.store = store or ContentStore()
        self.round_timeout = round_timeout
        self.evaluator = evaluator
        self.on_round = on_round
        task = federation.task(task_id)
        if task.aggregator.lower() != account.address.lower():
            raise ChainError(f"{account.address} is not the aggregator of task {task_id} ({task.aggregator})")
        self.package = TaskPackage.get(self.store, cid_from_digest(task.package_digest))
        self.chain_id = federation.w3.eth.chain_id
        self.history: list[RoundRecord] = []
        self.queue_key = task_key(chain_key(federation.w3), federation.address, task_id)
        self._updates: dict[str, tuple[list[int], int]] = {}  # wallet -> (update, samples), open round
        self._round_opened = time.monotonic()
        self._metrics_path = metrics_path(self.chain_id, federation.address, task_id)
        self._open_record(task.current_round)

    # ------------------------------------------------------------- rounds

    def _open_record(self, round_: int) -> None:
        start = self.federation.round(self.task_id, round_).global_commitment
        self.current = RoundRecord(round=round_, start_commitment=commitment_hex(start))
        self._updates = {}
        self._round_opened = time.monotonic()

    def run(self, stop: threading.Event | None = None, poll: float = 0.5) -> list[RoundRecord]:
        """Serve the task until its last round is published (or ``stop`` is set)."""
        while not (stop is not None and stop.is_set()):
            task = self.federation.task(self.task_id)
            if task.finished or task.settled:
                break
            delivery = self.transport.receive_submission(self.queue_key, timeout=poll)
            if delivery is not None:
                self.handle(delivery)
            self.maybe_close_round()
        return self.history

    def maybe_close_round(self) -> bool:
        task = self.federation.task(self.task_id)
        if task.finished:
            return False
        state = self.federation.round(self.task_id, task.current_round)
        everyone_decided = state.accepted >= task.active_participants and state.accepted > 0
        timed_out = time.monotonic() - self._round_opened > self.round_timeout and state.accepted > 0
        if not (everyone_decided or timed_out):
            return False
        self.aggregate_and_publish(task.current_round)
        return True

    def aggregate_and_publish(self, round_: int) -> RoundRecord:
        accepted = self.current.accepted
        missing = [w for w in accepted if w not in self._updates]
        if missing:
            raise ChainError(f"accepted updates of {missing} are not held by this aggregator")
        updates = [self._updates[w][0] for w in accepted]
        samples = [self._updates[w][1] for w in accepted]
        spec = self.package.spec
        values = fedavg(updates, samples, self.package.update_scale, spec.scale)
        model = ModelArtifact(spec.spec_hash(), spec.scale, values)
        cid = model.put(self.store)
        commitment = commit(np.array(values, dtype=np.int64))
        gas = self.federation.publish_global_model(self.account, self.task_id, round_, commitment,
                                                    digest_of_cid(cid))
        record = self.current
        record.global_commitment = commitment_hex(commitment)
        record.model_cid = cid
        record.publish_gas = gas
        if self.evaluator is not None:
            record.loss, record.accuracy = self.evaluator(values)
        self.history.append(record)
        save_rounds(self._metrics_path, self.history)
        log.info("round %d published: %s", round_, record.global_commitment)
        if self.on_round is not None:
            self.on_round(record)
        if round_ + 1 < self.federation.task(self.task_id).rounds:
            self._open_record(round_ + 1)
        return record

    # ------------------------------------------------------------- messages

    def handle(self, delivery: Delivery) -> None:
        try:
            submission = decode_submission(delivery.body)
            self._check_header(submission)
        except MessageError as exc:
            self._refuse(delivery, None, exc.reason)
            return
        status, _ = self.federation.submission_status(self.task_id, submission.round, submission.wallet)
        if status != Status.NONE:
            delivery.ack()  # a redelivery or a re-send: its effect is already on chain
            return
        try:
            self._check_payload(submission)
        except MessageError as exc:
            self._refuse(delivery, submission.wallet, exc.reason)
            return
        try:
            result = self.federation.submit_update(
                self.account, self.task_id, submission.round, submission.wallet,
                submission.update_commitment_int, submission.proof_bytes, submission.public_value_ints,
                submission.signature_bytes)
        except ChainError as exc:
            self._refuse(delivery, submission.wallet, f"chain refused the submission: {exc}")
            return
        record = self.current
        record.verify_gas.append(result.gas_used)
        if submission.metrics.prove_seconds is not None:
            record.prove_seconds.append(submission.metrics.prove_seconds)
        record.client_metrics[submission.wallet] = asdict(submission.metrics)
        if result.accepted:
            ModelArtifact(self.package.spec.spec_hash(), submission.update_scale, submission.update).put(self.store)
            self._updates[submission.wallet] = (submission.update, submission.num_samples)
            record.accepted.append(submission.wallet)
        else:
            record.rejected.append(Rejection(submission.wallet, result.reason.text, on_chain=True))
        delivery.ack()

    def _refuse(self, delivery: Delivery, wallet: str | None, reason: str) -> None:
        log.warning("refused a submission from %s: %s", wallet or "unknown", reason)
        self.current.rejected.append(Rejection(wallet or "unknown", reason, on_chain=False))
        delivery.reject(reason)

    def _check_header(self, s: UpdateSubmission) -> None:
        if s.task_id != self.task_id or s.federation.lower() != self.federation.address.lower() \
                or s.chain_id != self.chain_id:
            raise MessageError(f"submission is for task {s.task_id} on {s.federation} (chain {s.chain_id}), "
                               f"not task {self.task_id} on {self.federation.address}")
        if s.backend != self.package.backend:
            raise MessageError(f"backend {s.backend!r} does not match the task's {self.package.backend!r}")
        current = self.federation.task(self.task_id).current_round
        if s.round != current:
            raise MessageError(f"submission is for round {s.round}, but round {current} is open")
        participant = self.federation.participant(self.task_id, s.wallet)
        if not participant.joined:
            raise MessageError(f"unknown wallet {s.wallet}: it has not joined task {self.task_id}")

    def _check_payload(self, s: UpdateSubmission) -> None:
        spec = self.package.spec
        if len(s.update) != spec.param_count:
            raise MessageError(f"update has {len(s.update)} values, the model has {spec.param_count}")
        if s.update_scale != self.package.update_scale:
            raise MessageError(f"update scale {s.update_scale} is not the circuit's {self.package.update_scale}")
        if s.num_samples != spec.batch:
            raise MessageError(f"num_samples {s.num_samples} is not the task's {spec.batch} per step")
        if commit(np.array(s.update, dtype=np.int64)) != s.update_commitment_int:
            raise MessageError("update does not match its signed commitment (altered in transit?)")
