// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Forwards calls: a submission relayed through a contract, as a wallet contract, a multicall or a
/// meta-transaction relayer would send it. The Federation sees this contract as the caller.
contract Relay {
    /// Several calls in one transaction, in order (a multicall): each must succeed.
    function forwardAll(address target, bytes[] calldata calls) external {
        for (uint256 i = 0; i < calls.length; ++i) {
            this.forward(target, calls[i]);
        }
    }

    function forward(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }
}
