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


# zkfl's batch verification, appended to the generated contract (``str.format`` fields: inputs,
# sums = inputs + 1, and the two moduli).
_BATCH_ADAPTER = """
    /// zkfl: several proofs at once, with one random linear combination: for coefficients r_i,
    /// prod e(r_i a_i, b_i) = e(alpha, beta)^(sum r_i) e(sum r_i vk_x_i, gamma) e(sum r_i c_i, delta).
    /// N + 3 pairings instead of 4N. r_0 = 1 (one bad proof alone still fails the equation) and the
    /// other r_i are drawn from a hash of this call's exact calldata, so they depend on every proof
    /// and value the call reads, and no submitter can choose proofs whose errors cancel. False (or a
    /// revert) says only that some proof may be bad: the Federation then verifies each on its own.
    function verifyProofs(bytes[] calldata proofs, uint256[][] calldata publicValues) external view returns (bool) {{
        uint256 n = proofs.length;
        if (n == 0 || publicValues.length != n) return false;
        bytes32 seed = keccak256(msg.data);
        uint256[] memory pairs = new uint256[](6 * (n + 3));
        uint256[{sums}] memory sums; // [sum r_i, sum r_i x_i1, ..., sum r_i x_iN]
        uint256[2] memory cSum; // sum r_i c_i, from the point at infinity
        for (uint256 i = 0; i < n; i++) {{
            uint256 r = i == 0 ? 1 : uint256(keccak256(abi.encode(seed, i))) % {SCALAR_FIELD};
            if (!_weigh(proofs[i], publicValues[i], r, sums) || !_combine(proofs[i], r, i, pairs, cSum)) return false;
        }}
        return _batchPairing(pairs, sums, cSum, n);
    }}

    /// Refuses what verifyProof refuses before any precompile (a proof not 8 words, a coordinate at
    /// or above the base field modulus, a value at or above the scalar field order); adds r times
    /// the proof's inputs to the sums. Read straight from calldata: this runs once per proof.
    function _weigh(bytes calldata proof, uint256[] calldata values, uint256 r, uint256[{sums}] memory sums)
        private pure returns (bool ok)
    {{
        if (proof.length != 256 || values.length != {inputs}) return false;
        assembly ("memory-safe") {{
            ok := 1
            for {{ let j := 0 }} lt(j, 8) {{ j := add(j, 1) }} {{
                if iszero(lt(calldataload(add(proof.offset, shl(5, j))), {BASE_FIELD})) {{ ok := 0 }}
            }}
            mstore(sums, addmod(mload(sums), r, {SCALAR_FIELD}))
            for {{ let j := 0 }} lt(j, {inputs}) {{ j := add(j, 1) }} {{
                let v := calldataload(add(values.offset, shl(5, j)))
                if iszero(lt(v, {SCALAR_FIELD})) {{ ok := 0 }}
                let at := add(sums, shl(5, add(j, 1)))
                mstore(at, addmod(mload(at), mulmod(r, v, {SCALAR_FIELD}), {SCALAR_FIELD}))
            }}
        }}
    }}

    /// Puts (r a_i, b_i) in the i-th pair and adds r c_i to cSum. r_0 = 1 takes a_0 and c_0 as they
    /// are (two ecMul fewer a batch): the pairing precompile still refuses an a_0 off the curve,
    /// and the ecAdd a c_0. A point the precompiles refuse makes the batch false.
    function _combine(bytes calldata proof, uint256 r, uint256 i, uint256[] memory pairs, uint256[2] memory cSum)
        private view returns (bool ok)
    {{
        assembly ("memory-safe") {{
            let m := mload(0x40) // scratch past the free pointer: nothing is allocated per proof
            let at := add(add(pairs, 0x20), mul(i, 0xc0))
            ok := 1
            switch i
            case 0 {{ calldatacopy(at, proof.offset, 0x40) }}
            default {{
                calldatacopy(m, proof.offset, 0x40)
                mstore(add(m, 0x40), r)
                ok := staticcall(6000, 7, m, 0x60, at, 0x40)
            }}
            // b_i, each coordinate imaginary first, as the precompile reads G2
            mstore(add(at, 0x40), calldataload(add(proof.offset, 0x60)))
            mstore(add(at, 0x60), calldataload(add(proof.offset, 0x40)))
            mstore(add(at, 0x80), calldataload(add(proof.offset, 0xa0)))
            mstore(add(at, 0xa0), calldataload(add(proof.offset, 0x80)))
            calldatacopy(m, add(proof.offset, 0xc0), 0x40)
            if i {{
                mstore(add(m, 0x40), r)
                ok := and(ok, staticcall(6000, 7, m, 0x60, m, 0x40))
            }}
            mstore(add(m, 0x40), mload(cSum))
            mstore(add(m, 0x60), mload(add(cSum, 0x20)))
            ok := and(ok, staticcall(150, 6, m, 0x80, cSum, 0x40))
        }}
    }}

    function _batchPairing(uint256[] memory pairs, uint256[{sums}] memory sums, uint256[2] memory cSum,
        uint256 n) private view returns (bool)
    {{
        VerifyingKey memory vk = verifyingKey();
        (uint256 xx, uint256 xy) = _inputsPoint(vk, sums);
        (uint256 ax, uint256 ay) = _ecMul(vk.alpha.X, vk.alpha.Y, sums[0]);
        _put(pairs, n, ax, _negY(ay), _g2(vk.beta));
        _put(pairs, n + 1, xx, _negY(xy), _g2(vk.gamma));
        _put(pairs, n + 2, cSum[0], _negY(cSum[1]), _g2(vk.delta));
        return _pairing(pairs, n + 3);
    }}

    /// sum r_i vk_x_i = gamma_abc[0] (sum r_i) + sum_j gamma_abc[j] (sum_i r_i x_ij): inputs + 1 ecMul per batch.
    function _inputsPoint(VerifyingKey memory vk, uint256[{sums}] memory sums)
        private view returns (uint256 xx, uint256 xy)
    {{
        (xx, xy) = _ecMul(vk.gamma_abc[0].X, vk.gamma_abc[0].Y, sums[0]);
        for (uint256 j = 1; j <= {inputs}; j++) {{
            (uint256 px, uint256 py) = _ecMul(vk.gamma_abc[j].X, vk.gamma_abc[j].Y, sums[j]);
            (xx, xy) = _ecAdd(xx, xy, px, py);
        }}
    }}

    function _pairing(uint256[] memory pairs, uint256 count) private view returns (bool) {{
        uint256 pairingGas = 45000 + 34000 * count;
        uint256[1] memory out;
        bool ok;
        assembly ("memory-safe") {{
            ok := staticcall(pairingGas, 8, add(pairs, 0x20), mul(mload(pairs), 0x20), out, 0x20)
        }}
        return ok && out[0] == 1;
    }}

    function _g2(Pairing.G2Point memory p) private pure returns (uint256[4] memory) {{
        return [p.X[1], p.X[0], p.Y[1], p.Y[0]];
    }}

    function _put(uint256[] memory pairs, uint256 at, uint256 x, uint256 y, uint256[4] memory g2) private pure {{
        (pairs[6 * at], pairs[6 * at + 1]) = (x, y);
        for (uint256 k = 0; k < 4; k++) pairs[6 * at + 2 + k] = g2[k];
    }}

    /// -P for a point the precompiles returned (reduced; y = 0 only at infinity, BN254's G1 having no 2-torsion).
    function _negY(uint256 y) private pure returns (uint256) {{
        return y == 0 ? 0 : {BASE_FIELD} - y;
    }}

    // The precompiles on scratch memory past the free pointer: no allocation per call. A failure
    // (a point off the curve) reverts the batch, which sends each proof to verifyProof on its own.
    function _ecMul(uint256 x, uint256 y, uint256 s) private view returns (uint256 rx, uint256 ry) {{
        bool ok;
        assembly ("memory-safe") {{
            let m := mload(0x40)
            mstore(m, x)
            mstore(add(m, 0x20), y)
            mstore(add(m, 0x40), s)
            ok := staticcall(6000, 7, m, 0x60, m, 0x40)
            rx := mload(m)
            ry := mload(add(m, 0x20))
        }}
        require(ok);
    }}

    function _ecAdd(uint256 ax, uint256 ay, uint256 bx, uint256 by) private view returns (uint256 rx, uint256 ry) {{
        bool ok;
        assembly ("memory-safe") {{
            let m := mload(0x40)
            mstore(m, ax)
            mstore(add(m, 0x20), ay)
            mstore(add(m, 0x40), bx)
            mstore(add(m, 0x60), by)
            ok := staticcall(150, 6, m, 0x80, m, 0x40)
            rx := mload(m)
            ry := mload(add(m, 0x20))
        }}
        require(ok);
    }}
}}
"""


def _batch_adapter(inputs: int) -> str:
    return _BATCH_ADAPTER.format(inputs=inputs, sums=inputs + 1, SCALAR_FIELD=SCALAR_FIELD, BASE_FIELD=BASE_FIELD)


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
