"""The client SDK: join a task, follow its rounds, train and prove, submit.

    client = zkfl.Client(rpc_url, task_id, key, broker_url)
    client.join()
    for round in client.rounds():
        bundle = client.train(x, y)   # quantize, step, prove (with a progress line)
        client.submit(bundle)         # returns when the broker has confirmed it
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from zkfl.artifacts import ModelArtifact, TaskPackage
from zkfl.console import progress
from zkfl.contracts.chain import account_from_key, chain_key, connect, latest_block_time
from zkfl.contracts.federation import ERC20_ABI, ETH, Federation, Status, SubmitResult, TaskState, resolve_federation
from zkfl.contracts.verifiers import check_verifier_on_chain
from zkfl.errors import ProofError, ZkflError
from zkfl.field.binding import binding_commitment, binding_value
from zkfl.field.commit import commit, commitment_hex
from zkfl.field.quantize import Quantizer
from zkfl.middleware.bundle import UpdateBundle
from zkfl.middleware.messages import (
    MAX_INLINE_UPDATE_VALUES,
    MAX_MESSAGE_BYTES,
    ClientMetrics,
    UpdateSubmission,
)
from zkfl.middleware.transport.base import Transport, task_key
from zkfl.middleware.transport.rabbitmq import open_transport
from zkfl.prover.fedavg import fedavg
from zkfl.prover.local_step import prove_local_step
from zkfl.prover.records import StepCircuit, commits_to_data
from zkfl.prover.registry import get_backend
from zkfl.store import ContentStore, open_store

FloatArray = npt.NDArray[np.float64]
#: The shortest collection window the SDK joins: a round must leave time to prove in.
MIN_COLLECTION_WINDOW = 60


def currency_units(amount: Decimal, decimals: int) -> int:
    """``amount`` whole units of a currency with ``decimals`` decimals, in its smallest unit,
    exactly (Decimal arithmetic would round at 28 digits), or a ZkflError saying why not."""
    if decimals > 77:  # no uint256 holds 10**78: such a token's amounts are base units
        raise ZkflError(f"the task's token claims {decimals} decimals: give the stake in base units")
    numerator, denominator = amount.as_integer_ratio()
    units, rest = divmod(numerator * 10**decimals, denominator)
    if rest:
        raise ZkflError(f"{amount} has more decimals than the task's currency ({decimals})")
    return units


class RoundTimeout(ZkflError):
    """No round opened for this wallet within the time it was willing to wait."""


class Client:
    def __init__(
        self,
        rpc_url: str,
        task_id: int,
        key: str,
        broker_url: str | None = None,
        *,
        federation: str | None = None,
        store: ContentStore | None = None,
        transport: Transport | None = None,
        show_progress: bool = True,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        inline_update_values: int = MAX_INLINE_UPDATE_VALUES,
    ) -> None:
        self.w3 = connect(rpc_url)
        self.account = account_from_key(key)
        self.federation: Federation = resolve_federation(self.w3, federation)
        self.task_id = task_id
        self.store = store or open_store()
        self._broker_url = broker_url
        self._transport = transport
        self.show_progress = show_progress
        self.max_message_bytes = max_message_bytes
        self.inline_update_values = inline_update_values
        task = self.task()
        self.package = TaskPackage.get(self.store, task.package_cid)
        self.spec = self.package.spec
        self.quantizer = Quantizer(self.spec.scale)
        self._artifacts: StepCircuit | None = None
        self.queue_key = task_key(chain_key(self.w3), self.federation.address, task_id)
        self.binding = binding_value(self.w3.eth.chain_id, self.federation.address, task_id, self.address)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = open_transport(self._broker_url)
        return self._transport

    @property
    def artifacts(self) -> StepCircuit:
        """The task's circuit, keys rebuilt from its package and checked against the chain."""
        if self._artifacts is None:
            backend = get_backend(self.package.backend)
            artifacts = backend.step_from_package(self.package, self.store)
            check_verifier_on_chain(self.w3, self.task().verifier, backend.verifier(artifacts))
            self._artifacts = artifacts
        return self._artifacts

    def task(self) -> TaskState:
        return self.federation.task(self.task_id)

    def check_task_terms(self) -> None:
        """Refuse, with the reason, a task whose on-chain terms contradict its package: what
        the SDK checks before it joins and before it signs, so that no setting an
        organisation chose can get this wallet slashed for honest work."""
        task = self.task()
        if task.samples_per_update != self.spec.batch:
            raise ZkflError(f"task {self.task_id} counts {task.samples_per_update} samples per update, but its "
                            f"package's circuit proves batches of {self.spec.batch}")
        if task.update_values != self.spec.param_count:
            raise ZkflError(f"task {self.task_id} takes updates of {task.update_values} values, but its package's "
                            f"model has {self.spec.param_count} parameters")
        if self.package.aggregation_slots and task.aggregation_slots != self.package.aggregation_slots:
            raise ZkflError(f"task {self.task_id} has {task.aggregation_slots} update slots a round, but its "
                            f"package's FedAvg circuit averages {self.package.aggregation_slots}: no round could "
                            "ever be published")
        if task.pin_data != self.spec.commits_data:
            raise ZkflError(f"task {self.task_id} pins data, but its package's circuit commits to no data: the pin "
                            "would hold nobody to anything" if task.pin_data else
                            f"task {self.task_id} does not pin data, but its package's circuit would publish a "
                            "commitment to your data in every proof")
        if task.collection_window < MIN_COLLECTION_WINDOW:
            raise ZkflError(f"task {self.task_id} collects submissions for {task.collection_window} s a round, too "
                            f"short to prove in (the SDK asks for at least {MIN_COLLECTION_WINDOW} s)")
        if task.settled or task.finished:
            raise ZkflError(f"task {self.task_id} is closed")
        self.artifacts  # noqa: B018  (rebuilds keys from the package and checks the verifier on chain)

    def token_units(self, amount: Decimal) -> int:
        """``amount`` whole ETH or whole tokens of the task's ERC-20, in its smallest unit."""
        token = self.task().token
        decimals = 18 if token == ETH else int(
            self.w3.eth.contract(address=token, abi=ERC20_ABI).functions.decimals().call())
        return currency_units(amount, decimals)

    def join(self, stake_wei: int | None = None) -> None:
        task = self.task()
        stake = task.min_stake if stake_wei is None else stake_wei
        if task.token == ETH:
            balance = self.w3.eth.get_balance(self.account.address)
        else:
            token = self.w3.eth.contract(address=task.token, abi=ERC20_ABI)
            balance = int(token.functions.balanceOf(self.account.address).call())
        if balance < stake:
            raise ZkflError(f"wallet {self.address} holds {balance}, less than the stake of {stake} "
                            "(wei, or token units for an ERC-20 task)")
        self.check_task_terms()
        self.federation.join(self.account, self.task_id, stake)

    def rounds(self, poll_seconds: float = 0.5, timeout: float | None = None) -> Iterator[int]:
        """Yield each round that is open and that this wallet has not yet submitted to."""
        yielded: set[int] = set()
        start = time.monotonic()
        while True:
            task = self.task()
            me = self.federation.participant(self.task_id, self.address)
            # Past the deadline (by the chain's clock, not this machine's) the contract takes no submission.
            closed = task.settled or task.finished or latest_block_time(self.w3) > task.deadline
            if closed or me.slashed or not me.joined:
                return
            round_ = task.current_round
            status, _ = self.federation.submission_status(self.task_id, round_, self.address)
            if round_ not in yielded and status == Status.NONE:
                yielded.add(round_)
                yield round_
                start = time.monotonic()
                continue
            if timeout is not None and time.monotonic() - start > timeout:
                raise RoundTimeout(f"no new round opened within {timeout:.0f} s")
            time.sleep(poll_seconds)

    def global_model(self, round_: int | None = None) -> ModelArtifact:
        """The round's global model: the artifact under the CID on chain, or, when that is
        missing or is not the committed model (an aggregator withholding it), FedAvg of the
        previous round's accepted updates recomputed from their values on chain. FedAvg's
        result is unique, so either way it is the model the commitment names."""
        task = self.task()
        round_ = task.current_round if round_ is None else round_
        state = self.federation.round(self.task_id, round_)
        try:
            if state.model_cid is None:
                raise ZkflError(f"round {round_} of task {self.task_id} has no model yet")
            model = ModelArtifact.get(self.store, state.model_cid)
            if commit(model.array()) == state.global_commitment:
                return model
        except ZkflError:
            pass
        if round_ == 0:
            raise ZkflError(f"the initial model of task {self.task_id} is not available, or not the committed one")
        model = self._model_from_chain(round_ - 1)
        if commit(model.array()) != state.global_commitment:
            raise ZkflError(f"global model of round {round_} does not match its commitment on chain")
        return model

    def _model_from_chain(self, previous: int) -> ModelArtifact:
        published = self.federation.published_updates(self.task_id, previous)
        by_commitment = {commit(np.array(values, dtype=np.int64)): values for values in published.values()}
        try:
            updates = [by_commitment[c] for c in self.federation.accepted_updates(self.task_id, previous)]
        except KeyError:
            raise ZkflError(f"round {previous}'s accepted updates are not all on chain") from None
        samples = [self.task().samples_per_update] * len(updates)
        values = fedavg(updates, samples, self.package.update_scale, self.spec.scale)
        return ModelArtifact(self.spec.spec_hash(), self.spec.scale, values)

    def train(self, data: FloatArray | tuple[FloatArray, FloatArray], y: FloatArray | None = None,
              round_: int | None = None) -> UpdateBundle:
        """One proven training step from this round's global model on the client's data.

        ``data`` is ``(features, labels)``, or the features with ``y`` the labels. The
        round's batch is taken from the data in order (see :func:`zkfl.datasets.round_batch`).
        """
        if y is None:
            if not isinstance(data, tuple) or len(data) != 2:
                raise ZkflError("train() takes (features, labels), or features and labels")
            x, y = data
        else:
            x = data  # type: ignore[assignment]
        task = self.task()
        round_ = task.current_round if round_ is None else round_
        if task.finished:
            raise ZkflError(f"task {self.task_id} has finished all its rounds")
        registered = self.federation.participant(self.task_id, self.address)
        if not registered.joined:
            raise ZkflError(f"wallet {self.address} has not joined task {self.task_id}: run `zkfl client join` first")
        if registered.binding != binding_commitment(self.binding):
            raise ZkflError(f"the contract's binding for {self.address} in task {self.task_id} is not the one "
                            "zkfl derives: is this the task's Federation?")
        model = self.global_model(round_)
        # A task that pins data accepts one data commitment per participant: train on the same
        # batch every round (the first of the data), whatever the amount of data.
        batch_round = 0 if task.pin_data else round_
        with progress(f"proving round {round_} for {self.address[:10]}", self.show_progress):
            step = prove_local_step(self.artifacts, model.array(), np.asarray(x), np.asarray(y), batch_round,
                                    self.binding)
        proof = step.proof
        if proof.global_commitment != self.federation.round(self.task_id, round_).global_commitment:
            raise ProofError("the proof does not start from the round's global model")
        if not task.pin_data and commits_to_data(proof.instances):
            # Whatever the package's spec says, no public value that depends on the data leaves this machine.
            raise ProofError(f"task {self.task_id} does not pin data, but its circuit's proof commits to this "
                             "batch (a hash of your data): it was not sent")
        return UpdateBundle(
            task_id=self.task_id, round=round_, num_samples=self.spec.batch, update_scale=proof.update_scale,
            update=proof.update, public_values=proof.instances, proof_bytes=proof.proof_bytes, proof=proof.proof,
            metrics=ClientMetrics(loss=step.loss, accuracy=step.accuracy, prove_seconds=proof.prove_seconds),
        )

    def build_submission(self, bundle: UpdateBundle, *, preflight: bool = True) -> UpdateSubmission:
        """Sign the update the client sends: its commitment is computed from its weights.

        With ``preflight`` (always, for an honest client) the task's terms are checked against
        the package, and the signed submission is dry-run against the contract (eth_call): a
        submission the contract would reject, and so slash, is refused here with its reason
        and never leaves the client."""
        if bundle.task_id != self.task_id:
            raise ZkflError(f"bundle is for task {bundle.task_id}, this client is in task {self.task_id}")
        update_commitment = commit(np.array(bundle.update, dtype=np.int64))
        if preflight:
            self.check_task_terms()
        signature = self.federation.sign_submission(
            self.account, self.task_id, bundle.round, update_commitment, bundle.update, bundle.public_values,
            bundle.proof_bytes)
        if preflight:
            self._preflight(bundle, update_commitment, signature)
        update, update_cid = bundle.update, None
        if len(update) > self.inline_update_values:  # too big to inline: send it by CID
            artifact = ModelArtifact(self.spec.spec_hash(), bundle.update_scale, bundle.update)
            update, update_cid = [], artifact.put(self.store)
        return UpdateSubmission(
            task_id=self.task_id, round=bundle.round, wallet=self.address, chain_id=self.w3.eth.chain_id,
            federation=self.federation.address, backend=self.package.backend, num_samples=bundle.num_samples,
            update_scale=bundle.update_scale, update=update, update_cid=update_cid,
            update_commitment=commitment_hex(update_commitment),
            public_values=[commitment_hex(v) for v in bundle.public_values],
            proof="0x" + bundle.proof_bytes.hex(), signature="0x" + signature.hex(), metrics=bundle.metrics,
        )

    def _preflight(self, bundle: UpdateBundle, update_commitment: int, signature: bytes) -> None:
        accepted = self.federation.simulate_submit(
            self.task_id, bundle.round, self.address, update_commitment, bundle.update, bundle.proof_bytes,
            bundle.public_values, signature)
        if not accepted:
            from zkfl.verify import verify_bundle  # the same checks, named

            failed = [c.detail for c in verify_bundle(self.federation, self.task_id, self.address, bundle, self.store)
                      if not c.ok]
            raise ZkflError("the contract would reject this submission (and slash the stake), so it was not sent: "
                            + ("; ".join(failed) or "the task's verifier refuses the proof"))

    def submit(self, bundle: UpdateBundle, *, preflight: bool = True,
               fallback_after: float | None = None) -> UpdateSubmission:
        """Send the signed submission through the broker (returns once the broker confirmed it).

        With ``fallback_after``, wait that many seconds for the chain to decide it, and if it
        has not (an aggregator ignoring this wallet), send it on chain directly: nobody can
        keep an honest update out of its round by not relaying it."""
        submission = self.build_submission(bundle, preflight=preflight)
        self.transport.publish_submission(self.queue_key, submission.encode(self.max_message_bytes))
        if fallback_after is not None:
            deadline = time.monotonic() + fallback_after
            while time.monotonic() < deadline:
                if self.federation.submission_status(self.task_id, bundle.round, self.address)[0] != Status.NONE:
                    return submission
                time.sleep(0.5)
            self.submit_on_chain(bundle, submission)
        return submission

    def submit_on_chain(self, bundle: UpdateBundle, submission: UpdateSubmission | None = None) -> SubmitResult:
        """Relay the signed submission to the contract from this wallet (it pays the gas),
        with no aggregator in between. The dry run has already shown it would be accepted."""
        submission = submission or self.build_submission(bundle)
        if self.federation.submission_status(self.task_id, bundle.round, self.address)[0] != Status.NONE:
            raise ZkflError(f"round {bundle.round} already has a decided submission from {self.address}")
        return self.federation.submit_update(
            self.account, self.task_id, bundle.round, self.address, submission.update_commitment_int, bundle.update,
            bundle.proof_bytes, bundle.public_values, submission.signature_bytes)

    def close(self) -> None:
        if self._transport is not None and self._broker_url is not None:
            self._transport.close()
