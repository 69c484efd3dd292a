"""What sets the rows of the ezkl step circuit: a breakdown of the logreg step.

ezkl lays a circuit out in two places: the computation (``num_rows``) and the Poseidon
module that hashes ``hashed`` inputs and outputs (its own columns, ``module_sizes``). The
circuit needs 2^logrows above the larger of the two, so both must shrink before logrows
(and with it proving time) can drop. This benchmark builds the step, and parts of it,
under two visibilities and reports both sizes:

- ``step-commits-data``: the step of a task that pins data (inputs hashed: H(G), H(X), H(y),
  H(b) public);
- ``step-data-private``: zkfl's default step, with private inputs, the model and the binding
  hashed as outputs instead (no commitment to X or y: every task that does not pin data);
- ``inputs-only``, ``training-only``, ``input-check-only``: parts of it, inputs private.

- ``step-data-private-base1024x3``, ``-base128x4``, ``-2cols-base1024x3``: the data-private
  step with a smaller decomposition base (its range check is a lookup table of ``base`` rows,
  a floor under logrows) or two inner columns, at batch 16 only.

`--prove` also proves the whole steps (median of `--repeats`). `--only NAME...` reruns some
variants and keeps the other rows. Writes bench/results/step_rows.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from zkfl.circuits.layers import hard_sigmoid, input_check, keep_binding, pack, unpack
from zkfl.circuits.registry import family
from zkfl.circuits.spec import CIRCUIT_VERSION, ModelSpec
from zkfl.field.ezkl_api import ezkl
from zkfl.prover.ezkl.circuit import example_inputs, quiet_stdout, run_args
from zkfl.prover.ezkl.srs import srs_path

RESULTS = Path(__file__).resolve().parent / "results" / "step_rows.json"
Step = Callable[..., tuple[torch.Tensor, ...]]
# name: (run-args overrides) of the data-private step, measured at batch 16 only
LAYOUTS: dict[str, dict[str, int]] = {
    "step-data-private-base1024x3": {"decomp_base": 1024, "decomp_legs": 3},
    "step-data-private-base128x4": {"decomp_base": 128, "decomp_legs": 4},
    "step-data-private-2cols-base1024x3": {"decomp_base": 1024, "decomp_legs": 3, "num_inner_cols": 2},
}


def variants(spec: ModelSpec) -> dict[str, tuple[str, Step]]:
    """name: (input visibility, forward). Each keeps every input in the graph."""
    step = family(spec.family).step_module(replace(spec, commits_data=True))  # the step itself
    data_private = family(spec.family).step_module(replace(spec, commits_data=False))  # DataPrivateStep

    def training(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, b: torch.Tensor) -> Any:
        [(weights, bias)] = unpack(spec, theta)
        residual = hard_sigmoid(x @ weights + bias) - y
        return (keep_binding(theta - step.step_size * pack([(x.t() @ residual, residual.sum(0, keepdim=True))]),
                             b),)

    def check(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, b: torch.Tensor) -> Any:
        return keep_binding(theta, b), input_check(spec, x, y)

    def inputs(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, b: torch.Tensor) -> Any:
        return keep_binding(theta, b), (0.0 * x.sum() + 0.0 * y.sum()).reshape(1, 1)

    return {"step-commits-data": ("hashed/public", step), "step-data-private": ("private", data_private),
            "inputs-only": ("private", inputs), "training-only": ("private", training),
            "input-check-only": ("private", check)}


class _Forward(torch.nn.Module):
    def __init__(self, forward: Step) -> None:
        super().__init__()
        self.step = forward

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.step(*inputs))


def build(spec: ModelSpec, visibility: str, forward: Step, folder: Path,
          overrides: dict[str, int] | None = None) -> dict[str, Any]:
    module, inputs = _Forward(forward), example_inputs(spec)
    outputs = len(module(*inputs))
    torch.onnx.export(module, inputs, str(folder / "network.onnx"), input_names=["theta", "x", "y", "binding"],
                      output_names=[f"out{i}" for i in range(outputs)], dynamo=False, opset_version=17)
    (folder / "input.json").write_text(json.dumps({"input_data": [t.flatten().tolist() for t in inputs]}))
    args = run_args(spec)
    args.input_visibility = visibility
    for name, value in (overrides or {}).items():
        setattr(args, name, value)
    with quiet_stdout():
        ezkl.gen_settings(str(folder / "network.onnx"), str(folder / "settings.json"), py_run_args=args)
        ezkl.calibrate_settings(str(folder / "input.json"), str(folder / "network.onnx"),
                                str(folder / "settings.json"), target="resources", scales=[spec.scale])
        ezkl.compile_circuit(str(folder / "network.onnx"), str(folder / "network.ezkl"),
                             str(folder / "settings.json"))
    settings = json.loads((folder / "settings.json").read_text())
    run = settings["run_args"]
    return {"rows": settings["num_rows"], "poseidon_rows": settings["module_sizes"]["poseidon"][0],
            "logrows": run["logrows"], "decomp": [run["decomp_base"], run["decomp_legs"]],
            "num_inner_cols": run["num_inner_cols"]}


def prove(folder: Path, logrows: int, repeats: int) -> float:
    srs = str(srs_path(logrows))
    with quiet_stdout():
        ezkl.gen_witness(str(folder / "input.json"), str(folder / "network.ezkl"), str(folder / "witness.json"))
        ezkl.setup(str(folder / "network.ezkl"), str(folder / "vk.key"), str(folder / "pk.key"), srs_path=srs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ezkl.prove(str(folder / "witness.json"), str(folder / "network.ezkl"), str(folder / "pk.key"),
                   str(folder / "proof.json"), srs_path=srs)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 2)


def measure(batches: list[int], only: list[str] | None, prove_too: bool, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for batch in batches:
        spec = ModelSpec("logreg", 30, batch, 12, 0.5)
        named = variants(spec)
        cases = [(name, *named[name], None) for name in named]
        if batch == 16:
            cases += [(name, *named["step-data-private"], overrides) for name, overrides in LAYOUTS.items()]
        for name, visibility, forward, overrides in cases:
            if only and name not in only:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                row: dict[str, Any] = {"case": f"logreg-30-b{batch}", "variant": name, "inputs": visibility,
                                       **build(spec, visibility, forward, Path(tmp), overrides)}
                if prove_too and name.startswith("step"):
                    row["prove_s"] = prove(Path(tmp), int(row["logrows"]), repeats)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, nargs="*", default=[16, 32])
    parser.add_argument("--only", nargs="*", help="variants to rerun (default: all)")
    parser.add_argument("--prove", action="store_true", help="also prove the whole steps")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    fresh = measure(args.batches, args.only, args.prove, args.repeats)
    previous = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    done = {(row["case"], row["variant"]) for row in fresh}
    rows = [row for row in previous if (row["case"], row["variant"]) not in done] + fresh
    rows.sort(key=lambda row: int(row["case"].rsplit("b", 1)[1]))
    RESULTS.write_text(json.dumps({"machine": "2-core CPU, 24 GB", "ezkl": "23.0.5", "circuit_version": CIRCUIT_VERSION,
                                   "results": rows}, indent=2))
    print("case | variant | inputs | decomp | cols | rows | poseidon_rows | logrows | prove_s")
    for row in rows:
        print(" | ".join(str(row.get(k, "-")) for k in ("case", "variant", "inputs", "decomp", "num_inner_cols",
                                                         "rows", "poseidon_rows", "logrows", "prove_s")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
