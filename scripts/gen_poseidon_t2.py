"""Generate contracts/PoseidonT2.sol from zkfl.field.poseidon (constants and round structure).

usage: python gen_poseidon_t2.py OUT.sol

The permutation is re-expressed exactly over the field so that it needs fewer mulmods and
stack operations. Before round r the code's words are
    Y0 = t0 * (s0 + c0_r)        (word 0 already carries round r's word-0 constant)
    Y1 = t1 * s1 + o1            (word 1 scaled, with an offset)
where (s0, s1) is poseidon.permute's true state before round r, and the scales t0, t1 and
offset o1 are chosen round by round so that each linear layer but the last one is
    Y0' = X0 + A * X1 + C ;  Y1' = X1 + B * Y0'         (2 mulmods, 1 constant added)
with X0 = Y0^5 and X1 = (Y1 + C1)^5 (full round) or X1 = Y1 (partial round). This is
possible because the scaled layer can be normalised to determinant 1 with a unit top-left
entry. The last round is dense and returns the true state; the first round's input is the
true state plus c0_0. The program is built as a small expression tree that is both rendered
to Yul and evaluated here, with exact bounds: every plain `add` is proven below 2**256.
"""

from __future__ import annotations

import random
import sys

from zkfl.field import poseidon as pos

P = pos.P
(M00, M01), (M10, M11) = pos.MDS
DET = (M00 * M11 - M01 * M10) % P
HALF = pos.FULL_ROUNDS // 2
NR = pos.FULL_ROUNDS + pos.PARTIAL_ROUNDS
CAP = pos.INITIAL_CAPACITY
WORD = 2**256


def inv(x: int) -> int:
    assert x % P, "zero scale"
    return pow(x, -1, P)


def is_full(r: int) -> bool:
    return not (HALF <= r < HALF + pos.PARTIAL_ROUNDS)


def round_params() -> list[dict]:
    """Per round: kind and the constants the code uses (see module docstring)."""
    rc = pos.ROUND_CONSTANTS
    out = []
    t0, t1, o1 = 1, 1, 0  # round 0 input: Y0 = s0 + c0_0, Y1 = s1
    for r in range(NR):
        c0, c1 = rc[r]
        last = r == NR - 1
        c0n = 0 if last else rc[r + 1][0]
        full = is_full(r)
        d: dict = {"full": full, "last": last}
        if full:
            d["C1"] = (t1 * c1 - o1) % P  # u = Y1 + C1 = t1 * (s1 + c1)
            e0, e1 = pow(t0, 5, P), pow(t1, 5, P)  # X0 = e0 * x0, X1 = e1 * x1
            k1 = 0  # X1 = e1 * x1 + k1
        else:
            e0, e1 = pow(t0, 5, P), t1  # X1 = Y1 = t1 * s1 + o1 = t1 * (s1 + c1) + (o1 - t1 * c1)
            k1 = (o1 - t1 * c1) % P
        # true: s0' = M00 x0 + M01 x1, s1' = M10 x0 + M11 x1 (x1 = s1 + c1 in partial rounds)
        if last:
            d["L"] = (
                (M00 * inv(e0) % P, M01 * inv(e1) % P),
                (M10 * inv(e0) % P, M11 * inv(e1) % P),
            )
            d["K"] = ((-M01 * inv(e1) * k1) % P, (-M11 * inv(e1) * k1) % P)  # nonzero only if last were partial
            assert d["K"] == (0, 0)
            t0, t1, o1 = 1, 1, 0
        else:
            # Y0' = X0 + A X1 + C = t0' (s0' + c0n)
            n0 = e0 * inv(M00) % P
            A = n0 * M01 * inv(e1) % P
            C = (n0 * c0n - A * k1) % P
            # Y1' = X1 + B Y0' = t1' s1' + o1'
            n1 = e1 * M00 * inv(DET) % P
            B = n1 * M10 * inv(n0 * M00) % P
            assert (e1 + B * n0 * M01) % P == n1 * M11 % P
            o1 = (k1 + B * n0 * c0n) % P
            d.update(A=A, B=B, C=C)
            t0, t1 = n0, n1
        out.append(d)
    return out


