"""Run zokrates-js from Python: one Node process per command (driver.mjs).

zokrates-js is ZoKrates compiled to WebAssembly, installed by ``make setup`` from npm,
so no native ZoKrates binary is needed. Binary artifacts (program, proving key) pass
through files; requests and answers are JSON.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from zkfl.errors import ProofError
from zkfl.paths import node_binary, zokrates_js_module

DRIVER = Path(__file__).resolve().parent / "driver.mjs"
TIMEOUT_SECONDS = 3600  # the largest program zokrates-js can hold compiles and sets up in minutes


class WitnessError(ProofError):
    """The program's asserts refused the arguments (for a step: a bad hint or input)."""


def run(command: str, **request: Any) -> dict[str, Any]:
    request = {k: str(v) if isinstance(v, Path) else v for k, v in request.items()}
    try:
        proc = subprocess.run([node_binary(), str(DRIVER), str(zokrates_js_module()), command],
                              input=json.dumps(request), capture_output=True, text=True, check=False,
                              timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise ProofError(f"zokrates {command} did not finish in {TIMEOUT_SECONDS} s") from None
    try:
        answer: dict[str, Any] = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        answer = {}
    if proc.returncode != 0 or "error" in answer:
        reason = answer.get("error") or proc.stderr.strip()[-500:] or f"exit status {proc.returncode}"
        if command in ("witness", "prove") and "Execution failed" in reason:
            raise WitnessError(f"zokrates {command}: the program refused its inputs: {reason.splitlines()[0]}")
        raise ProofError(f"zokrates {command} failed: {reason}")
    return answer
