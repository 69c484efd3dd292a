// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Forwards a call: a submission relayed through a contract, as a wallet contract or a
/// meta-transaction relayer would send it. The Federation sees this contract as the caller.
contract Relay {
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
