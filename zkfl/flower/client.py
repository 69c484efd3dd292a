"""The Flower client side: a ``ClientApp`` whose train step is zkfl's proven quantized step.

    app = zk_client_app(load_data=lambda context: my_partition(context), wallet_key=lambda context: my_key)

Off chain, the node proves the step from the model the server sent and signs it. On chain
(the train message names a chain), the node is a zkfl participant like any other: it reads
the round's global model from its own RPC endpoint (``rpc_url``), not from the server, trains
and proves with zkfl's SDK, and dry-runs the signed submission against the contract before
replying, so a server that sends a wrong model cannot get an honest node slashed.
This module never imports the server side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt
from eth_account import Account
from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from zkfl.artifacts import TaskPackage
from zkfl.circuits.registry import family
from zkfl.contracts.federation import sign_submission
from zkfl.errors import ConfigError, ProofError
from zkfl.field.commit import commit, commitment_hex
from zkfl.field.quantize import Quantizer
from zkfl.flower.records import NUM_EXAMPLES, model_of, reply_content
from zkfl.flower.task import PACKAGE, FlowerTask
from zkfl.middleware.client import Client
from zkfl.middleware.messages import ClientMetrics, UpdateSubmission
from zkfl.middleware.transport.inprocess import InProcessTransport
from zkfl.prover.local_step import prove_local_step
from zkfl.prover.records import StepCircuit, commits_to_data
from zkfl.prover.registry import backend_of, get_backend
from zkfl.store import open_store

FloatArray = npt.NDArray[np.float64]
DataLoader = Callable[[Context], tuple[FloatArray, FloatArray]]  # the node's (features, labels)
KeyLoader = Callable[[Context], str]  # the node's wallet key (hex)
RpcLoader = Callable[[Context], str]  # the node's own RPC endpoint, for tasks on chain

_CIRCUITS: dict[str, StepCircuit] = {}  # per process: a Flower engine reuses its worker processes


def zk_client_app(load_data: DataLoader, wallet_key: KeyLoader, rpc_url: RpcLoader | None = None,
                  mods: list[Mod] | None = None) -> ClientApp:
    """A ClientApp that answers train messages with proven, signed updates, and evaluate
    messages with the global model's loss and accuracy on the node's data. ``mods`` are
    Flower client mods, as for any ClientApp."""
    app = ClientApp(mods=mods)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return Message(proven_reply(msg, context, load_data, wallet_key, rpc_url), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        x, y = load_data(context)
        package = TaskPackage.get(open_store(), str(msg.content["config"][PACKAGE]))
        theta = Quantizer(package.spec.scale).to_float(np.array(model_of(msg), dtype=np.int64))
        loss, accuracy = family(package.spec.family).loss_and_accuracy(package.spec, theta, x, y)
        return Message(RecordDict({"metrics": MetricRecord({NUM_EXAMPLES: len(x), "loss": float(loss),
                                                            "accuracy": float(accuracy)})}), reply_to=msg)

    return app


def proven_reply(msg: Message, context: Context, load_data: DataLoader, wallet_key: KeyLoader,
                 rpc_url: RpcLoader | None = None) -> RecordDict:
    """The reply to one train message: the proven update, its metrics and the signed submission."""
    task, round_ = FlowerTask.from_config(msg.content["config"])
    model = model_of(msg)
    x, y = load_data(context)
    if task.on_chain:
        if rpc_url is None:
            raise ConfigError("this Flower task is on chain: give zk_client_app an rpc_url for the node's own "
                              "view of the chain")
        submission = submit_on_chain(task, round_, model, x, y, wallet_key(context), rpc_url(context))
    else:
        submission = prove_off_chain(task, round_, model, x, y, wallet_key(context))
    return reply_content(submission)


def step_circuit(package_cid: str) -> StepCircuit:
    """The task's circuit, its keys rebuilt from the package (checked against it), once a process."""
    if package_cid not in _CIRCUITS:
        store = open_store()
        package = TaskPackage.get(store, package_cid)
        _CIRCUITS[package_cid] = get_backend(package.backend).step_from_package(package, store)
    return _CIRCUITS[package_cid]


def prove_off_chain(task: FlowerTask, round_: int, model: list[int], x: FloatArray, y: FloatArray,
                    key: str) -> UpdateSubmission:
    circuit = step_circuit(task.package_cid)
    account = Account.from_key(key)
    step = prove_local_step(circuit, np.array(model, dtype=np.int64), x, y, round_, task.binding(account.address))
    proof = step.proof
    if commits_to_data(proof.instances):  # off chain there is no pin to keep: the data's hash stays here
        raise ProofError("the package's step commits to the batch (a hash of this node's data): it was not sent")
    # No contract dry-runs this proof (the on-chain path's simulate_submit does): a proof that does not
    # verify with the task's own keys (a malformed SRS could make one) stays on this node too.
    ok, reason = backend_of(circuit).verify_step(circuit, proof.proof_bytes, list(proof.instances))
    if not ok:
        raise ProofError(f"the step proof does not verify with the task's keys ({reason}): it was not sent")
    unsigned = UpdateSubmission(
        task_id=task.task_id, round=round_, wallet=account.address, chain_id=task.chain_id,
        federation=task.federation, backend=backend_of(circuit).name, num_samples=circuit.spec.batch,
        update_scale=proof.update_scale, update=[], update_commitment="", public_values=[
            commitment_hex(v) for v in proof.instances], proof="0x" + proof.proof_bytes.hex(), signature="",
        metrics=ClientMetrics(loss=step.loss, accuracy=step.accuracy, prove_seconds=proof.prove_seconds))
    return signed(unsigned, list(proof.update), key)


def signed(submission: UpdateSubmission, update: list[int], key: str) -> UpdateSubmission:
    """``submission`` carrying ``update``, its commitment, and the signature of ``key``'s wallet
    over them (the EIP-712 message the Federation checks)."""
    account = Account.from_key(key)
    update_commitment = commit(np.array(update, dtype=np.int64))
    signature = sign_submission(account, submission.chain_id, submission.federation, submission.task_id,
                                submission.round, update_commitment, update, submission.public_value_ints,
                                submission.proof_bytes)
    return replace(submission, wallet=account.address, update=update,
                   update_commitment=commitment_hex(update_commitment), signature="0x" + signature.hex())

def submit_on_chain(task: FlowerTask, round_: int, model: list[int], x: FloatArray, y: FloatArray, key: str,
                    rpc_url: str) -> UpdateSubmission:
    """zkfl's SDK end to end: the round's model from the chain, the step proven, the signed
    submission dry-run against the contract (refused here, with the reason, if it would fail)."""
    client = Client(rpc_url, task.task_id, key, federation=task.federation, transport=InProcessTransport(),
                    show_progress=False)
    if client.w3.eth.chain_id != task.chain_id:
        raise ConfigError(f"the server names chain {task.chain_id}, this node's RPC is chain {client.w3.eth.chain_id}")
    bundle = client.train(x, y, round_)
    if commit(np.array(model, dtype=np.int64)) != client.federation.round(task.task_id, round_).global_commitment:
        raise ProofError(f"the server sent a model that is not round {round_}'s global model on chain")
    return client.build_submission(bundle)

