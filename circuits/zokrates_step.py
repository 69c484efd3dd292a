"""The logistic-regression training step as a ZoKrates program, generated per model shape.

The program is the statement of a step proof for the ``zokrates`` backend: given the
public values ``[H(G), H(X), H(y), H(b), H(W)]``, the prover knows G, X, y, b and W with
those hashes such that W is one SGD step of the hard-sigmoid logistic regression from
G on the batch (X, y), in the fixed-point arithmetic written out below. H is ezkl's
Poseidon (:mod:`zkfl.prover.poseidon`), recomputed in the circuit, so H(G), H(b) and
H(W) are the very commitments the ezkl backend, the FedAvg circuit and the contract use.
H(X) is over X packed 15 features to a field element (each feature is range-checked
to 16 bits anyway, which makes the packing one-to-one): 15 times fewer hash rounds.

Fixed point at the spec's scale s (S = 2^s), all values integers, rounding half up:

    a_b = round((sum_j X_bj G_j + S G_F) / 2^(s+2)) + S/2          z/4 + 1/2
    p_b = clamp(a_b, 0, S)                                         hard sigmoid
    g_j = sum_b X_bj (p_b - y_b)   (j < F),   g_F = S sum_b (p_b - y_b)
    W_j = G_j - round(g_j C / 2^(2s)),   C = round(lr / B * S)

The host (:mod:`zkfl.prover.zokrates.step`) computes the same integers and hands the
circuit each division's quotient and remainder and each clamp's branch as hints; the
circuit checks every hint (see lib.zok) and every input's range, so no field wrap-around
can stand in for integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zkfl.circuits.spec import ModelSpec
from zkfl.prover.binding import BINDING_CHUNKS
from zkfl.prover.poseidon import MDS, ROUND_CONSTANTS

LIBRARY = Path(__file__).resolve().parent / "zokrates" / "lib.zok"
#: Increment when the program's arithmetic changes: it is part of the circuit's cache key.
ZOKRATES_STEP_VERSION = 1


@dataclass(frozen=True)
class FixedPoint:
    """The bounds the circuit asserts, derived from the spec's scale."""

    scale: int

    @property
    def feature_bits(self) -> int:  # |x| < 2^(s+3): standardized features clipped to +-8
        return self.scale + 3

    @property
    def weight_bits(self) -> int:  # |G_j| < 2^(s+18)
        return self.scale + 18

    quotient_bits: int = 48  # every rounded quotient: |q| < 2^47
    relu_bits: int = 50  # clamp inputs: |v| < 2^49

    @property
    def packed_per_word(self) -> int:  # features (feature_bits + 1 bits each) per field element
        return 253 // (self.feature_bits + 1)

    def step_constant(self, spec: ModelSpec) -> int:
        return round(spec.learning_rate / spec.batch * 2**self.scale)


def check_supported(spec: ModelSpec) -> None:
    if spec.family != "logreg":
        raise ValueError(f"the zokrates backend proves logreg steps; {spec.family} needs the ezkl backend")
    if spec.local_steps != 1:
        raise ValueError("the zokrates backend proves one local step per proof (local_steps = 1)")


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
        terms = [f"u[{i}] * {2 ** (bits * (i - k * per_word))}" for i in indices]
        lines.append(" + ".join(terms))
    return "[\n        " + ",\n        ".join(lines) + "\n    ]"


def step_source(spec: ModelSpec) -> str:
    check_supported(spec)
    fp = FixedPoint(spec.scale)
    features, batch, params = spec.features, spec.batch, spec.param_count
    s, unit = spec.scale, 2**spec.scale
    q, relu = fp.quotient_bits, fp.relu_bits
    main = f"""
// One SGD step of hard-sigmoid logistic regression, {features} features, batch {batch}, scale {s}.
// Public values (outputs): H(G), H(X packed), H(y), H(b), H(W).
def main(private field[{params}] g, private field[{batch * features}] x, private field[{batch}] y,
         private field[{BINDING_CHUNKS}] bind, private field[{batch}] zq, private field[{batch}] zr,
         private field[{batch}] lo, private field[{batch}] hi, private field[{params}] uq,
         private field[{params}] ur) -> field[5] {{
    // Inputs in range: features |x| < 2^{fp.feature_bits}, labels 0 or 1.0, weights |G| < 2^{fp.weight_bits}.
    field[{batch * features}] mut u = [0; {batch * features}];
    for u32 i in 0..{batch * features} {{
        u[i] = x[i] + {2**fp.feature_bits};
        assert(in_range::<{fp.feature_bits + 1}>(u[i]));
    }}
    for u32 b in 0..{batch} {{
        assert(y[b] * (y[b] - {unit}) == 0);
    }}
    for u32 j in 0..{params} {{
        assert(in_range::<{fp.weight_bits + 1}>(g[j] + {2**fp.weight_bits}));
    }}
    // Forward: p = clamp(z / 4 + 1/2, 0, 1); residual e = p - y.
    field[{batch}] mut e = [0; {batch}];
    for u32 b in 0..{batch} {{
        field mut z = g[{features}] * {unit};
        for u32 j in 0..{features} {{
            z = z + x[b * {features} + j] * g[j];
        }}
        field a = rescale::<{s + 2}, {q}>(z, zq[b], zr[b]) + {unit // 2};
        field m = relu::<{relu}>(a, lo[b]);
        e[b] = {unit} - relu::<{relu}>({unit} - m, hi[b]) - y[b];
    }}
    // Backward and update: W = G - round(grad * C / 2^{2 * s}), C = lr / B at scale {s}.
    field[{params}] mut w = [0; {params}];
    for u32 j in 0..{features} {{
        field mut grad = 0;
        for u32 b in 0..{batch} {{
            grad = grad + x[b * {features} + j] * e[b];
        }}
        w[j] = g[j] - rescale::<{2 * s}, {q}>(grad * {fp.step_constant(spec)}, uq[j], ur[j]);
    }}
    field mut bias_grad = 0;
    for u32 b in 0..{batch} {{
        bias_grad = bias_grad + e[b] * {unit};
    }}
    w[{features}] = g[{features}]
        - rescale::<{2 * s}, {q}>(bias_grad * {fp.step_constant(spec)}, uq[{features}], ur[{features}]);
    field[{packed_words(spec)}] words = {_packing(spec, fp)};
    return [commit::<{params}>(g), commit::<{packed_words(spec)}>(words), commit::<{batch}>(y),
            commit::<{BINDING_CHUNKS}>(bind), commit::<{params}>(w)];
}}
"""
    header = f"// Generated by zkfl (zokrates step v{ZOKRATES_STEP_VERSION}) for spec {spec.spec_hash()}.\n"
    return header + _constants() + LIBRARY.read_text() + main
