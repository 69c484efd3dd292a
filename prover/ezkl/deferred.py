"""ezkl's verifier with its final pairing handed back, so several proofs can share one.

Every halo2/KZG proof ends in one pairing check, e(L, [1]₂) · e(R, −[s]₂) = 1, where L and R
are G1 points the verifier accumulates from the proof (113k gas: 45k + 2 × 34k). ezkl's
generated ``verifyProof`` computes L and R, then pairs them. zkfl renames that function
``verifyProofDeferred`` and ends it by returning (L, R) instead (after every other check
has passed; anything failing still reverts), and appends:

* ``verifyProof(bytes, uint256[])``: the Federation's interface; the deferred check, then the pairing.
* ``verifyProofs(bytes[], uint256[][])``: several proofs of this circuit with one pairing,
  e(Σ rᵢLᵢ, [1]₂) · e(Σ rᵢRᵢ, −[s]₂) = 1, with r₀ = 1 and the other rᵢ drawn from a hash of the
  call's exact calldata. Each (Lᵢ, Rᵢ) is fixed by its proof and instances before the rᵢ are
  known, so no one can choose proofs whose errors cancel; false only means "verify each alone".

A proof with a point off the curve is a *rejection* (its submitter slashed), not an apparent
starvation, as before: ezkl's verifier checks every point it reads from calldata (coordinates
below q, on the curve) and reverts before its first precompile call, so no precompile ever sees
an invalid point (and burns the ``gas()`` ezkl hands it). zkfl's functions keep that: they call
precompiles only on points ezkl's checks or the precompiles themselves produced.

The deferred function reads the proof at absolute calldata offsets, so it is always called
externally (a self-``STATICCALL``) with the standard encoding of ``(bytes, uint256[])``, the
encoding the Federation itself sends. Its gas: one self-call more than ezkl's own (about 3k),
against 113k less for every proof of a batch after the first, less two ecMul and two ecAdd.
"""

from __future__ import annotations

import re

from zkfl.errors import ConfigError
from zkfl.field import SCALAR_FIELD_MODULUS as SCALAR_FIELD

_HEADER = re.compile(
    r"function verifyProof\(\s*bytes calldata proof,\s*uint256\[\] calldata instances\s*\) public returns \(bool\) \{")
_PAIRING_TAIL = re.compile(
    r"// Perform pairing\s*success := ec_pairing\(\s*success,\s*mload\(PAIRING_LHS_X_MPTR\),\s*"
    r"mload\(PAIRING_LHS_Y_MPTR\),\s*mload\(PAIRING_RHS_X_MPTR\),\s*mload\(PAIRING_RHS_Y_MPTR\)\s*\)\s*"
    r"// Revert if anything fails\s*if iszero\(success\) \{\s*revert\(0x00, 0x00\)\s*\}\s*"
    r"// Return 1 as result if everything succeeds\s*mstore\(0x00, 1\)\s*return\(0x00, 0x20\)")
_DEFERRED_TAIL = """// zkfl: every check but the pairing has passed; hand its two G1 points back.
            if iszero(success) {
                revert(0x00, 0x00)
            }
            mstore(0x00, mload(PAIRING_LHS_X_MPTR))
            mstore(0x20, mload(PAIRING_LHS_Y_MPTR))
            mstore(0x40, mload(PAIRING_RHS_X_MPTR))
            mstore(0x60, mload(PAIRING_RHS_Y_MPTR))
            return(0x00, 0x80)"""
#: The G2 points of the final pairing, in the order ezkl's ``ec_pairing`` lays them out.
_G2_WORDS = ("g2_x_1", "g2_x_2", "g2_y_1", "g2_y_2", "neg_s_g2_x_1", "neg_s_g2_x_2", "neg_s_g2_y_1", "neg_s_g2_y_2")


def _g2_words(source: str) -> list[str]:
    words = []
    for name in _G2_WORDS:
        found = set(re.findall(rf"mstore\(0x[0-9a-f]+, (0x[0-9a-f]{{64}})\) // {name}\n", source))
        if len(found) != 1:
            raise ConfigError(f"ezkl's verifier template changed: expected one value for {name}, found {len(found)}")
        words.append(found.pop())
    return words


def adapt_verifier(generated: str) -> str:
    """ezkl's generated ``Halo2Verifier`` with its pairing deferred and zkfl's interface appended."""
    g2 = _g2_words(generated)
    source, headers = _HEADER.subn(
        "function verifyProofDeferred(\n        bytes calldata proof,\n        uint256[] calldata instances\n"
        "    ) public returns (bool) {", generated)
    source, tails = _PAIRING_TAIL.subn(_DEFERRED_TAIL, source)
    end = source.rstrip().rfind("}")
    if headers != 1 or tails != 1 or "contract Halo2Verifier" not in source or end < 0:
        raise ConfigError(f"ezkl's verifier template changed: found {headers} verifyProof headers and {tails} "
                          "final pairings (expected one each)")
    return source[:end].rstrip() + "\n" + _interface(g2, *accepted_lengths(generated)) + "}\n"


