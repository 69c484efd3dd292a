"""The linear models' training step as a ZoKrates program, generated per model shape.

The program is the statement of a step proof for the ``zokrates`` backend: given the
public values ``[H(G), H(X), H(Y), H(b), H(W)]``, the prover knows G, X, Y, b and W with
those hashes such that W is one SGD step of the task's model from G on the batch
(X, Y), in the fixed-point arithmetic written out below. H is ezkl's Poseidon
(:mod:`zkfl.field.poseidon`), recomputed in the circuit, so H(G), H(Y), H(b) and H(W)
are the very commitments the ezkl backend, the FedAvg circuit and the contract use.
H(X) is over X packed 15 features to a field element (each feature is range-checked
to 16 bits anyway, which makes the packing one-to-one): 15 times fewer hash rounds.
H(X) and H(Y) are computed only where the task pins data (``spec.commits_data``);
otherwise both public values are the constant H([0]) and the data is never hashed.

Fixed point at the spec's scale s (S = 2^s), all values integers, rounding half up.
With O outputs (1 for logreg, C for softmax), ``theta = [W (F x O, row-major), b (O)]``:

    z_bo = sum_j X_bj W_jo + S b_o                                  (scale 2s)
    logreg:  p_b = clamp(round(z_b / 2^(s+2)) + S/2, 0, S)          hard sigmoid
    softmax: t = clamp(round(z / 2^s), -8S, 8S)                     the logit clamp
             e = exp(t), as (Taylor_5(t/16))^16 at scale 2^(s+12)  |t/16| <= 1/2
             p_bo = round(S e_bo / sum_o e_bo)
    grad W_jo = sum_b X_bj (p_bo - Y_bo),  grad b_o = S sum_b (p_bo - Y_bo)
    W' = theta - round(grad C / 2^(2s)),  C = round(lr / B * S)

exp's relative error is below 1e-3 over the clamp's range (fifth-order Taylor at
|u| <= 1/2, then four squarings; at scale 2^(s+12) even e^-8 is 5,600 quanta), so the
proven step stays within about 2e-3 of the float step. The host
(:mod:`zkfl.prover.zokrates.step`) computes the same integers and hands the circuit
each division's quotient and remainder and each clamp's branch as hints; the circuit
checks every hint (see lib.zok) and every input's range, so no field wrap-around can
stand in for integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial
from pathlib import Path

from zkfl.circuits.spec import ModelSpec
from zkfl.field.binding import BINDING_CHUNKS
from zkfl.field.poseidon import MDS, ROUND_CONSTANTS, poseidon_commit

LIBRARY = Path(__file__).resolve().parent / "zokrates" / "lib.zok"
#: Increment when the program's arithmetic changes: it is part of the circuit's cache key.
ZOKRATES_STEP_VERSION = 5  # 2: softmax, outputs generalised; 3: exp at scale 2^(s+12); 4: declared bound, 6 outputs;
# 5: X and Y hashed only where the task pins data
FAMILIES = ("logreg", "softmax")
TAYLOR_ORDER = 5
SQUARINGS = 4  # exp(t) = exp(t / 16)^16
LOGIT_CLAMP = 8


@dataclass(frozen=True)
class FixedPoint:
    """The bounds the circuit asserts, derived from the spec's scale."""

    scale: int
    quotient_bits: int = 48  # every rounded quotient: |q| < 2^47
    relu_bits: int = 50  # clamp inputs: |v| < 2^49
    division_bits: int = 48  # softmax's normaliser: 2 sum e < 2^48

    @property
    def feature_bits(self) -> int:  # |x| < 2^(s+3): standardized features clipped to +-8
        return self.scale + 3

    @property
    def weight_bits(self) -> int:  # |G_j| < 2^(s+18)
        return self.scale + 18

    @property
    def exp_scale(self) -> int:  # exp is computed at scale 2^(s+12): h*h < 2^72, 2 sum e < 2^48 for C < 2^10
        return self.scale + 12

    @property
    def exp_shift(self) -> int:  # t/16 at the exp scale is t (at scale s) times 2^8
        return self.exp_scale - self.scale - 4

    @property
    def packed_per_word(self) -> int:  # features (feature_bits + 1 bits each) per field element
        return 253 // (self.feature_bits + 1)

    def step_constant(self, spec: ModelSpec) -> int:
        return round(spec.learning_rate / spec.batch * 2**self.scale)

    def taylor(self) -> list[int]:
        """1/k! at the exp scale, k = 0..TAYLOR_ORDER."""
        return [round(2**self.exp_scale / factorial(k)) for k in range(TAYLOR_ORDER + 1)]


