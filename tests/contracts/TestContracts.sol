// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

interface IFederation {
    function join(uint256 taskId, uint256 stake) external payable;
    function leave(uint256 taskId) external;
    function withdraw(uint256 taskId) external;
}

/// A plain token anyone can mint: the ERC-20 a test task is funded in.
contract TestToken is ERC20 {
    constructor() ERC20("zkfl test token", "ZKT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// A hostile organisation's token: it calls itself "ETH", and its balanceOf reverts for
/// accounts without code (wallets), while transfers to and from the Federation work.
contract LookalikeToken is ERC20 {
    constructor() ERC20("Ether", "ETH") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function balanceOf(address account) public view override returns (uint256) {
        require(account.code.length != 0, "no balances for wallets");
        return super.balanceOf(account);
    }
}

/// Bubble a failed call's revert data up unchanged, so the test sees the callee's own error.
library Bubble {
    function call(address target, bytes memory data) internal {
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}

/// A token that, armed, calls back into the Federation exactly once: when the Federation
/// transfers to `target`, it makes the armed call (e.g. `withdraw` of another task) in the
/// middle of that payout. The token can itself be a participant (`joinTask`), so the nested
/// call is one the Federation would accept on its own: only the reentrancy guard refuses it.
contract ReentrantToken is ERC20 {
    address public federation;
    address public target;
    bytes public reentry;
    uint256 public reentries;

    constructor() ERC20("reentrant token", "BAD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address fed, address target_, bytes calldata call) external {
        federation = fed;
        target = target_;
        reentry = call;
    }

    /// Stake `stake` of this token in a task of `fed`, as a participant.
    function joinTask(address fed, uint256 taskId, uint256 stake) external {
        _mint(address(this), stake);
        _approve(address(this), fed, stake);
        IFederation(fed).join(taskId, stake);
    }

    /// Make a call to the Federation as this contract (not nested in a payout).
    function callFederation(address fed, bytes calldata call) external {
        Bubble.call(fed, call);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (reentry.length != 0 && to == target && from == federation) {
            bytes memory call = reentry;
            delete reentry; // once
            reentries += 1;
            Bubble.call(federation, call);
        }
    }
}

/// A participant contract whose receive(), armed, makes one call into the Federation in the
/// middle of a payout (exactly once: it disarms before calling), with the callee's error bubbled up.
contract ReentrantParticipant {
    address public immutable federation;
    bytes public reentry;
    uint256 public reentries;

    constructor(address fed) {
        federation = fed;
    }

    function arm(bytes calldata call) external {
        reentry = call;
    }

    function join(uint256 taskId) external payable {
        IFederation(federation).join{value: msg.value}(taskId, msg.value);
    }

    function withdraw(uint256 taskId) external {
        IFederation(federation).withdraw(taskId);
    }

    function leave(uint256 taskId) external {
        IFederation(federation).leave(taskId);
    }

    receive() external payable {
        if (msg.sender != federation || reentry.length == 0) return;
        bytes memory call = reentry;
        delete reentry; // once
        reentries += 1;
        Bubble.call(federation, call);
    }
}

/// A verifier (and reusable verifier) that burns a fixed amount of gas, then says yes:
/// for testing what the Federation does when a relayer starves the verification.
contract GasHungryVerifier {
    uint256 public immutable burn;

    constructor(uint256 burn_) {
        burn = burn_;
    }

    function registerVka(bytes32[] memory) external pure returns (bytes32) {
        return bytes32(0);
    }

    function verifyProof(bytes calldata, uint256[] calldata) external view returns (bool) {
        _burn();
        return true;
    }

    function verifyProof(bytes calldata, uint256[] calldata, bytes32[] memory)
        external
        view
        returns (bool, bytes32, int256[] memory)
    {
        _burn();
        return (true, bytes32(0), new int256[](0));
    }

    function _burn() private view {
        uint256 start = gasleft();
        while (start - gasleft() < burn) {}
    }
}
