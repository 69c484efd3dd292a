// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

interface IHalo2VerifierReusable {
    function registerVka(bytes32[] memory vka) external returns (bytes32);
}

/// @title One circuit's verifier, on top of ezkl's reusable halo2 verifier.
/// @notice ezkl's per-circuit verifier outgrows the 24,576-byte contract limit for
/// circuits with lookup tables (softmax, MLP). The reusable verifier (one deployment
/// per chain) takes the circuit's verifying-key artifact (VKA) as an argument instead.
/// This adapter keeps one circuit's VKA on chain (as the code of a data contract, read
/// with EXTCODECOPY) and exposes the same `verifyProof(bytes, uint256[])` as a
/// per-circuit verifier, so the Federation treats both alike.
/// @dev State lives in storage, not immutables, so every adapter has the same runtime
/// code and a participant can check it byte for byte.
contract EzklReusableAdapter {
    /// Same selector as the Federation's: it reverts (never slashes) on this error.
    error VerifierOutOfGas();

    address public reusable;
    address public vkaData;

    constructor(address reusable_, bytes32[] memory vka) {
        require(reusable_.code.length > 0, "reusable verifier has no code");
        reusable = reusable_;
        // A data contract whose code is 0x00 (STOP) followed by the VKA words.
        bytes memory data = abi.encodePacked(hex"00", vka);
        bytes memory init = abi.encodePacked(hex"63", uint32(data.length), hex"80600e6000396000f3", data);
        address pointer;
        assembly {
            pointer := create(0, add(init, 0x20), mload(init))
        }
        require(pointer != address(0), "could not store the VKA");
        vkaData = pointer;
        IHalo2VerifierReusable(reusable_).registerVka(vka);
    }

    /// @notice The circuit's VKA, as registered with the reusable verifier.
    function vka() public view returns (bytes32[] memory words) {
        address pointer = vkaData;
        uint256 size = pointer.code.length - 1;
        words = new bytes32[](size / 32);
        assembly {
            extcodecopy(pointer, add(words, 0x20), 1, size)
        }
    }

    /// @notice True only when the reusable verifier accepts the proof for this circuit.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external view returns (bool) {
        bytes memory call = abi.encodeWithSignature("verifyProof(bytes,uint256[],bytes32[])", proof, instances, vka());
        uint256 budget = gasleft();
        (bool ok, bytes memory ret) = reusable.staticcall(call);
        // Out of gas is not a verdict: revert, so the caller cannot mistake it for a bad proof.
        if (!ok && gasleft() < budget / 64) revert VerifierOutOfGas();
        if (!ok || ret.length < 32) return false;
        return abi.decode(ret, (uint256)) == 1;
    }
}