_INTERFACE = """
    /// Same selector as the Federation's: it reverts (never slashes) on this error.
    error VerifierOutOfGas();

    /// @notice The Federation's interface: true only when ezkl's checks and the final pairing pass.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external view returns (bool) {{
        (bool ok, uint256[4] memory acc) = _deferred(proof, instances);
        if (!ok) return false;
        // The pairing gets exactly its 113,000 gas, so with less left (EIP-150 keeps 1/64 back) it would
        // fail cleanly and a valid proof would read as a bad one: short of that, no verdict.
        if (gasleft() < 120_000) revert VerifierOutOfGas();
        return _pairing(acc);
    }}

    /// @notice Several proofs of this circuit, with one pairing (see zkfl.prover.ezkl.deferred).
    /// False (or a revert) says only that some proof may be bad: the Federation then verifies each alone.
    function verifyProofs(bytes[] calldata proofs, uint256[][] calldata instances) external view returns (bool) {{
        uint256 n = proofs.length;
        if (n == 0 || instances.length != n) return false;
        bytes32 seed = keccak256(msg.data);
        uint256[4] memory sum;
        for (uint256 i = 0; i < n; i++) {{
            (bool ok, uint256[4] memory acc) = _deferred(proofs[i], instances[i]);
            if (!ok) return false;
            if (i == 0) {{
                sum = acc; // r_0 = 1
            }} else if (!_addWeighted(sum, acc, uint256(keccak256(abi.encode(seed, i))) % {SCALAR_FIELD})) {{
                return false;
            }}
        }}
        return _pairing(sum);
    }}

    /// ezkl's checks for one proof, called as the Federation calls verifyProof (its offsets are absolute).
    function _deferred(bytes calldata proof, uint256[] calldata instances)
        private view returns (bool, uint256[4] memory acc)
    {{
        // ezkl's own length checks, made before the proof is copied: an oversized proof is refused
        // for a few hundred gas, never paid for in memory until the call reads as starved.
        if (proof.length != {proof_bytes} || instances.length != {instances}) return (false, acc);
        uint256 budget = gasleft();
        (bool ok, bytes memory ret) =
            address(this).staticcall(abi.encodeWithSelector(this.verifyProofDeferred.selector, proof, instances));
        // Out of gas is not a verdict: revert, so the caller cannot mistake it for a bad proof.
        if (!ok && gasleft() < budget / 64) revert VerifierOutOfGas();
        if (!ok || ret.length != 128) return (false, acc);
        return (true, abi.decode(ret, (uint256[4])));
    }}

    /// sum += r * acc, for both points. The precompiles return reduced points (or fail).
    function _addWeighted(uint256[4] memory sum, uint256[4] memory acc, uint256 r) private view returns (bool ok) {{
        assembly ("memory-safe") {{
            let m := mload(0x40) // scratch past the free pointer: nothing is allocated
            ok := 1
            for {{ let k := 0 }} lt(k, 2) {{ k := add(k, 1) }} {{
                let point := add(acc, shl(6, k))
                let total := add(sum, shl(6, k))
                mstore(m, mload(point))
                mstore(add(m, 0x20), mload(add(point, 0x20)))
                mstore(add(m, 0x40), r)
                ok := and(ok, staticcall(6000, 7, m, 0x60, add(m, 0x40), 0x40))
                mstore(m, mload(total))
                mstore(add(m, 0x20), mload(add(total, 0x20)))
                ok := and(ok, staticcall(150, 6, m, 0x80, total, 0x40))
            }}
        }}
    }}

    /// e(L, [1]_2) * e(R, -[s]_2) == 1, the check ezkl's verifier ends with, with exactly its gas.
    function _pairing(uint256[4] memory acc) private view returns (bool) {{
        uint256[12] memory input = [
            acc[0], acc[1], {g2_0}, {g2_1},
            {g2_2}, {g2_3}, acc[2], acc[3],
            {g2_4}, {g2_5}, {g2_6}, {g2_7}
        ];
        uint256[1] memory out;
        bool ok;
        assembly ("memory-safe") {{
            ok := staticcall(113000, 8, input, 0x180, out, 0x20)
        }}
        return ok && out[0] == 1;
    }}
"""


def _interface(g2: list[str], proof_bytes: int, instances: int) -> str:
    return _INTERFACE.format(SCALAR_FIELD=SCALAR_FIELD, proof_bytes=proof_bytes, instances=instances,
                             **{f"g2_{i}": word for i, word in enumerate(g2)})


def accepted_lengths(source: str) -> tuple[int, int]:
    """The proof length and instance count ezkl's verifier accepts (``eq(LEN, proof.length)``, ``// num_instances``),
    read from its source, generated or adapted."""
    lengths = set(re.findall(r"eq\((0x[0-9a-fA-F]+), proof\.length\)", source))
    counts = set(re.findall(r"mstore\(0x[0-9a-f]+, (0x[0-9a-f]{64})\) // num_instances\n", source))
    if len(lengths) != 1 or len(counts) != 1:
        raise ConfigError("ezkl's verifier template changed: expected one proof length and one instance count")
    return int(lengths.pop(), 16), int(counts.pop(), 16)
