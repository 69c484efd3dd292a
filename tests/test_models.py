"""Every model family's circuit computes its float step, and the proven federation
reaches the accuracy of float FedAvg."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from zkfl.aggregator.fedavg import fedavg
from zkfl.circuits.layers import input_check
from zkfl.circuits.registry import default_spec, family, initial_parameters
from zkfl.circuits.spec import ModelSpec
from zkfl.datasets import load
from zkfl.field.binding import binding_chunks
from zkfl.field.ezkl_api import ezkl
from zkfl.field.quantize import IntArray, Quantizer, felts_to_ints
from zkfl.paths import configure_ezkl_cache
from zkfl.prover.ezkl.circuit import CircuitArtifacts, build_circuit
from zkfl.prover.ezkl.prove import input_json, witness_step
from zkfl.simulation import compare

BINDING = binding_chunks(b"\x07" * 32)


def witness(artifacts: CircuitArtifacts, theta: IntArray, x: IntArray, labels: IntArray) -> tuple[np.ndarray, int]:
    """The step circuit's two outputs for these inputs, from ezkl's witness (no proof): the
    update, and the input check (0 iff the batch is within the spec's bounds)."""
    configure_ezkl_cache()
    with tempfile.TemporaryDirectory(prefix="zkfl-witness-") as tmp:
        data = Path(tmp) / "input.json"
        data.write_text(json.dumps(input_json((theta, x, labels, BINDING), artifacts.spec.scale)))
        outputs = ezkl.gen_witness(str(data), str(artifacts.compiled), str(Path(tmp) / "witness.json"))["outputs"]
    [check] = felts_to_ints(outputs[artifacts.spec.step_outputs.index("input_check")])
    return np.array(felts_to_ints(outputs[artifacts.spec.update_output]), dtype=np.int64), int(check)


@pytest.mark.parametrize(
    ("model", "dataset", "local_steps", "hidden"),
    [
        ("logreg", "breast_cancer", 2, None),
        ("softmax", "digits", 1, None),
        ("mlp", "digits", 1, (16,)),
        ("mlp", "digits", 1, (12, 8)),
    ],
)
def test_circuit_step_matches_float_step_on_random_inputs(model: str, dataset: str, local_steps: int,
                                                           hidden: tuple[int, ...] | None) -> None:
    data = load(dataset)
    spec = default_spec(model, data.features, data.classes, local_steps=local_steps, hidden=hidden)
    artifacts = build_circuit(spec)
    fam, q = family(model), Quantizer(spec.scale)
    rng = np.random.default_rng(3)
    for trial in range(2):
        theta = q.to_int(initial_parameters(spec, seed=trial) + rng.normal(0, 0.2, spec.param_count))
        x = q.to_int(rng.uniform(-3, 3, (spec.batch, spec.features)))
        classes = rng.integers(0, data.classes, spec.batch).astype(np.float64)
        labels = q.to_int(fam.encode_labels(spec, classes))
        update, check = witness(artifacts, theta, x, labels)
        assert check == 0  # features within +-3, labels one-hot: within the bounds
        assert list(update) == witness_step(artifacts, theta, x, labels, BINDING)
        proven = update / 2.0**artifacts.update_scale
        expected = fam.float_step(spec, q.to_float(theta), q.to_float(x), q.to_float(labels))
        moved = np.max(np.abs(expected - q.to_float(theta)))
        # Fixed point at 2**-12: a few quanta per weight and step, far below the update itself.
        assert np.max(np.abs(proven - expected)) <= 4 * local_steps * q.unit
        assert moved > 20 * q.unit


def test_proven_federation_matches_float_fedavg() -> None:
    result = compare("logreg", "breast_cancer", clients=4, rounds=4)
    assert abs(result.gap_points) <= 1.0
    assert result.proven_accuracy[-1] > 0.9


# ---------------------------------------------------------------- the input check, every family

# The smallest spec of each family the suite builds: the session's logreg step, and digits.
INPUT_CHECK_SPECS = {
    "logreg": lambda: default_spec("logreg", 30),
    "softmax": lambda: default_spec("softmax", 64, 10),
    "mlp": lambda: default_spec("mlp", 64, 10, hidden=(16,)),
}


def _valid_batch(spec: ModelSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Floats: features within +-3, labels 0/1 (one-hot rows for softmax and MLP)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (spec.batch, spec.features))
    classes = rng.integers(0, spec.classes, spec.batch).astype(np.float64)
    return x, family(spec.family).encode_labels(spec, classes).reshape(spec.batch, spec.label_width)


def _bad_batches(spec: ModelSpec, x: np.ndarray, y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    quantum, bound = 2.0**-spec.scale, spec.feature_bound
    cases: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def case(name: str, row: int, col: int, value: float, labels: bool) -> None:
        xs, ys = x.copy(), y.copy()
        (ys if labels else xs)[row, col] = value
        cases[name] = (xs, ys)

    case("a feature one quantum past the bound", 0, 0, bound + quantum, labels=False)
    case("a feature one quantum below -bound", 5, spec.features - 1, -bound - quantum, labels=False)
    case("a feature of 1000", 2, 3, 1000.0, labels=False)
    if spec.label_width == 1:
        case("label 2", 0, 0, 2.0, labels=True)
        case("label -1", 1, 0, -1.0, labels=True)
        case("label 0.5", 2, 0, 0.5, labels=True)
        case("label 1000.5", 3, 0, 1000.5, labels=True)
    else:
        for name, values in (("a row 2 / -1 (sums to 1)", (2.0, -1.0)), ("a row 0.5 / 0.5", (0.5, 0.5)),
                             ("a row with two ones", (1.0, 1.0)), ("a row with no one", (0.0, 0.0))):
            xs, ys = x.copy(), y.copy()
            ys[0] = 0.0
            ys[0, :2] = values
            cases[name] = (xs, ys)
    return cases


@pytest.mark.parametrize("model", list(INPUT_CHECK_SPECS))
def test_the_input_check_is_zero_exactly_for_batches_within_the_bounds(model: str) -> None:
    """At the witness level (no proof): the step's second output is exactly 0 for a valid
    batch, also with features at +-bound, and exactly the violation (at the circuit's scale)
    for each way out of the bounds; the contract accepts only H([0])."""
    spec = INPUT_CHECK_SPECS[model]()
    artifacts = build_circuit(spec)
    q = Quantizer(spec.scale)
    assert artifacts.settings_json()["model_output_scales"][1] == spec.scale
    theta = q.to_int(initial_parameters(spec, seed=0))
    x, y = _valid_batch(spec, 11)
    edge = x.copy()
    edge[0, 0], edge[1, 1] = spec.feature_bound, -spec.feature_bound
    for name, xs in (("valid", x), ("features at +-bound", edge)):
        assert witness(artifacts, theta, q.to_int(xs), q.to_int(y))[1] == 0, name
    for name, (xs, ys) in _bad_batches(spec, x, y).items():
        xi, yi = q.to_int(xs), q.to_int(ys)
        expected = input_check(spec, torch.tensor(q.to_float(xi)), torch.tensor(q.to_float(yi))).item()
        check = witness(artifacts, theta, xi, yi)[1]
        assert check != 0 and check == round(expected * 2**spec.scale), (name, check, expected)
    if model == "logreg":
        # The reported attack (it moved w0 by +2000 before the check), on the fixed-point grid
        # past what zkfl's Quantizer takes, as a forger would: now too large for the check's
        # range decomposition, so there is no witness, hence no proof, at all.
        xs, ys = x.copy(), y.copy()
        xs[:, 0], ys[0, 0], ys[1, 0] = 4.0, 16000.5, -15999.5
        with pytest.raises(RuntimeError, match="witness"):
            witness(artifacts, theta, q.to_int(xs), np.rint(ys * 2**spec.scale).astype(np.int64))


# ---------------------------------------------------------------- bounded influence

def test_one_malicious_client_within_the_bounds_moves_logreg_at_most_lr_times_the_bound() -> None:
    """Poisoning within the bounds (adversarial features at +-bound, flipped labels) is valid
    data: the input check passes. Its reach is bounded: one local step moves each weight by
    (lr/B)|sum_b x_bj (p_b - y_b)| <= lr * bound and the bias by <= lr, since |p - y| <= 1.
    From the zero model the link gives p = 1/2 exactly, so the worst case is half of that;
    from a model already confident the other way the attacker reaches the bound itself."""
    spec = default_spec("logreg", 30)
    artifacts = build_circuit(spec)
    q, features, lr, bound = Quantizer(spec.scale), spec.features, spec.learning_rate, spec.feature_bound
    unit, slack = 2.0**artifacts.update_scale, 4 * q.unit  # a few quanta of fixed-point rounding
    zero = np.zeros(spec.param_count, dtype=np.int64)

    def moved(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
        update, check = witness(artifacts, theta, q.to_int(x), q.to_int(y.reshape(-1, 1)))
        assert check == 0  # within the bounds: the contract would accept this proof
        delta = update / unit - q.to_float(theta)
        return update, float(np.abs(delta[:features]).max()), float(abs(delta[features]))

    rng = np.random.default_rng(5)
    signs = rng.choice([-1.0, 1.0], spec.batch)
    attacks = {
        "all features +bound, labels 0": (np.full((spec.batch, features), bound), np.zeros(spec.batch)),
        # Rows of either sign, each labelled against its sign: every row pushes every weight down.
        "rows +-bound, labels flipped": (signs[:, None] * np.full((spec.batch, features), bound),
                                         (signs < 0).astype(np.float64)),
        "random +-bound, random labels": (rng.choice([-bound, bound], (spec.batch, features)),
                                          rng.integers(0, 2, spec.batch).astype(np.float64)),
    }
    worst_weight, worst_bias = 0.0, 0.0
    for name, (x, y) in attacks.items():
        _, weight, bias = moved(zero, x, y)
        assert weight <= lr * bound + slack and bias <= lr + slack, name
        worst_weight, worst_bias = max(worst_weight, weight), max(worst_bias, bias)
    # From zero: exactly lr * bound / 2 per weight and lr / 2 on the bias (p = 1/2 for every row).
    assert abs(worst_weight - lr * bound / 2) <= slack and abs(worst_bias - lr / 2) <= slack

    # A model that predicts 1 with certainty on x = +bound (z = 30 * 4 * 0.1 = 12), fed label 0:
    # |p - y| = 1 on every row, and the step reaches the bound itself.
    confident = q.to_int(np.r_[np.full(features, 0.1), 0.0])
    attacker, weight, bias = moved(confident, *attacks["all features +bound, labels 0"])
    assert weight <= lr * bound + slack and bias <= lr + slack
    assert weight >= lr * bound - slack and bias >= lr - slack

    # One round: FedAvg of 4 equally weighted updates, one of them the attacker's, against 4
    # honest ones (real, standardized data), from either start.
    data = load("breast_cancer")
    samples = [spec.batch] * 4
    figures = {}
    for start, theta, attack in (("zero", zero, attacks["rows +-bound, labels flipped"]),
                                 ("confident", confident, attacks["all features +bound, labels 0"])):
        honest = [moved(theta, data.x_train[16 * k: 16 * (k + 1)], data.y_train[16 * k: 16 * (k + 1)])
                  for k in range(4)]
        attacker = moved(theta, *attack)[0]
        clean = fedavg([list(u) for u, _, _ in honest], samples, artifacts.update_scale, spec.scale)
        poisoned = fedavg([list(attacker), *[list(u) for u, _, _ in honest[1:]]], samples, artifacts.update_scale,
                          spec.scale)
        pull = np.abs(np.array(poisoned) - np.array(clean)) * q.unit
        honest_move = max(w for _, w, _ in honest)
        assert pull[:features].max() <= (lr * bound + honest_move) / 4 + slack
        figures[start] = (honest_move, float(pull[:features].max()), float(pull[features]))
    print(f"\nbounded influence (logreg, lr {lr}, bound {bound}, batch {spec.batch}, 1 local step): one attacker's "
          f"update moves a weight by at most {worst_weight:.4f} from the zero model (lr*bound/2 = {lr * bound / 2}; "
          f"bias {worst_bias:.4f}) and by {weight:.4f} from a confident model (lr*bound = {lr * bound}; bias "
          f"{bias:.4f}, lr = {lr})")
    for start, (honest_move, weights, bias_pull) in figures.items():
        print(f"  from the {start} model: honest updates (breast_cancer) move a weight by at most {honest_move:.4f}; "
              f"one attacker among 4 moves the global model by {weights:.4f} per weight, {bias_pull:.4f} on the bias,"
              f" against 4 honest clients")


def test_parties_that_build_no_circuit_never_import_torch() -> None:
    """torch (about 2 s of CPU to import) is loaded only where a circuit is exported to ONNX (building
    one, or loading a package, whose graph each party exports itself), never on importing a role."""
    import subprocess
    import sys

    roles = ["zkfl.cli", "zkfl.audit", "zkfl.organisation", "zkfl.aggregator.service", "zkfl.multiparty",
             "zkfl.flower.strategy", "zkfl.flower.client", "zkfl.prover.ezkl.prove",
             "zkfl.prover.ezkl.aggregation", "zkfl.demo"]
    code = f"import sys\nfor m in {roles!r}: __import__(m)\nprint('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "False", proc.stderr
    # ...and a circuit can still be built: the step module comes from the registry on demand.
    module = family("logreg").step_module(default_spec("logreg", 30))
    assert isinstance(module, torch.nn.Module)
