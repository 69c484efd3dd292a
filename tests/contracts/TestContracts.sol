// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

interface IFederation {
    function join(uint256 taskId, uint256 binding, uint256 stake) external payable;
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

/// A token that calls back into the Federation whenever it is transferred to `attacker`,
/// trying to withdraw (or leave) a second time in the middle of the first payout.
contract ReentrantToken is ERC20 {
    IFederation public federation;
    address public attacker;
    uint256 public taskId;
    bool public useLeave;
    bool private armed;

    constructor() ERC20("reentrant token", "BAD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(IFederation fed, address target, uint256 task, bool viaLeave) external {
        federation = fed;
        attacker = target;
        taskId = task;
        useLeave = viaLeave;
        armed = true;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (armed && to == attacker && from == address(federation)) {
            armed = false;
            if (useLeave) federation.leave(taskId);
            else federation.withdraw(taskId);
        }
    }
}

/// A participant contract whose receive() re-enters the Federation during a payout.
contract ReentrantParticipant {
    IFederation public immutable federation;
    uint256 public taskId;
    bool public useLeave;
    uint256 public reentries;

    constructor(IFederation fed) {
        federation = fed;
    }

    function join(uint256 task, uint256 binding, bool viaLeave) external payable {
        taskId = task;
        useLeave = viaLeave;
        federation.join{value: msg.value}(task, binding, msg.value);
    }

    function withdraw() external {
        federation.withdraw(taskId);
    }

    function leave() external {
        federation.leave(taskId);
    }

    receive() external payable {
        reentries += 1;
        if (useLeave) federation.leave(taskId);
        else federation.withdraw(taskId);
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