# ----------------------------------------------------------------- a tiny expression language
# expr: ("v", name) | ("k", int) | (op, expr, expr) with op in add, mulmod, addmod (mod p implied)


def V(n):
    return ("v", n)


def K(x):
    return ("k", x)


def add(a, b):
    return ("add", a, b)


def mm(a, b):
    return ("mulmod", a, b)


def am(a, b):
    return ("addmod", a, b)


def hx(x: int) -> str:
    return f"0x{x:064x}"


def render(e) -> str:
    if e[0] == "v":
        return e[1]
    if e[0] == "k":
        return hx(e[1])
    tail = ", p)" if e[0] in ("mulmod", "addmod") else ")"
    return f"{e[0]}({render(e[1])}, {render(e[2])}{tail}"


def evaluate(e, env: dict, bounds: bool):
    """Value of e (bounds=False) or an upper bound on it (bounds=True: env holds bounds)."""
    if e[0] == "v":
        return env[e[1]]
    if e[0] == "k":
        return e[1]
    a, b = evaluate(e[1], env, bounds), evaluate(e[2], env, bounds)
    if e[0] == "add":
        assert a + b < WORD, "add may overflow"
        return a + b
    if bounds:
        return P - 1
    return (a * b) % P if e[0] == "mulmod" else (a + b) % P


# a statement: ("let", name, expr) | ("set", name, expr) | ("block", [stmts])


def run(stmts, env, bounds):
    scope = dict(env)
    for s in stmts:
        if s[0] == "block":
            inner = run(s[1], scope, bounds)
            for k in scope:
                scope[k] = inner[k]
        else:
            scope[s[1]] = evaluate(s[2], scope, bounds)
    return scope


def yul(stmts, indent: str) -> list[str]:
    lines = []
    for s in stmts:
        if s[0] == "block":
            inner = yul(s[1], indent + "    ")
            lines.append(indent + "{")
            lines += inner
            lines.append(indent + "}")
        elif s[0] == "let":
            lines.append(f"{indent}let {s[1]} := {render(s[2])}")
        else:
            lines.append(f"{indent}{s[1]} := {render(s[2])}")
    return lines


def pow5(x, q):
    """statements: q := x^2, and the expression x^5 using q."""
    return ("let", q, mm(V(x), V(x))), mm(mm(V(q), V(q)), V(x))


def round_stmts(d: dict, y1_bound_ok) -> list:
    """One round on (y0, y1). y1_bound_ok(bound) -> bool decides add vs addmod for y1."""
    body = []
    q_let, x0 = pow5("y0", "q")
    body.append(q_let)
    if d["full"]:
        body.append(("let", "u", add(V("y1"), K(d["C1"]))))
        body.append(("let", "v", mm(V("u"), V("u"))))
        body.append(("let", "z", mm(mm(V("v"), V("v")), V("u"))))
        x1 = V("z")
    else:
        x1 = V("y1")
    if d["last"]:
        (l00, l01), (l10, l11) = d["L"]
        if d["full"]:
            body.append(("let", "x", x0))
            body.append(("set", "y0", add(mm(V("x"), K(l00)), mm(x1, K(l01)))))
            body.append(("set", "y1", add(mm(V("x"), K(l10)), mm(x1, K(l11)))))
        return [("block", body)]
    body.append(("set", "y0", add(add(x0, K(d["C"])), mm(x1, K(d["A"])))))
    if d["full"]:
        body.append(("set", "y1", add(mm(V("y0"), K(d["B"])), x1)))
        return [("block", body)]
    new_y1 = add(mm(V("y0"), K(d["B"])), V("y1")) if y1_bound_ok else am(mm(V("y0"), K(d["B"])), V("y1"))
    return [("block", body), ("set", "y1", new_y1)]


