"""The example's nodes: each loads its partition of breast_cancer and signs with its own
wallet; the last one poisons its reply (a Flower mod)."""

from __future__ import annotations

from typing import Any

from flwr.app import Context, Message
from flwr.clientapp.typing import ClientAppCallable

from zkfl.contracts.chain import dev_keys
from zkfl.datasets import load, shard
from zkfl.flower.client import signed
from zkfl.flower.records import read_reply, reply_content

MODEL, DATASET = "logreg", "breast_cancer"
KEYS = dev_keys()[2:10]  # the nodes' wallets (anvil's well-known dev keys: an example only)


def partition(context: Context) -> int:
    return int(context.node_config["partition-id"])


def partitions(context: Context) -> int:
    return int(context.node_config["num-partitions"])


def load_partition(context: Context) -> Any:
    return shard(load(DATASET), partition(context) + 1, partitions(context))


def wallet_key(context: Context) -> str:
    return KEYS[partition(context)]


def poison(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """The last node's mod: scale the proven update by -10 and re-sign it (a model-poisoning
    client: in a plain average it outweighs the honest nodes and flips the model's decisions)."""
    reply = call_next(msg, context)
    if partition(context) != partitions(context) - 1 or reply.has_error() or msg.metadata.message_type != "train":
        return reply
    honest = read_reply(reply)
    forged = signed(honest, [-10 * v for v in honest.update], wallet_key(context))
    return Message(reply_content(forged), reply_to=msg)

