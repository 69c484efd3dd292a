"""ZkFedAvg: Flower's FedAvg that averages only proven, verified replies, with zkfl's integer FedAvg.

    strategy = ZkFedAvg(FlowerTask.off_chain(package_cid))
    result = strategy.start(grid=grid, initial_arrays=int_arrays(MODEL_KEY, initial), num_rounds=3)

Each round the train message names the task and round (the ConfigRecord) and carries the
global model as integers (the ArrayRecord). A reply enters the average only if its signed
submission verifies as the contract would verify it (:mod:`zkfl.flower.verdict`); every other
reply is recorded in :attr:`ZkFedAvg.rounds` with its reason. Flower's own FedAvg never sees an
unverified reply, whichever engine carried it.

With ``aggregator`` (a zkfl :class:`Aggregator` of a task on chain) the replies go the way
``zkfl aggregator run`` sends them: relayed to the Federation, which verifies each proof and
accepts or rejects (and slashes) it; the accepted ones are FedAvg'd, the average proven and
published on chain, and the published model is the next round's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from eth_utils.address import to_checksum_address
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from zkfl.aggregator.records import RoundRecord
from zkfl.aggregator.service import Aggregator
from zkfl.artifacts import ModelArtifact, TaskPackage
from zkfl.errors import ChainError, MessageError
from zkfl.field.commit import commit
from zkfl.flower.records import MODEL_KEY, NUM_EXAMPLES, int_arrays, int_values, read_reply, submission_metrics
from zkfl.flower.task import PACKAGE, FlowerTask
from zkfl.flower.verdict import RoundTerms, Verdict, judge
from zkfl.middleware.messages import UpdateSubmission
from zkfl.prover.ezkl.aggregation import prove_aggregation
from zkfl.prover.ezkl.circuit import CircuitArtifacts
from zkfl.prover.fedavg import fedavg
from zkfl.prover.records import StepCircuit
from zkfl.prover.registry import get_backend
from zkfl.store import ContentStore, open_store

#: (model integers at the model's scale) -> (loss, accuracy) on the organisation's held-out data
Evaluator = Callable[[list[int]], tuple[float, float]]


@dataclass
class Rejected:
    client: str  # the wallet, where the reply names one, else the Flower node
    node: int
    reason: str


@dataclass
class FlowerRound:
    round: int  # Flower's server round (from 1)
    zkfl_round: int  # the task's round (from 0)
    accepted: list[str] = field(default_factory=list)  # wallets, in reply order
    accepted_nodes: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    updates: list[list[int]] = field(default_factory=list)  # the accepted updates, averaged in this order
    samples: list[int] = field(default_factory=list)
    model: list[int] | None = None  # the new global model (integers at the model's scale)
    fedavg_proof: str | None = None  # 0x hex: the FedAvg proof, where the strategy proves its average
    fedavg_instances: list[str] = field(default_factory=list)
    accuracy: float | None = None
    loss: float | None = None
    seconds: float = 0.0  # from the first reply's check to the new model

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def signed_metrics(submissions: list[UpdateSubmission]) -> list[RecordDict]:
    """The submissions' metrics for Flower's weighted average, only those every one reported
    (Flower's average counts a missing metric as 0)."""
    metrics = [submission_metrics(s) for s in submissions]
    common = set.intersection(*(set(m) for m in metrics)) if metrics else set()
    return [RecordDict({"metrics": MetricRecord({k: v for k, v in m.items() if k in common})}) for m in metrics]


def evaluate_metrics(reply: Message) -> RecordDict | None:
    """An evaluate reply's loss and accuracy as finite numbers, or None if it has none such."""
    if reply.has_error() or len(reply.content.metric_records) != 1:
        return None
    [record] = reply.content.metric_records.values()
    count = record.get(NUM_EXAMPLES)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return None
    values: dict[str, float] = {}
    for key in ("loss", "accuracy"):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, float | int) or not math.isfinite(value):
            return None
        values[key] = float(value)
    return RecordDict({"metrics": MetricRecord({NUM_EXAMPLES: count, **values})})


