"""ZoKrates' generated Solidity verifier, made to answer the Federation's interface.

zokrates-js exports a ``Verifier`` contract with ``verifyTx(Proof, uint[N])``. zkfl
appends ``verifyProof(bytes proof, uint256[] publicValues)``, the interface every
backend's verifier offers the Federation, and changes two things in the generated
``Pairing`` library, each for the same reason: a bad proof must be *rejected*, so its
submitter is recorded and slashed, not make the call look starved of gas.

* Each precompile call gets exactly the gas its operation costs (EIP-1108) instead of
  all but 2,000: a call given an invalid point fails and burns all the gas it was given.
* ``invalid()`` after a failed call becomes the ``require`` that follows it: ``invalid``
  burns all the caller's gas too. The Federation reverts when its verifier call leaves
  less than 1/64 of the budget (a relayer starving the call), so a burnt-gas failure
  would undo the submission instead of rejecting it.

The new function starts by refusing to run on less gas than verification needs, with
the ``VerifierOutOfGas`` error the Federation turns into a revert: with exact precompile
gas a starved call would otherwise end with enough left over to pass for a rejection.
It also refuses, before any precompile, a proof that is not 8 words or
has a coordinate at or above the base field modulus, and a public value at or above
the scalar field order. :mod:`zkfl.prover.zokrates.groth16` decides the same way.
"""

from __future__ import annotations

import re

from zkfl.errors import ConfigError
from zkfl.field import BASE_FIELD_MODULUS as BASE_FIELD
from zkfl.field import SCALAR_FIELD_MODULUS as SCALAR_FIELD

_PATCHES = [
    ("staticcall(sub(gas(), 2000), 6,", "staticcall(150, 6,"),  # ecAdd
    ("staticcall(sub(gas(), 2000), 7,", "staticcall(6000, 7,"),  # ecMul
    ("staticcall(sub(gas(), 2000), 8,", "staticcall(add(45000, mul(34000, div(inputSize, 6))), 8,"),  # ecPairing
]
_INVALID = re.compile(
    r"\n\s*// Use \"invalid\" to make gas estimation work\n\s*switch success case 0 \{ invalid\(\) \}")


STARVATION_GAS = 250_000


def _single_adapter(inputs: int) -> str:
    return f"""
    error VerifierOutOfGas();

    /// zkfl: the verifier interface of every backend. ``proof`` is 8 words: a.x, a.y,
    /// b.x[0], b.x[1], b.y[0], b.y[1], c.x, c.y (G2 coordinates [real, imaginary]).
    function verifyProof(bytes calldata proof, uint256[] calldata publicValues) external view returns (bool) {{
        // Each precompile gets exactly its gas, so a starved call would keep enough gas to
        // look like a rejection: refuse to start without what verification needs (about
        // 240k), with the error the Federation reads as starvation (its call reverts).
        if (gasleft() < {STARVATION_GAS}) revert VerifierOutOfGas();
        if (proof.length != 256 || publicValues.length != {inputs}) return false;
        uint256[8] memory w = abi.decode(proof, (uint256[8]));
        for (uint256 i = 0; i < 8; i++) {{
            if (w[i] >= {BASE_FIELD}) return false;
        }}
        uint256[] memory input = new uint256[]({inputs});
        for (uint256 i = 0; i < {inputs}; i++) {{
            if (publicValues[i] >= {SCALAR_FIELD}) return false;
            input[i] = publicValues[i];
        }}
        Proof memory p = Proof(
            Pairing.G1Point(w[0], w[1]), Pairing.G2Point([w[2], w[3]], [w[4], w[5]]), Pairing.G1Point(w[6], w[7])
        );
        return verify(input, p) == 0;
    }}
"""