#: zokrates-js runs in 32-bit WebAssembly (4 GB at most): programs past this many
#: constraints run out of memory there (a 89k-constraint step peaks near 1 GB to compile).
MAX_CONSTRAINTS = 250_000


def estimated_constraints(spec: ModelSpec) -> int:
    """About 240 per hashed element (one Poseidon permutation), 950 per softmax exp and
    division, 200 per hard sigmoid, 17 per range-checked feature (measured: logreg 30
    features batch 16, 43k; softmax 13 x 3, 89k)."""
    pairs = spec.batch * outputs(spec)
    hashed = 2 * spec.param_count + BINDING_CHUNKS + (packed_words(spec) + pairs if spec.commits_data else 0)
    return 240 * hashed + pairs * (950 if spec.family == "softmax" else 200) + 17 * spec.batch * spec.features


def check_supported(spec: ModelSpec) -> None:
    if spec.family not in FAMILIES:
        raise ValueError(f"the zokrates backend proves {' and '.join(FAMILIES)} steps; "
                         f"{spec.family} needs the ezkl backend")
    spec.check_bounds()
    if spec.local_steps != 1:
        raise ValueError("the zokrates backend proves one local step per proof (local_steps = 1)")
    exact = spec.learning_rate / spec.batch * 2**spec.scale
    if abs(FixedPoint(spec.scale).step_constant(spec) - exact) > 1e-3 * exact:
        raise ValueError(f"lr / batch = {spec.learning_rate / spec.batch:g} is not representable at scale "
                         f"2^{spec.scale} to 0.1%: choose a learning rate that is")
    if estimated_constraints(spec) > MAX_CONSTRAINTS:
        raise ValueError(f"a {spec.family} step with {spec.param_count} parameters needs about "
                         f"{estimated_constraints(spec):,} constraints, past what zokrates-js (32-bit WebAssembly) "
                         f"can hold ({MAX_CONSTRAINTS:,}): use the ezkl backend, or a smaller model (e.g. wine)")


def outputs(spec: ModelSpec) -> int:
    return 1 if spec.family == "logreg" else spec.classes