class ZkFedAvg(FedAvg):
    """Flower's FedAvg over verified replies only. ``task`` names what proofs must be bound to;
    ``circuit`` is the task's step circuit (else rebuilt from its package); ``aggregation`` the
    FedAvg circuit to prove each round's average with (off chain); ``aggregator`` a zkfl
    Aggregator of the task on chain; other keyword options are FedAvg's."""

    def __init__(self, task: FlowerTask, circuit: StepCircuit | None = None, *, store: ContentStore | None = None,
                 aggregator: Aggregator | None = None, participants: Iterable[str] | None = None,
                 evaluator: Evaluator | None = None, aggregation: CircuitArtifacts | None = None,
                 publish_timeout: float = 3600.0, **fedavg_options: Any) -> None:
        super().__init__(**fedavg_options)
        self.task, self.store = task, store or open_store()
        self.package = TaskPackage.get(self.store, task.package_cid)
        self.circuit = circuit or get_backend(self.package.backend).step_from_package(self.package, self.store)
        if task.on_chain and aggregator is None:
            raise ChainError("a Flower task on chain is published by a zkfl Aggregator: pass aggregator=")
        self.aggregator, self.evaluator, self.publish_timeout = aggregator, evaluator, publish_timeout
        # Off chain, the strategy proves each round's FedAvg with the task's FedAvg circuit when
        # given it (on chain the Aggregator always does, and publishes the proof).
        self.aggregation = aggregation
        self.participants = None if participants is None else {to_checksum_address(p) for p in participants}
        self.rounds: list[FlowerRound] = []
        self._sent: dict[int, tuple[int, int]] = {}  # server round -> (zkfl round, global commitment sent)

    def zkfl_round(self, server_round: int) -> int:
        if self.aggregator is not None:
            return self.aggregator.federation.task(self.task.task_id).current_round
        return server_round - 1

    def open_round(self, server_round: int, arrays: ArrayRecord) -> int:
        """Remember the model sent for ``server_round`` (every reply must start from it); the
        task's round it is."""
        round_ = self.zkfl_round(server_round)
        self._sent[server_round] = (round_, commit(np.array(int_values(arrays, MODEL_KEY), dtype=np.int64)))
        return round_

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        round_ = self.open_round(server_round, arrays)
        for key, value in self.task.to_config(round_).items():
            config[key] = value
        return super().configure_train(server_round, arrays, config, grid)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        config[PACKAGE] = self.task.package_cid
        return super().configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """Flower's weighted average over the replies with a finite loss and accuracy; a malformed
        reply is left out (Flower's own check would end the run)."""
        sane = [m for m in (evaluate_metrics(r) for r in replies) if m is not None]
        return self.evaluate_metrics_aggr_fn(sane, self.weighted_by_key) if sane else None

    def aggregate_train(self, server_round: int,
                        replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        start = time.monotonic()
        round_, commitment = self._sent[server_round]
        record = FlowerRound(server_round, round_)
        decoded = self._decode(list(replies), record)
        if self.aggregator is None:
            terms = RoundTerms(self.task, round_, commitment, self.package, self.circuit, self.participants)
            slots = None if self.aggregation is None else self.aggregation.slots
            verified = self._judge(decoded, terms, record, slots)
            self._average(record, verified)
        else:  # the chain judges (and slashes): every well-formed reply goes to it
            verified = self._publish_on_chain(round_, decoded, record)
        self.rounds.append(record)
        if record.model is None:
            return None, None
        if self.evaluator is not None:
            record.loss, record.accuracy = self.evaluator(record.model)
        record.seconds = time.monotonic() - start
        # Train metrics from the signed submissions (finite numbers, checked when decoded), never
        # from a reply's own MetricRecord: one malformed metric would end Flower's averaging.
        signed = signed_metrics([s for _, s in verified])
        metrics = self.train_metrics_aggr_fn(signed, self.weighted_by_key) if signed else None
        return int_arrays(MODEL_KEY, record.model), metrics

    def _average(self, record: FlowerRound, verified: list[tuple[Message, UpdateSubmission]]) -> None:
        """zkfl's integer FedAvg of the verified updates, weighted by their signed sample counts,
        proven with the task's FedAvg circuit where the strategy has it."""
        if not verified:
            return
        record.updates = [s.update for _, s in verified]
        record.samples = [s.num_samples for _, s in verified]
        record.model = fedavg(record.updates, record.samples, self.package.update_scale, self.package.spec.scale)
        if self.aggregation is not None:
            proof = prove_aggregation(self.aggregation, record.updates, record.samples, record.model)
            record.fedavg_proof = "0x" + proof.proof_bytes.hex()
            record.fedavg_instances = [hex(v) for v in proof.instances]

    @staticmethod
    def _decode(replies: list[Message], record: FlowerRound) -> list[tuple[Message, UpdateSubmission]]:
        """Each reply's signed submission; a reply without one (or a failed client) recorded with
        why, under its node (nothing in it is authenticated yet)."""
        decoded = []
        for reply in replies:
            node = int(reply.metadata.src_node_id)
            try:
                decoded.append((reply, read_reply(reply)))
            except MessageError as exc:
                record.rejected.append(Rejected(f"node {node}", node, str(exc)))
            except Exception as exc:  # one node's reply never ends the run: anything unforeseen is a rejection
                record.rejected.append(Rejected(f"node {node}", node, f"unprocessable reply: {type(exc).__name__}"))
        return decoded

    @staticmethod
    def _judge(decoded: list[tuple[Message, UpdateSubmission]], terms: RoundTerms, record: FlowerRound,
               slots: int | None) -> list[tuple[Message, UpdateSubmission]]:
        """The replies that pass every check, once per wallet; the others recorded with why."""
        verified: list[tuple[Message, UpdateSubmission]] = []
        for reply, submission in decoded:
            node = int(reply.metadata.src_node_id)
            try:
                verdict = judge(submission, terms)
            except Exception as exc:  # as in _decode: a rejection, never the end of the run
                verdict = Verdict(f"unprocessable reply: {type(exc).__name__}", signed=False)
            reason = verdict.reason
            if reason is None and submission.wallet in record.accepted:
                reason = f"a second reply from {submission.wallet} this round"
            if reason is None and slots is not None and len(verified) >= slots:
                reason = f"the round is full: the task's FedAvg circuit averages {slots} updates"
            if reason is not None:
                # Only a reply the wallet signed is put to the wallet's name: anyone can name any wallet.
                client = submission.wallet if verdict.signed else f"node {node} (names {submission.wallet})"
                record.rejected.append(Rejected(client, node, reason))
                continue
            record.accepted.append(submission.wallet)
            record.accepted_nodes.append(node)
            verified.append((reply, submission))
        return verified

    def _publish_on_chain(self, round_: int, decoded: list[tuple[Message, UpdateSubmission]],
                          record: FlowerRound) -> list[tuple[Message, UpdateSubmission]]:
        """Relay the replies to the Federation and publish the round as `zkfl aggregator run`
        does; the chain's decisions replace the strategy's (a rejection on chain slashes)."""
        assert self.aggregator is not None
        aggregator, key = self.aggregator, self.aggregator.queue_key
        for _, submission in decoded:
            aggregator.transport.publish_submission(key, submission.encode())
        # Each handled once (one the aggregator puts back is not retried in a loop), all in one
        # submitUpdates where the task's verifier checks a batch at once.
        received = (aggregator.transport.receive_submission(key, timeout=1.0) for _ in decoded)
        deliveries = [delivery for delivery in received if delivery is not None]
        if get_backend(self.package.backend).batch_verifies:
            aggregator.handle_together(deliveries)
        else:
            for delivery in deliveries:
                aggregator.handle(delivery)
        while (left := aggregator.transport.receive_submission(key, timeout=0.0)) is not None:
            left.reject("not relayed within its Flower round")
        if aggregator.federation.round(self.task.task_id, round_).accepted == 0:
            # Nothing to average: the round stays open on chain, and the next Flower round asks again.
            return self._chain_decisions(round_, aggregator.round_record(round_), decoded, record)
        # Published once everyone active is decided or the collection window is over (the
        # contract's rule), with every update accepted on chain, relayed here or sent directly.
        deadline = time.monotonic() + self.publish_timeout
        while not aggregator.maybe_close_round():
            if time.monotonic() > deadline:
                raise ChainError(f"round {round_} could not be published within {self.publish_timeout:.0f} s")
            time.sleep(1.0)
        published = aggregator.round_record(round_)
        kept = self._chain_decisions(round_, published, decoded, record)
        accepted = aggregator.accepted_in_chain_order(round_)  # what the published FedAvg averaged
        record.updates = [d.update_values or [] for d in accepted]
        record.samples = [d.num_samples for d in accepted]
        if published.model_cid is not None:
            record.model = ModelArtifact.get(aggregator.store, published.model_cid).values
        return kept

    def _chain_decisions(self, round_: int, decided: RoundRecord, relayed: list[tuple[Message, UpdateSubmission]],
                         record: FlowerRound) -> list[tuple[Message, UpdateSubmission]]:
        """The relayed replies the chain accepted (the very update it accepted, once a wallet);
        every decision recorded, put to a wallet's name only where the chain checked its signature."""
        assert self.aggregator is not None
        fed = self.aggregator.federation
        kept: list[tuple[Message, UpdateSubmission]] = []
        for wallet in decided.accepted:
            commitment = fed.submission(self.task.task_id, round_, wallet).update_commitment
            match = next(((m, s) for m, s in relayed if s.wallet.lower() == wallet.lower() and s.round == round_
                          and s.update_commitment_int == commitment), None)
            record.accepted.append(wallet)
            record.accepted_nodes.append(-1 if match is None else int(match[0].metadata.src_node_id))
            if match is not None:
                kept.append(match)
        for rejection in decided.rejected:
            naming = [int(m.metadata.src_node_id) for m, s in relayed if s.wallet.lower() == rejection.wallet.lower()
                      and all(m is not k for k, _ in kept)]
            node = naming[0] if len(naming) == 1 else -1
            if rejection.on_chain:  # the contract checked the signature: the wallet's own submission
                record.rejected.append(Rejected(rejection.wallet, node, f"rejected on chain: {rejection.reason}"))
            else:
                record.rejected.append(Rejected(f"node {node} (names {rejection.wallet})", node,
                                                f"refused: {rejection.reason}"))
        return kept