def _batch_adapter(inputs: int) -> str:
    return f"""
    /// zkfl: several proofs at once, with one random linear combination: for r_i drawn from a
    /// hash of the whole batch, prod e(r_i a_i, b_i) = e(alpha, beta)^(sum r_i)
    /// e(sum r_i vk_x_i, gamma) e(sum r_i c_i, delta). N + 3 pairings instead of 4N. The r_i
    /// depend on every proof and value in the batch, so no submitter can choose proofs whose
    /// errors cancel. False (or a revert) says only that some proof may be bad: the Federation
    /// then verifies each on its own.
    function verifyProofs(bytes[] calldata proofs, uint256[][] calldata publicValues) external view returns (bool) {{
        uint256 n = proofs.length;
        if (n == 0 || publicValues.length != n) return false;
        Pairing.G1Point[] memory p1 = new Pairing.G1Point[](n + 3);
        Pairing.G2Point[] memory p2 = new Pairing.G2Point[](n + 3);
        uint256[{inputs + 1}] memory sums; // [sum r_i, sum r_i x_i1, ..., sum r_i x_iN]
        Pairing.G1Point memory cSum = Pairing.G1Point(0, 0);
        bytes32 seed = keccak256(abi.encode(proofs, publicValues));
        for (uint256 i = 0; i < n; i++) {{
            uint256 r = uint256(keccak256(abi.encode(seed, i))) % {SCALAR_FIELD};
            if (!_weigh(proofs[i], publicValues[i], r, sums)) return false;
            uint256[8] memory w = abi.decode(proofs[i], (uint256[8]));
            p1[i] = Pairing.scalar_mul(Pairing.G1Point(w[0], w[1]), r);
            p2[i] = Pairing.G2Point([w[2], w[3]], [w[4], w[5]]);
            cSum = Pairing.addition(cSum, Pairing.scalar_mul(Pairing.G1Point(w[6], w[7]), r));
        }}
        return _batchPairing(p1, p2, sums, cSum, n);
    }}

    /// Refuses what verifyProof refuses before any precompile; adds r times the proof's inputs to the sums.
    function _weigh(bytes calldata proof, uint256[] calldata values, uint256 r, uint256[{inputs + 1}] memory sums)
        private pure returns (bool)
    {{
        if (proof.length != 256 || values.length != {inputs}) return false;
        uint256[8] memory w = abi.decode(proof, (uint256[8]));
        for (uint256 j = 0; j < 8; j++) {{
            if (w[j] >= {BASE_FIELD}) return false;
        }}
        sums[0] = addmod(sums[0], r, {SCALAR_FIELD});
        for (uint256 j = 0; j < {inputs}; j++) {{
            if (values[j] >= {SCALAR_FIELD}) return false;
            sums[j + 1] = addmod(sums[j + 1], mulmod(r, values[j], {SCALAR_FIELD}), {SCALAR_FIELD});
        }}
        return true;
    }}

    function _batchPairing(
        Pairing.G1Point[] memory p1, Pairing.G2Point[] memory p2, uint256[{inputs + 1}] memory sums,
        Pairing.G1Point memory cSum, uint256 n
    ) private view returns (bool) {{
        VerifyingKey memory vk = verifyingKey();
        Pairing.G1Point memory x = Pairing.G1Point(0, 0);
        for (uint256 j = 0; j <= {inputs}; j++) {{
            x = Pairing.addition(x, Pairing.scalar_mul(vk.gamma_abc[j], sums[j]));
        }}
        (p1[n], p2[n]) = (Pairing.negate(Pairing.scalar_mul(vk.alpha, sums[0])), vk.beta);
        (p1[n + 1], p2[n + 1]) = (Pairing.negate(x), vk.gamma);
        (p1[n + 2], p2[n + 2]) = (Pairing.negate(cSum), vk.delta);
        return Pairing.pairing(p1, p2);
    }}
}}
"""


def _adapter(inputs: int) -> str:
    return _single_adapter(inputs) + _batch_adapter(inputs)


def adapt_verifier(generated: str, inputs: int) -> str:
    """The generated source with the patches above and the shared interface appended."""
    source = generated
    for old, new in _PATCHES:
        if source.count(old) != 1:
            raise ConfigError(f"ZoKrates' verifier template changed: expected one `{old}`")
        source = source.replace(old, new)
    source, count = _INVALID.subn("", source)
    if count != 3:
        raise ConfigError(f"ZoKrates' verifier template changed: expected 3 invalid() guards, found {count}")
    end = source.rstrip().rfind("}")
    if "contract Verifier" not in source or end < 0:
        raise ConfigError("ZoKrates' verifier template changed: no contract Verifier")
    return source[:end].rstrip() + "\n" + _adapter(inputs)
