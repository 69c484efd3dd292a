"""JSON from outside (a broker message, an artifact, a request body), parsed safely.

py_ecc (imported with web3) raises Python's recursion limit to 100,000, and Python
3.11's C JSON parser recurses once per nesting level under that limit alone: about
70,000 "[" (70 KB) overflow the C stack and kill the process with SIGSEGV, which no
except clause catches. So the nesting of outside JSON is measured before it is parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from zkfl.errors import ZkflError

MAX_JSON_DEPTH = 64  # zkfl's artifacts nest a handful of levels
_ESCAPES = re.compile(rb"\\.", re.DOTALL)
_STRINGS = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def loads_bounded(data: bytes, what: str) -> Any:
    """``json.loads`` for bytes from outside: UTF-8 JSON nested at most MAX_JSON_DEPTH deep, else a ZkflError."""
    try:
        text = data.decode("utf-8")  # UTF-8 only: in it a '"' or '[' byte is always that character
    except UnicodeDecodeError:
        raise ZkflError(f"{what} is not JSON (not UTF-8)") from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise ZkflError(f"{what} is not JSON as zkfl writes it (nested over {MAX_JSON_DEPTH} levels)")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ZkflError(f"{what} is not JSON ({exc})") from None


def json_depth(data: bytes) -> int:
    """How deep UTF-8 JSON nests: brackets outside strings, as a running count (never under
    the depth json.loads reaches, even for text it then refuses)."""
    brackets = _STRINGS.sub(b"", _ESCAPES.sub(b"", data)).translate(None, _NOT_BRACKETS)
    steps = np.frombuffer(brackets.translate(_STEPS), dtype=np.int8)
    depth = deepest = 0
    for start in range(0, len(steps), 1 << 20):  # in slices: an int64 per bracket of 2 GiB would not fit
        running = depth + np.cumsum(steps[start:start + (1 << 20)], dtype=np.int64)
        deepest, depth = max(deepest, int(running.max())), int(running[-1])
    return deepest
