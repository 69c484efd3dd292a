"""Compiled step circuits, built once per spec and cached by the spec's hash.

A circuit folder holds ezkl's artifacts under their role names::

    network.onnx  settings.json  network.ezkl  vk.key  pk.key  Verifier.sol

Building = export the step to ONNX, generate settings, calibrate on representative
data, compile. Keys and the verifier contract are made by :mod:`zkfl.prover`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from zkfl.circuits.linked import LINKED_STEP_OUTPUTS, LINKED_UPDATE_POINT
from zkfl.circuits.registry import family
from zkfl.circuits.spec import ModelSpec
from zkfl.field.binding import BINDING_CHUNKS, CHUNK_BITS
from zkfl.field.ezkl_api import ezkl
from zkfl.paths import build_lock, cache_dir, configure_ezkl_cache

if TYPE_CHECKING:
    import torch

# Calibration data spans what training reaches: standardized features clipped to
# [-4, 4], weights up to +-4. Calibration only sets sizes here (the step has no lookup
# tables), and the client still mocks every witness before proving.
_CALIBRATION_FEATURE_RANGE = 4.0
_CALIBRATION_WEIGHT_RANGE = 4.0
# One inner column costs the least verifier gas for about twice the rows of the matmuls. Past this
# logrows a proof takes minutes and gigabytes, and the rows matter more: the MLP 64-32-4 at batch 32
# needs 495k rows in one column (logrows 19: 313 s, 15 GB) and 248k in two (logrows 18).
STEP_SINGLE_COLUMN_MAX_LOGROWS = 17
#: The linked circuits' own version (zkfl.circuits.linked), beside the spec's CIRCUIT_VERSION.
LINKED_CIRCUIT_VERSION = 1


@dataclass(frozen=True)
class CircuitArtifacts:
    backend: ClassVar[str] = "ezkl"
    spec: ModelSpec  # the training step (for an aggregation circuit: the step whose updates it averages)
    root: Path
    srs_file: Path | None = None  # the published SRS; None: the locally generated one
    slots: int = 0  # 0: the step circuit; K > 0: the FedAvg circuit over K update slots
    linked: bool = False  # its tensors committed as KZG points (zkfl.circuits.linked); FedAvg: any K, slots 1

    @property
    def key(self) -> str:
        """Names the circuit among a chain's deployed verifiers."""
        name = self.spec.spec_hash() if self.slots == 0 else f"{self.spec.spec_hash()}-fedavg{self.slots}"
        return f"{name}-linked" if self.linked else name

    @property
    def srs(self) -> Path:
        from zkfl.prover.ezkl.srs import srs_path

        return self.srs_file if self.srs_file is not None else srs_path(self.logrows)

    @property
    def onnx(self) -> Path:
        return self.root / "network.onnx"

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"

    @property
    def compiled(self) -> Path:
        return self.root / "network.ezkl"

    @property
    def vk(self) -> Path:
        return self.root / "vk.key"

    @property
    def pk(self) -> Path:
        return self.root / "pk.key"

    @property
    def verifier_sol(self) -> Path:
        return self.root / "Verifier.sol"

    def settings_json(self) -> dict[str, Any]:
        return json.loads(self.settings.read_text())

    @property
    def logrows(self) -> int:
        return int(self.settings_json()["run_args"]["logrows"])

    @property
    def update_scale(self) -> int:
        """The fixed-point scale of the step's output (the update)."""
        if self.slots:
            return int(self.settings_json()["model_output_scales"][0])
        update_output = LINKED_UPDATE_POINT if self.linked else self.spec.update_output
        return int(self.settings_json()["model_output_scales"][update_output])


def example_inputs(spec: ModelSpec, seed: int = 0) -> tuple[torch.Tensor, ...]:
    import torch  # only to build or calibrate a circuit

    rng = np.random.default_rng(seed)
    unit = 2.0**-spec.scale
    theta = rng.uniform(-_CALIBRATION_WEIGHT_RANGE, _CALIBRATION_WEIGHT_RANGE, (1, spec.param_count))
    x = rng.uniform(-_CALIBRATION_FEATURE_RANGE, _CALIBRATION_FEATURE_RANGE, (spec.batch, spec.features))
    classes = rng.integers(0, 2 if spec.family == "logreg" else spec.classes, spec.batch)
    y = family(spec.family).encode_labels(spec, classes.astype(np.float64))
    binding = rng.integers(0, 2**CHUNK_BITS, (1, BINDING_CHUNKS)) * unit

    def on_grid(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.round(a / unit) * unit, dtype=torch.float32)

    return on_grid(theta), on_grid(x), on_grid(y), on_grid(binding)