def build(params, start: int):
    """Rounds start..NR-1. y1's update is a plain add where exact bounds prove it cannot wrap
    (including the next full round's y1 + C1), and an addmod otherwise."""
    stmts = []
    b0, b1 = 3 * P, 2 * P  # assumed bounds on entry to round `start` (checked by check())
    for r in range(start, NR):
        d = params[r]
        env = None
        try:
            trial = round_stmts(d, True)
            env = run(trial, {"y0": b0, "y1": b1, "p": P}, True)
            if r + 1 < NR and params[r + 1]["full"] and env["y1"] + params[r + 1]["C1"] >= WORD:
                env = None
        except AssertionError:
            env = None
        if env is None:
            trial = round_stmts(d, False)
            env = run(trial, {"y0": b0, "y1": b1, "p": P}, True)
        stmts += trial
        b0, b1 = env["y0"], env["y1"]
    return stmts


def entry_round0(params):
    """Round 0 of a general permutation: y0 = addmod(s0, m) + c0_0 is done by the caller."""
    return round_stmts(params[0], True)


def first_round0(params):
    """Round 0 when y1 = 2**64 (the hash's first permutation): x1 is a constant."""
    d = params[0]
    x1 = pow(CAP + d["C1"], 5, P)
    q_let, x0 = pow5("y0", "q")
    return [("block", [q_let, ("set", "y0", add(x0, K((d["C"] + d["A"] * x1) % P))),
                       ("set", "y1", add(mm(V("y0"), K(d["B"])), K(x1)))])]


def programs():
    params = round_params()
    rest = build(params, 1)
    return params, rest, entry_round0(params), first_round0(params)


def perm_py(params, rest, r0, s0, s1):
    """The generated code's permutation, evaluated (input: true state)."""
    y0 = (s0 % P + pos.ROUND_CONSTANTS[0][0])
    env = run(r0, {"y0": y0, "y1": s1, "p": P}, False)
    env = run(rest, env, False)
    return env["y0"], env["y1"]


def check(params, rest, r0, f0) -> None:
    rng = random.Random(7)
    for _ in range(20):
        s = [rng.randrange(P), rng.randrange(P)]
        y0, y1 = perm_py(params, rest, r0, *s)
        assert [y0 % P, y1 % P] == pos.permute(s), "generated permutation differs from poseidon.permute"
        m = rng.randrange(P)
        env = run(f0, {"y0": m + pos.ROUND_CONSTANTS[0][0], "y1": 0, "p": P}, False)
        env = run(rest, env, False)
        assert [env["y0"] % P, env["y1"] % P] == pos.permute([m, CAP])
    # bounds: entry y0 = addmod(..) + c0_0 < 2p; entry y1 < 2p (a previous output or reduced input).
    entry = {"y0": P - 1 + pos.ROUND_CONSTANTS[0][0], "y1": 2 * P - 1, "p": P}
    env = run(r0, entry, True)
    assert env["y0"] <= 3 * P and env["y1"] <= 2 * P, env  # what build() assumed at round 1
    env0 = run(f0, {"y0": P - 1 + pos.ROUND_CONSTANTS[0][0], "y1": 0, "p": P}, True)
    assert env0["y0"] <= 3 * P and env0["y1"] <= 2 * P
    out = run(rest, env, True)
    assert out["y0"] < 2 * P and out["y1"] < 2 * P, "output bound"