def packed_words(spec: ModelSpec) -> int:
    per_word = FixedPoint(spec.scale).packed_per_word
    return -(-spec.batch * spec.features // per_word)


def _constants() -> str:
    rows = ",\n    ".join(f"[{c0}, {c1}]" for c0, c1 in ROUND_CONSTANTS)
    mds = ", ".join(f"[{a}, {b}]" for a, b in MDS)
    return f"const field[64][2] ROUND_CONSTANTS = [\n    {rows}\n];\nconst field[2][2] MDS = [{mds}];\n"


def _packing(spec: ModelSpec, fp: FixedPoint) -> str:
    """words[k] = sum_i u_(15k+i) 2^(16 i) over the offset features u = x + 2^(s+3)."""
    per_word, bits = fp.packed_per_word, fp.feature_bits + 1
    total = spec.batch * spec.features
    lines = []
    for k in range(packed_words(spec)):
        indices = range(k * per_word, min(total, (k + 1) * per_word))
        lines.append(" + ".join(f"u[{i}] * {2 ** (bits * (i - k * per_word))}" for i in indices))
    return "[\n        " + ",\n        ".join(lines) + "\n    ]"


def _logreg_link(spec: ModelSpec, fp: FixedPoint) -> str:
    s, unit = spec.scale, 2**spec.scale
    return f"""        // p = clamp(z / 4 + 1/2, 0, 1)
        field a = rescale::<{s + 2}, {fp.quotient_bits}>(z, zq[i], zr[i]) + {unit // 2};
        field m = relu::<{fp.relu_bits}>(a, lo[i]);
        p[i] = {unit} - relu::<{fp.relu_bits}>({unit} - m, hi[i]);"""


def _softmax_link(spec: ModelSpec, fp: FixedPoint) -> str:
    s, unit, q, xs = spec.scale, 2**spec.scale, fp.quotient_bits, fp.exp_scale
    clamp = LOGIT_CLAMP * unit
    taylor = fp.taylor()
    horner = "\n".join(
        f"        h = {taylor[k]} + rescale::<{xs}, {q}>(h * t * {2**fp.exp_shift}, "
        f"hq[i * {TAYLOR_ORDER} + {TAYLOR_ORDER - 1 - k}], hr[i * {TAYLOR_ORDER} + {TAYLOR_ORDER - 1 - k}]);"
        for k in range(TAYLOR_ORDER - 1, -1, -1))
    squares = "\n".join(
        f"        h = rescale::<{xs}, {q}>(h * h, sq[i * {SQUARINGS} + {k}], sr[i * {SQUARINGS} + {k}]);"
        for k in range(SQUARINGS))
    return f"""        // t = clamp(z, -8, 8) at scale {s}; exp(t) = (sum_k (t/16)^k / k!)^16 at scale {xs}
        field m = relu::<{fp.relu_bits}>(rescale::<{s}, {q}>(z, zq[i], zr[i]) + {clamp}, lo[i]);
        field t = {clamp} - relu::<{fp.relu_bits}>({2 * clamp} - m, hi[i]);
        field mut h = {taylor[TAYLOR_ORDER]};
{horner}
{squares}
        p[i] = h;"""


def _softmax_normalise(spec: ModelSpec, fp: FixedPoint) -> str:
    batch, classes, unit = spec.batch, spec.classes, 2**spec.scale
    return f"""    // p = round(S e / sum e), row by row
    for u32 b in 0..{batch} {{
        field mut total = 0;
        for u32 o in 0..{classes} {{
            total = total + p[b * {classes} + o];
        }}
        for u32 o in 0..{classes} {{
            p[b * {classes} + o] = divide::<{fp.division_bits}, {spec.scale + 1}>(p[b * {classes} + o] * {unit}, total,
                pq[b * {classes} + o], pr[b * {classes} + o]);
        }}
    }}
"""


def _label_check(spec: ModelSpec) -> str:
    unit = 2**spec.scale
    if spec.family == "logreg":
        return f"""    for u32 b in 0..{spec.batch} {{
        assert(y[b] * (y[b] - {unit}) == 0);
    }}"""
    classes = spec.classes
    return f"""    for u32 b in 0..{spec.batch} {{
        field mut ones = 0;
        for u32 o in 0..{classes} {{
            assert(y[b * {classes} + o] * (y[b * {classes} + o] - {unit}) == 0);
            ones = ones + y[b * {classes} + o];
        }}
        assert(ones == {unit});
    }}"""


def _hints(spec: ModelSpec) -> list[tuple[str, int]]:
    """The program's hint arguments after (g, x, y, bind), in order, with their lengths."""
    n = spec.batch * outputs(spec)
    hints = [("zq", n), ("zr", n), ("lo", n), ("hi", n)]
    if spec.family == "softmax":
        hints += [("hq", n * TAYLOR_ORDER), ("hr", n * TAYLOR_ORDER), ("sq", n * SQUARINGS), ("sr", n * SQUARINGS),
                  ("pq", n), ("pr", n)]
    return [*hints, ("uq", spec.param_count), ("ur", spec.param_count)]


def hint_names(spec: ModelSpec) -> list[str]:
    return [name for name, _ in _hints(spec)]


def _main_inputs(spec: ModelSpec, fp: FixedPoint) -> str:
    """main's signature and the range checks of its inputs."""
    features, batch, params, out = spec.features, spec.batch, spec.param_count, outputs(spec)
    hints = ", ".join(f"private field[{length}] {name}" for name, length in _hints(spec))
    bound = round(spec.feature_bound * 2**spec.scale)  # the task's declared |x| bound, at scale s
    return f"""
// One SGD step of {spec.family}, {features} features, {out} output(s), batch {batch}, scale {spec.scale}.
// Public values (outputs): H(G), H(X packed), H(Y), H(b), H(W), H([0]) (the inputs are within bounds).
def main(private field[{params}] g, private field[{batch * features}] x, private field[{batch * out}] y,
         private field[{BINDING_CHUNKS}] bind, {hints}) -> field[6] {{
    // Inputs in range: features |x| <= {spec.feature_bound} (the task's bound), labels 0 or 1.0,
    // weights |G| < 2^{fp.weight_bits}.
    field[{batch * features}] mut u = [0; {batch * features}];
    for u32 i in 0..{batch * features} {{
        u[i] = x[i] + {2**fp.feature_bits};
        assert(in_range::<{fp.feature_bits + 1}>(u[i]));
        assert(in_range::<{fp.feature_bits + 1}>(x[i] + {bound}));
        assert(in_range::<{fp.feature_bits + 1}>({bound} - x[i]));
    }}
{_label_check(spec)}
    for u32 j in 0..{params} {{
        assert(in_range::<{fp.weight_bits + 1}>(g[j] + {2**fp.weight_bits}));
    }}
"""


def _main_forward(spec: ModelSpec, fp: FixedPoint) -> str:
    """The forward pass: p, the model's outputs on the batch."""
    features, batch, out = spec.features, spec.batch, outputs(spec)
    n = batch * out
    link = _logreg_link(spec, fp) if spec.family == "logreg" else _softmax_link(spec, fp)
    normalise = _softmax_normalise(spec, fp) if spec.family == "softmax" else ""
    return f"""    // Forward, one (sample, output) pair at a time: i = b * {out} + o.
    field[{n}] mut p = [0; {n}];
    for u32 b in 0..{batch} {{
    for u32 o in 0..{out} {{
        u32 i = b * {out} + o;
        field mut z = g[{features * out} + o] * {2**spec.scale};
        for u32 j in 0..{features} {{
            z = z + x[b * {features} + j] * g[j * {out} + o];
        }}
{link}
    }}
    }}
{normalise}"""


def _main_update(spec: ModelSpec, fp: FixedPoint) -> str:
    """The backward pass, the updated weights W, and the public values."""
    features, batch, params, out = spec.features, spec.batch, spec.param_count, outputs(spec)
    s, unit, q = spec.scale, 2**spec.scale, fp.quotient_bits
    step = fp.step_constant(spec)
    return f"""    // Backward and update: W = G - round(grad * C / 2^{2 * s}), C = lr / B at scale {s}.
    field[{params}] mut w = [0; {params}];
    for u32 o in 0..{out} {{
        for u32 j in 0..{features} {{
            field mut grad = 0;
            for u32 b in 0..{batch} {{
                grad = grad + x[b * {features} + j] * (p[b * {out} + o] - y[b * {out} + o]);
            }}
            w[j * {out} + o] = g[j * {out} + o]
                - rescale::<{2 * s}, {q}>(grad * {step}, uq[j * {out} + o], ur[j * {out} + o]);
        }}
        field mut bias_grad = 0;
        for u32 b in 0..{batch} {{
            bias_grad = bias_grad + (p[b * {out} + o] - y[b * {out} + o]) * {unit};
        }}
        w[{features * out} + o] = g[{features * out} + o]
            - rescale::<{2 * s}, {q}>(bias_grad * {step}, uq[{features * out} + o], ur[{features * out} + o]);
    }}
{_data_commitments(spec, fp)}
    return [commit::<{params}>(g), data_commitment, labels_commitment,
            commit::<{BINDING_CHUNKS}>(bind), commit::<{params}>(w), {poseidon_commit([0])}];
}}
"""


def _data_commitments(spec: ModelSpec, fp: FixedPoint) -> str:
    """H(X) over the packed features and H(Y) where the task pins data; else H([0]) for both, the
    constant the ezkl backend's data-private step outputs there too, and X and Y stay unhashed."""
    if not spec.commits_data:
        nothing = poseidon_commit([0])
        return f"    field data_commitment = {nothing};\n    field labels_commitment = {nothing};"
    return f"""    field[{packed_words(spec)}] words = {_packing(spec, fp)};
    field data_commitment = commit::<{packed_words(spec)}>(words);
    field labels_commitment = commit::<{spec.batch * outputs(spec)}>(y);"""


def step_source(spec: ModelSpec) -> str:
    check_supported(spec)
    fp = FixedPoint(spec.scale)
    main = _main_inputs(spec, fp) + _main_forward(spec, fp) + _main_update(spec, fp)
    header = f"// Generated by zkfl (zokrates step v{ZOKRATES_STEP_VERSION}) for spec {spec.spec_hash()}.\n"
    return header + _constants() + LIBRARY.read_text() + main
