// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {LinkedPoints} from "./LinkedPoints.sol";

/// @notice Exposes LinkedPoints for tests (tests/test_linked.py).
contract LinkedHarness {
    function points(bytes calldata proof, uint256 count) external pure returns (uint256[2][] memory out) {
        out = new uint256[2][](count);
        for (uint256 i = 0; i < count; ++i) {
            LinkedPoints.Point memory p = LinkedPoints.pointAt(proof, i);
            out[i] = [p.x, p.y];
        }
    }

    /// @return total C(S) and count C([K]) formed from the updates' points, one ecAdd each
    function fedavgInputs(LinkedPoints.Constants memory c, LinkedPoints.Point[] calldata updates)
        external
        view
        returns (LinkedPoints.Point memory total, LinkedPoints.Point memory count)
    {
        LinkedPoints.Point memory sum;
        for (uint256 i = 0; i < updates.length; ++i) {
            sum = LinkedPoints.add(sum, updates[i]);
        }
        return LinkedPoints.fedavgInputs(c, sum, updates.length);
    }
}