def run_args(spec: ModelSpec, inner_cols: int = 1, outputs: str = "hashed/public") -> Any:
    args = ezkl.PyRunArgs()
    # The public values are Poseidon hashes, H(G), H(X), H(y), H(b), H(W), H(check), of the inputs
    # (global model, features, labels, binding) and the outputs (update, input check). Unless the
    # task pins data, the inputs are private and the step outputs G and b to be hashed, with
    # H(check) for H(X) and H(y) (zkfl.circuits.modules.DataPrivateStep).
    args.input_visibility = "hashed/public" if spec.commits_data else "private"
    # (A linked step's outputs are "polycommit": KZG points in the proof, zkfl.circuits.linked.)
    args.output_visibility = outputs
    args.param_visibility = "fixed"
    # One inner column, not ezkl's default two: every inner column repeats each range-check
    # lookup in the verifier, so one column saves 139k of the logreg verifier's 696k gas (and
    # proves faster, with a 27% smaller proof) for 13% more rows at the same logrows
    # (bench/verifier_gas.py, bench/results/verifier_gas.json). Larger steps take two where
    # that needs a smaller logrows (STEP_SINGLE_COLUMN_MAX_LOGROWS, fewest_logrows).
    args.num_inner_cols = inner_cols
    args.input_scale = spec.scale
    args.param_scale = spec.scale
    return args


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence ezkl's native prints (calibration tables) so command output stays readable."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def build_once(artifacts: CircuitArtifacts, fill: Callable[[CircuitArtifacts], None]) -> CircuitArtifacts:
    """Build a circuit folder once across processes: ``fill`` writes a staging copy, which
    then replaces the folder in one rename, so a reader never sees half a circuit."""
    configure_ezkl_cache()
    if artifacts.compiled.exists():
        return artifacts
    with build_lock(artifacts.root):
        if artifacts.compiled.exists():
            return artifacts
        staging = artifacts.root.with_name(artifacts.root.name + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        fill(replace(artifacts, root=staging))
        shutil.rmtree(artifacts.root, ignore_errors=True)
        os.replace(staging, artifacts.root)
    return artifacts


def build_circuit(spec: ModelSpec) -> CircuitArtifacts:
    spec.check_bounds()
    return build_once(CircuitArtifacts(spec, cache_dir("circuits") / f"{spec.family}-{spec.spec_hash()}"),
                      _fill_step)


def build_linked_step_circuit(spec: ModelSpec) -> CircuitArtifacts:
    """The step with its outputs G, b, W, check committed as KZG points (zkfl.circuits.linked)."""
    spec.check_bounds()
    if spec.commits_data:
        raise ValueError("a linked step keeps the data private; a task that pins its data commits it by hash")
    root = cache_dir("circuits") / f"linked-{spec.family}-{spec.spec_hash()}-{LINKED_CIRCUIT_VERSION}"
    return build_once(CircuitArtifacts(spec, root, linked=True), lambda stage: _fill_step(stage, linked=True))


def _fill_step(stage: CircuitArtifacts, linked: bool = False) -> None:
    import torch  # only the party that builds a circuit exports it

    spec = stage.spec
    if linked:
        from zkfl.circuits.modules import STEP_MODULES, LinkedStep

        module, outputs = LinkedStep(STEP_MODULES[spec.family](spec)), list(LINKED_STEP_OUTPUTS)
    else:
        module, outputs = family(spec.family).step_module(spec), list(spec.step_outputs)
    inputs = example_inputs(spec)
    torch.onnx.export(module, inputs, str(stage.onnx), input_names=["theta", "x", "y", "binding"],
                      output_names=outputs, dynamo=False, opset_version=17)
    data = stage.root / "calibration.json"
    data.write_text(json.dumps({"input_data": [t.flatten().tolist() for t in inputs]}))
    visibility = "polycommit" if linked else "hashed/public"
    with quiet_stdout():
        settings = fewest_logrows(lambda cols: _calibrate(stage, data, cols, visibility),
                                  STEP_SINGLE_COLUMN_MAX_LOGROWS)
        stage.settings.write_text(json.dumps(settings))
        ezkl.compile_circuit(str(stage.onnx), str(stage.compiled), str(stage.settings))


def fewest_logrows(settings_in: Callable[[int], dict[str, Any]], single_column_max: int) -> dict[str, Any]:
    """A circuit's settings in one inner column (the least verifier gas), or in two where one needs
    more than ``single_column_max`` logrows and two need fewer (the step's and FedAvg's rule)."""
    one = settings_in(1)
    if one["run_args"]["logrows"] <= single_column_max:
        return one
    two = settings_in(2)
    return two if two["run_args"]["logrows"] < one["run_args"]["logrows"] else one


def _calibrate(stage: CircuitArtifacts, data: Path, inner_cols: int, outputs: str) -> dict[str, Any]:
    args = run_args(stage.spec, inner_cols, outputs)
    ezkl.gen_settings(str(stage.onnx), str(stage.settings), py_run_args=args)
    ezkl.calibrate_settings(str(data), str(stage.onnx), str(stage.settings), target="resources",
                            scales=[stage.spec.scale])
    return stage.settings_json()
