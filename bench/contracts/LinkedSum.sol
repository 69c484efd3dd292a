// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Probe (bench/linked_fedavg_probe.py), not part of zkfl: what a chain pays to form the
/// commitments of a round's update sum S and count K from the accepted updates' KZG points and
/// compare them with a FedAvg proof's first two points. The points are checked against the round's
/// accepted set (a hash chain over both coordinates, as the Federation keeps its set), then
/// C(S) = sum C(u_i) + K * sumA + sumB and C([K]) = K * countA + countB, K being the set's size; the
/// four constants come from the circuits (a package would publish them and the audit recompute them
/// with kzg_commit).
contract LinkedSum {
    uint256 private immutable sumAX;
    uint256 private immutable sumAY;
    uint256 private immutable sumBX;
    uint256 private immutable sumBY;
    uint256 private immutable countAX;
    uint256 private immutable countAY;
    uint256 private immutable countBX;
    uint256 private immutable countBY;
    bytes32 public acceptedDigest;
    bytes32 public basisHash;
    bool public lastResult;
    uint256 private constant GROUP_ORDER =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    constructor(uint256[2] memory sumA, uint256[2] memory sumB, uint256[2] memory countA, uint256[2] memory countB) {
        (sumAX, sumAY, sumBX, sumBY) = (sumA[0], sumA[1], sumB[0], sumB[1]);
        (countAX, countAY, countBX, countBY) = (countA[0], countA[1], countB[0], countB[1]);
    }

    function setAccepted(bytes32 digest) external {
        acceptedDigest = digest;
    }

    /// @return the proof's first two points are C(S) and C([K]) formed from `points` (K of them)
    function check(bytes calldata proof, uint256[2][] calldata points) external returns (bool) {
        bytes32 chain;
        uint256[2] memory total = [uint256(0), uint256(0)];
        for (uint256 i = 0; i < points.length; ++i) {
            chain = keccak256(abi.encode(chain, points[i][0], points[i][1]));
            total = _add(total, points[i]);
        }
        require(chain == acceptedDigest, "not the round's accepted set");
        total = _add(_add(total, _mul([sumAX, sumAY], points.length)), [sumBX, sumBY]);
        uint256[2] memory count = _add(_mul([countAX, countAY], points.length), [countBX, countBY]);
        (uint256 sx, uint256 sy, uint256 kx, uint256 ky) = abi.decode(proof[0:128], (uint256, uint256, uint256, uint256));
        lastResult = sx == total[0] && sy == total[1] && kx == count[0] && ky == count[1];
        return lastResult;
    }

    /// @notice The challenge by point: does `point` commit exactly `values` (signed, as the update
    /// is published)? Recomputed as C(0) + sum values[j] * basis[j], where basis[j] = C(e_j) - C(0)
    /// are the step column's points for the unit tensors (checked against their published hash).
    function commits(uint256[2] calldata point, int256[] calldata values, uint256[2][] calldata basis,
        uint256[2] calldata zero) external returns (bool)
    {
        require(basis.length == values.length, "one basis point per value");
        require(keccak256(abi.encode(basis, zero)) == basisHash, "not the published basis");
        uint256[2] memory total = zero;
        for (uint256 j = 0; j < values.length; ++j) {
            if (values[j] == 0) continue;
            uint256 scalar = values[j] >= 0 ? uint256(values[j]) : GROUP_ORDER - uint256(-values[j]);
            total = _add(total, _mul(basis[j], scalar));
        }
        lastResult = total[0] == point[0] && total[1] == point[1];
        return lastResult;
    }

    function setBasisHash(bytes32 digest) external {
        basisHash = digest;
    }

    function _add(uint256[2] memory a, uint256[2] memory b) private view returns (uint256[2] memory r) {
        uint256[4] memory input = [a[0], a[1], b[0], b[1]];
        bool ok;
        assembly {
            ok := staticcall(gas(), 0x06, input, 0x80, r, 0x40)
        }
        require(ok, "ecAdd");
    }

    function _mul(uint256[2] memory a, uint256 s) private view returns (uint256[2] memory r) {
        uint256[3] memory input = [a[0], a[1], s];
        bool ok;
        assembly {
            ok := staticcall(gas(), 0x07, input, 0x60, r, 0x40)
        }
        require(ok, "ecMul");
    }
}
