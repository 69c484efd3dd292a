"""zkfl's payloads in Flower's typed records.

A train message carries the global model as integers at the model's scale (``ArrayRecord``,
key ``model``) and the task in the ``ConfigRecord`` (:mod:`zkfl.flower.task`). A reply carries
the update in its ``ArrayRecord`` (key ``update``), ``num-examples`` in its ``MetricRecord``
as Flower's FedAvg expects, and in a ``ConfigRecord`` named ``zkfl`` the signed submission:
the same typed message zkfl's clients send over RabbitMQ (:class:`UpdateSubmission`), with
the proof, its public values and the wallet's EIP-712 signature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.app.typing import MetricRecordValues

from zkfl.errors import MessageError
from zkfl.field.quantize import IntArray
from zkfl.middleware.messages import UpdateSubmission, decode_submission

MODEL_KEY = "model"  # the global model in a train message's ArrayRecord
UPDATE_KEY = "update"  # the proven update in a reply's ArrayRecord
PROOF_RECORD = "zkfl"  # the reply's ConfigRecord
SUBMISSION_KEY = "submission"
NUM_EXAMPLES = "num-examples"


def int_arrays(key: str, values: Sequence[int] | IntArray) -> ArrayRecord:
    return ArrayRecord({key: Array(np.asarray(values, dtype=np.int64))})


def int_values(arrays: ArrayRecord, key: str, length: int | None = None) -> list[int]:
    """The integers under ``key`` (``length`` of them, where given); MessageError if they are
    missing or not a flat int64 numpy array. The Array's own fields are checked before its
    bytes are decoded, so a reply cannot make the server unpickle or allocate what it likes."""
    if key not in arrays:
        raise MessageError(f"the ArrayRecord has no {key!r} array (it has {sorted(arrays)[:8]})")
    array = arrays[key]
    shape = tuple(array.shape)
    if array.stype != "numpy.ndarray" or array.dtype != "int64" or len(shape) != 1:
        raise MessageError(f"{key!r} must be a flat int64 numpy array, got {array.stype} {array.dtype} {shape}")
    if length is not None and shape != (length,):
        raise MessageError(f"{key!r} holds {shape[0]} values, expected {length}")
    try:
        values = array.numpy()
    except Exception as exc:  # bytes that do not decode as declared: a bad reply, never a crash
        raise MessageError(f"{key!r} does not decode: {type(exc).__name__}") from None
    if values.dtype != np.int64 or values.shape != shape:
        raise MessageError(f"{key!r} decodes to {values.dtype} {values.shape}, not what it declares")
    return [int(v) for v in values]


def model_of(msg: Message) -> list[int]:
    """The global model a train or evaluate message carries."""
    arrays = list(msg.content.array_records.values())
    if len(arrays) != 1:
        raise MessageError(f"a zkfl train message carries one ArrayRecord, this one {len(arrays)}")
    return int_values(arrays[0], MODEL_KEY)


def submission_metrics(submission: UpdateSubmission) -> dict[str, MetricRecordValues]:
    """The MetricRecord entries of a reply: ``num-examples`` and the client's metrics that it reported."""
    reported = {"loss": submission.metrics.loss, "accuracy": submission.metrics.accuracy,
                "prove-seconds": submission.metrics.prove_seconds}
    return {NUM_EXAMPLES: submission.num_samples, **{k: float(v) for k, v in reported.items() if v is not None}}


def reply_content(submission: UpdateSubmission) -> RecordDict:
    return RecordDict({
        "arrays": int_arrays(UPDATE_KEY, submission.update),
        "metrics": MetricRecord(submission_metrics(submission)),
        PROOF_RECORD: ConfigRecord({SUBMISSION_KEY: submission.encode()}),
    })


def read_reply(reply: Message) -> UpdateSubmission:
    """The signed submission a reply carries, checked to be the same update and sample count
    as the reply's ArrayRecord and MetricRecord; MessageError naming what is wrong."""
    if reply.has_error():
        raise MessageError(f"the client failed: {_last_line(reply.error.reason)}")
    content = reply.content
    try:
        body = content[PROOF_RECORD][SUBMISSION_KEY]
    except (KeyError, TypeError):
        raise MessageError("the reply carries no zkfl submission (a ConfigRecord 'zkfl' with 'submission')") \
            from None
    if not isinstance(body, bytes):
        raise MessageError("the reply's zkfl submission is not bytes")
    submission = decode_submission(body)  # bounded in size before anything else is decoded
    if submission.update_cid is not None:
        raise MessageError("a Flower reply carries its update inline (in its ArrayRecord), not by CID")
    arrays, metrics = list(content.array_records.values()), list(content.metric_records.values())
    if len(arrays) != 1 or len(metrics) != 1:
        raise MessageError(f"a reply has one ArrayRecord and one MetricRecord, this one {len(arrays)} and "
                           f"{len(metrics)}")
    if int_values(arrays[0], UPDATE_KEY, len(submission.update)) != submission.update:
        raise MessageError("the ArrayRecord's update is not the one the wallet signed")
    count = metrics[0].get(NUM_EXAMPLES)
    if isinstance(count, bool) or not isinstance(count, int) or count != submission.num_samples:
        raise MessageError(f"num-examples {count!r} is not the signed submission's {submission.num_samples}")
    return submission


def _last_line(text: str | None) -> str:
    """A traceback's last line: the exception and its message."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no reason given"