HEADER = """\
// SPDX-License-Identifier: Apache-2.0
// GENERATED from zkfl.field.poseidon (ROUND_CONSTANTS, MDS) by scripts/gen_poseidon_t2.py; do not edit by hand.
pragma solidity ^0.8.24;

/// @title PoseidonT2: zkfl.field.poseidon's Poseidon hash (ezkl's poseidon_hash) on chain.
/// @notice Width 2, rate 1, x^5, 8 full + 56 partial rounds over the BN254 scalar field
/// p = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001.
/// Sponge: the state [rate, capacity] starts at [0, 2**64]; each message element is added to the
/// rate word, then one permutation; the hash is the rate word. hash(m) == poseidon_commit(m).
/// Inputs >= p are reduced mod p, as poseidon_commit does ((s0 + v) % p): m[i] and m[i] + p hash
/// alike. absorb() reduces the state words it is given too. Every output is in [0, p).
/// @dev The permutation is an exact re-expression of poseidon.permute with fewer mulmods. Before
/// round r the code holds Y0 = t0*(s0 + c0_r) and Y1 = t1*s1 + o1 (s: the true state, c0_r: round
/// r's word-0 constant), with scales t0, t1 and offset o1 chosen per round so that every linear
/// layer but the last is Y0' = X0 + A*X1 + C, Y1' = X1 + B*Y0' (2 mulmods), where X0 = Y0^5 and
/// X1 = (Y1 + C1)^5 in a full round, X1 = Y1 in a partial round. The last round is dense and
/// yields the true state. A, B, C, C1 and the last round's matrix are derived from ROUND_CONSTANTS
/// and MDS. Plain `add`s are left unreduced where the sum provably stays below 2**256 (5p < 2**256);
/// mulmod and addmod reduce. The first permutation of hash() knows its capacity word (2**64), so its
/// round 0 raises one word to the 5th power only.
contract PoseidonT2 {
    uint256 internal constant P = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;
    uint256 internal constant C00 = @@C00@@; // round 0's word-0 constant

    /// Poseidon hash of m (m.length >= 1), equal to zkfl.field.poseidon.poseidon_commit(m).
    /// Elements >= p are reduced mod p.
    function hash(uint256[] calldata m) external pure returns (uint256 h) {
        require(m.length != 0, "PoseidonT2: empty message");
        (h, ) = _sponge(0, 0, m, true);
    }

    /// Continue a sponge: absorb m into state (state = [rate, capacity]); the start state is
    /// [0, 2**64], and absorb([0, 2**64], m)[0] == hash(m). State words and elements >= p are
    /// reduced mod p; an empty m returns the reduced state.
    function absorb(uint256[2] calldata state, uint256[] calldata m) external pure returns (uint256[2] memory out) {
        (out[0], out[1]) = _sponge(state[0] % P, state[1] % P, m, false);
    }

    /// Absorb m into [s0, s1] (each < p); fresh: the state is [0, 2**64] and m is not empty.
    function _sponge(uint256 s0, uint256 s1, uint256[] calldata m, bool fresh)
        private
        pure
        returns (uint256 r0, uint256 r1)
    {
        assembly ("memory-safe") {
            // Rounds 1..63 of the permutation: y0 < 3p, y1 < 2p in; the true state (each word < 2p) out.
            function rest(y0, y1, p) -> o0, o1 {
@@REST@@
                o0 := y0
                o1 := y1
            }
            // The permutation of [y0 - C00, y1] (y0 < 2p: the rate word plus round 0's constant, y1 < 2p).
            function perm(y0, y1, p) -> o0, o1 {
@@R0@@
                o0, o1 := rest(y0, y1, p)
            }
            // The permutation of [y0 - C00, 2**64] (the hash's first), with round 0's word-1 power a constant.
            function permFirst(y0, p) -> o0, o1 {
                let y1 := 0
@@F0@@
                o0, o1 := rest(y0, y1, p)
            }
            let p := P
            let ptr := m.offset
            let end := add(ptr, shl(5, m.length))
            if fresh {
                s0, s1 := permFirst(add(mod(calldataload(ptr), p), C00), p)
                ptr := add(ptr, 0x20)
            }
            for {} lt(ptr, end) { ptr := add(ptr, 0x20) } {
                s0, s1 := perm(add(addmod(s0, calldataload(ptr), p), C00), s1, p)
            }
            r0 := mod(s0, p)
            r1 := mod(s1, p)
        }
    }
}
"""


def contract_source() -> str:
    params, rest, r0, f0 = programs()
    check(params, rest, r0, f0)
    ind = " " * 16
    text = HEADER.replace("@@C00@@", hx(pos.ROUND_CONSTANTS[0][0]))
    text = text.replace("@@REST@@", "\n".join(yul(rest, ind)))
    text = text.replace("@@R0@@", "\n".join(yul(r0, ind)))
    return text.replace("@@F0@@", "\n".join(yul(f0, ind)))


if __name__ == "__main__":
    src = contract_source()
    with open(sys.argv[1], "w") as f:
        f.write(src)
    print(f"wrote {sys.argv[1]} ({len(src)} chars)", file=sys.stderr)
