// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title KZG points of linked proofs (docs/linked.md): read from the proof bytes a verifier checks,
/// added and scaled with the ecAdd and ecMul precompiles, and a FedAvg proof's input points formed
/// from a round's sum of update points. Not yet used by the Federation (the chain half is specified,
/// not built); zkfl.prover.ezkl.linked.LinkConstants computes the same points off chain.
library LinkedPoints {
    struct Point {
        uint256 x;
        uint256 y;
    }

    /// @notice The four points fixed by a (linked step, linked FedAvg) pair.
    struct Constants {
        Point sumPerUpdate; // -C_step(0)
        Point sumBase; // C_fed(0)
        Point countPerUpdate; // C_fed([1]) - C_fed([0])
        Point countBase; // C_fed([0])
    }

    error NoSuchPoint(uint256 index, uint256 proofLength);
    error NotOnCurve();

    /// @notice The `index`-th point of a proof: x then y, 32 bytes each, big-endian.
    function pointAt(bytes calldata proof, uint256 index) internal pure returns (Point memory p) {
        uint256 at = 64 * index;
        if (proof.length < at + 64) revert NoSuchPoint(index, proof.length);
        p.x = uint256(bytes32(proof[at:at + 32]));
        p.y = uint256(bytes32(proof[at + 32:at + 64]));
    }

    function add(Point memory a, Point memory b) internal view returns (Point memory r) {
        uint256[4] memory input = [a.x, a.y, b.x, b.y];
        bool ok;
        assembly {
            ok := staticcall(gas(), 0x06, input, 0x80, r, 0x40)
        }
        if (!ok) revert NotOnCurve();
    }

    function scale(Point memory a, uint256 factor) internal view returns (Point memory r) {
        uint256[3] memory input = [a.x, a.y, factor];
        bool ok;
        assembly {
            ok := staticcall(gas(), 0x07, input, 0x60, r, 0x40)
        }
        if (!ok) revert NotOnCurve();
    }

    function equal(Point memory a, Point memory b) internal pure returns (bool) {
        return a.x == b.x && a.y == b.y;
    }

    /// @notice C(S) and C([K]) for a round whose K accepted updates' points sum to `updates`:
    /// commitments are affine in the column, so each update's padding is taken out and the sum
    /// column's put in once.
    function fedavgInputs(Constants memory c, Point memory updates, uint256 k)
        internal
        view
        returns (Point memory total, Point memory count)
    {
        total = add(add(updates, scale(c.sumPerUpdate, k)), c.sumBase);
        count = add(scale(c.countPerUpdate, k), c.countBase);
    }
}
