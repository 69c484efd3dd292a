"""What sets the rows of the MLP 64-32-4 step at batch 32 (issue 16's reference case), sized only.

zkfl's step circuit with `polycommit` inputs and outputs (the linked-commitment design, see
docs/performance.md), under ezkl layout settings and two changes to the step itself:

- settings: Freivalds off, 2 or 4 inner columns, no range check on inputs and outputs;
- ``fold``: lr/B (a power of two) multiplied into the residual before each gradient product,
  which ezkl turns into a free change of scale, so one rescale per parameter replaces two;
- ``margin 1``: calibration with lookup safety margin 1 instead of 2 (the logits are clamped, so
  the exp table needs no more than the clamp's range).

Rows and logrows only (no setup, no proof): each variant in its own process and ZKFL_HOME under
--work. A probe, not zkfl's circuit. Writes bench/results/mlp_layout_probe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "mlp_layout_probe.json"
# name: (step module, run_args overrides, lookup safety margin)
VARIANTS: dict[str, tuple[str, dict[str, Any], float]] = {
    "as built (1 inner column, Freivalds on)": ("step", {}, 2.0),
    "Freivalds off": ("step", {"disable_freivalds": True}, 2.0),
    "2 inner columns": ("step", {"num_inner_cols": 2}, 2.0),
    "4 inner columns": ("step", {"num_inner_cols": 4}, 2.0),
    "no range check on inputs/outputs": ("step", {"ignore_range_check_inputs_outputs": True}, 2.0),
    "fold": ("fold", {}, 2.0),
    "fold, margin 1, 2 inner columns": ("fold", {"num_inner_cols": 2}, 1.0),
    "fold, margin 1, 4 inner columns": ("fold", {"num_inner_cols": 4}, 1.0),
}


def _modules() -> dict[str, Any]:
    import torch

    from zkfl.circuits.layers import input_check, keep_binding, pack, softmax, unpack
    from zkfl.circuits.modules import MlpStep

    class FoldedStep(MlpStep):
        """One local step with lr/B applied to the residual before each gradient product."""

        def forward(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                    binding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            check = input_check(self.spec, x, y)
            layers = unpack(self.spec, theta)
            activations, pre = [x], []
            for weights, bias in layers[:-1]:
                pre.append(activations[-1] @ weights + bias)
                activations.append(torch.relu(pre[-1]))
            delta = softmax(activations[-1] @ layers[-1][0] + layers[-1][1]) - y
            grads = []
            for index in range(len(layers) - 1, -1, -1):
                scaled = delta * self.step_size
                grads.append((activations[index].t() @ scaled, scaled.sum(dim=0, keepdim=True)))
                if index > 0:
                    delta = (delta @ layers[index][0].t()) * (pre[index - 1] > 0).to(delta.dtype)
            return keep_binding(theta - pack(grads[::-1]), binding), check

    return {"step": MlpStep, "fold": FoldedStep}


def size_variant(name: str) -> dict[str, Any]:
    import torch

    import zkfl.prover.ezkl.circuit as circuit
    from zkfl.circuits.spec import ModelSpec
    from zkfl.field.ezkl_api import ezkl

    module_name, overrides, margin = VARIANTS[name]
    spec = ModelSpec("mlp", 64, 32, 12, 0.5, classes=4, hidden=(32,), commits_data=True)  # as probed: inputs hashed
    work = Path(tempfile.mkdtemp(prefix="mlp-layout-"))
    inputs = circuit.example_inputs(spec)
    torch.onnx.export(_modules()[module_name](spec), inputs, str(work / "network.onnx"),
                      input_names=["theta", "x", "y", "binding"], output_names=["theta_next", "input_check"],
                      dynamo=False, opset_version=17)
    (work / "input.json").write_text(json.dumps({"input_data": [t.flatten().tolist() for t in inputs]}))
    args = circuit.run_args(spec)
    args.input_visibility = args.output_visibility = "polycommit"
    for key, value in overrides.items():
        setattr(args, key, value)
    with circuit.quiet_stdout():
        ezkl.gen_settings(str(work / "network.onnx"), str(work / "settings.json"), py_run_args=args)
        ezkl.calibrate_settings(str(work / "input.json"), str(work / "network.onnx"), str(work / "settings.json"),
                                target="resources", scales=[spec.scale], lookup_safety_margin=margin)
    settings = json.loads((work / "settings.json").read_text())
    return {"variant": name, "rows": settings["num_rows"], "logrows": settings["run_args"]["logrows"],
            "lookup_range": settings["run_args"]["lookup_range"],
            "einsum_rows": settings["einsum_params"]["total_einsum_col_size"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/zkfl-mlp-layout-probe"))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: size one variant, print JSON
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(size_variant(args.variant)))
        return 0
    rows = []
    for index, name in enumerate(VARIANTS):
        env = {**os.environ, "ZKFL_HOME": str(args.work / f"home-{index}")}
        proc = subprocess.run([sys.executable, __file__, "--variant", name], capture_output=True, text=True,
                              env=env, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{name}: {proc.stderr[-2000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{name}: {rows[-1]['rows']:,} rows, logrows {rows[-1]['logrows']}", flush=True)
    RESULTS.write_text(json.dumps({"ezkl": "23.0.5", "case": "mlp-64-32-4-b32, polycommit", "results": rows},
                                  indent=2) + "\n")
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
