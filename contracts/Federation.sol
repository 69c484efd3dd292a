// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {FederationBase, IPoseidon} from "./FederationBase.sol";


/// @title zkfl Federation: tasks, rounds, verified updates, staking and rewards.
/// @notice A task is a federated training job. Each round, participants submit an
/// update with a proof that it is one training step from the round's global model.
/// An update is accepted only if the proof verifies, the proof starts from this
/// round's global commitment, and its output commitment is the update submitted.
/// Otherwise the rejection is recorded with its reason and the submitter is slashed.
/// Every submission carries the participant's EIP-712 signature, so relayers (the
/// aggregator, anyone paying gas) can neither frame nor impersonate a participant.
/// Tasks are funded in ETH or in an ERC-20 (stakes are in the same currency). Each
/// task has its own roles (OpenZeppelin AccessControl): its organisation administers
/// its aggregator role. Payouts are pulls.
/// A new global model is accepted only with a proof that it is the rounded FedAvg of
/// exactly the round's accepted updates, weighted by their sample counts; its
/// commitment becomes the next round's required starting point. So every global model
/// on chain is provably derived from the initial one through proven steps only.
/// @dev Step public values follow one layout for every backend and model, fixed here
/// (not a task setting): [H(global model), H(features), H(labels), H(binding), H(update),
/// H(input check)]. The binding is derived by this contract from (chain, contract, task,
/// wallet) at join; the input check is the circuit's verdict on its own inputs (labels
/// valid, features within the task's declared bound) and must be the commitment to 0.
/// Aggregation public values for K slots:
/// [H(u_0)..H(u_{K-1}), H(counts), H(new model), count_0..count_{K-1}, margin, headroom].
contract Federation is FederationBase {
    /// @dev What `join` puts in a participant's seal slot: no keccak256 output anyone can name.
    bytes32 private constant JOINED = bytes32(uint256(1));
    bytes32 public constant SUBMISSION_TYPEHASH = keccak256(
        "Submission(uint256 taskId,uint256 round,uint256 updateCommitment,bytes32 updateHash,bytes32 publicValuesHash,bytes32 proofHash)"
    );

    /// @notice Runs the cold paths (see FederationExtension.sol) on this contract's storage.
    address public immutable extension;

    constructor(IPoseidon poseidon_, FederationBase extension_) FederationBase(poseidon_) {
        if (address(extension_).code.length == 0) revert InvalidTask("extension has no code");
        if (address(extension_.poseidon()) != address(poseidon_)) revert InvalidTask("extension uses another Poseidon");
        extension = address(extension_);
    }

    // ---------------------------------------------------------------- tasks

    /// @notice Stake and join. The contract derives the participant's binding H(b) itself
    /// (see `bindingOf`): a proof carries H(b) as a public value, so it counts only for the
    /// one (chain, contract, task, wallet) it was made for. Joining takes no aggregation
    /// slot (slots are taken by accepted updates, first come first served), so nobody can
    /// hold slots without doing the work.
    /// @param stake ERC-20 tasks: the stake pulled from the participant (ETH: msg.value).
    function join(uint256 taskId, uint256 stake) external payable nonReentrant {
        Task storage t = _task(taskId);
        if (t.settled || block.timestamp > t.deadline || t.currentRound >= t.rounds) {
            revert NotAllowed("task is closed");
        }
        Participant storage p = _participants[taskId][msg.sender];
        if (p.joined) revert NotAllowed("already joined");
        if (p.submitted) revert NotAllowed("cannot rejoin after submitting");
        uint256 staked = _pull(t.token, msg.sender, t.token == address(0) ? msg.value : stake);
        if (staked < t.minStake || staked == 0) revert NotAllowed("stake below the task's minimum");
        uint256 binding = bindingOf(taskId, msg.sender);
        p.joined = true;
        p.stake = staked;
        p.binding = binding;
        if (p.seal == bytes32(0)) p.seal = JOINED; // paid once here, rewritten by each decision
        t.activeParticipants += 1;
        emit Joined(taskId, msg.sender, staked, binding);
    }

    /// @notice b's 16 chunks of 16 bits (chunk i = bits 16i..16i+15 of the tagged hash of the context).
    function bindingChunks(uint256 taskId, address participant) public view returns (uint256[] memory chunks) {
        uint256 b = uint256(keccak256(abi.encode(BINDING_TAG, block.chainid, address(this), taskId, participant)));
        chunks = new uint256[](BINDING_CHUNKS);
        for (uint256 i = 0; i < BINDING_CHUNKS; ++i) {
            chunks[i] = (b >> (16 * i)) & 0xffff;
        }
    }

    /// @notice H(b) for a participant of a task here: Poseidon of `bindingChunks`.
    function bindingOf(uint256 taskId, address participant) public view returns (uint256) {
        return poseidon.hash(bindingChunks(taskId, participant));
    }

    // ---------------------------------------------------------------- rounds

    /// @notice Record a participant's update for the open round. Anyone may relay it;
    /// the participant's signature decides whose it is. Returns whether it was accepted.
    /// @param update the update's values, int64 big-endian: published in `UpdateData` when
    /// accepted, so an accepted update is always available to the aggregator and to anyone.
    function submitUpdate(
        uint256 taskId,
        uint256 round,
        address participant,
        uint256 updateCommitment,
        bytes calldata update,
        bytes calldata proof,
        uint256[] calldata publicValues,
        bytes calldata signature
    ) external nonReentrant returns (bool accepted) {
        SignedUpdate[] memory one = new SignedUpdate[](1);
        one[0] = SignedUpdate(participant, updateCommitment, update, proof, publicValues, signature);
        (uint256 count,) = _submit(taskId, round, one);
        return count == 1;
    }

    /// @notice Several participants' updates for the open round in one transaction; anyone may
    /// relay them. Each is judged as `submitUpdate` judges it, but the proofs that pass the other
    /// checks are verified together when the task's verifier can (`verifyProofs`; Groth16: one
    /// random linear combination, N + 3 pairings instead of 4N). When they do not verify together,
    /// or the verifier cannot batch, each is verified on its own with the task's verifyGas: a bad
    /// proof costs only its submitter, never the others in its batch. Participants come in
    /// strictly increasing address order (so each at most once); anything `submitUpdate` would
    /// revert on reverts the whole batch, and nobody is judged.
    /// @return accepted how many of the batch were accepted
    /// @return together whether the batch's proofs verified as one
    function submitUpdates(uint256 taskId, uint256 round, SignedUpdate[] memory batch)
        external
        nonReentrant
        returns (uint256 accepted, bool together)
    {
        if (batch.length == 0) revert NotAllowed("empty batch");
        return _submit(taskId, round, batch);
    }

    function _submit(uint256 taskId, uint256 round, SignedUpdate[] memory batch)
        private
        returns (uint256 accepted, bool together)
    {
        Task storage t = _openRound(taskId, round);
        (Reason[] memory reasons, string[] memory details, uint256 pending) = _judge(t, taskId, round, batch);
        together = pending > 1 && _verifyTogether(t, batch, reasons, pending);
        if (together) emit BatchVerified(taskId, round, pending);
        for (uint256 i = 0; i < batch.length; ++i) {
            if (reasons[i] == Reason.None && !together) {
                (reasons[i], details[i]) = _verify(t, batch[i].proof, batch[i].publicValues);
            }
            if (_decide(t, taskId, round, batch[i], reasons[i], details[i])) ++accepted;
        }
    }

    /// @dev Admit every entry (or revert), and judge each by all but its proof: `pending` pass.
    function _judge(Task storage t, uint256 taskId, uint256 round, SignedUpdate[] memory batch)
        private
        returns (Reason[] memory reasons, string[] memory details, uint256 pending)
    {
        reasons = new Reason[](batch.length);
        details = new string[](batch.length);
        for (uint256 i = 0; i < batch.length; ++i) {
            SignedUpdate memory u = batch[i];
            if (i > 0 && u.participant <= batch[i - 1].participant) revert NotAllowed("batch not in address order");
            Participant storage p = _admit(t, taskId, round, u, pending);
            (reasons[i], details[i]) = _check(t, taskId, round, p, u.updateCommitment, u.publicValues);
            if (reasons[i] == Reason.None) ++pending;
        }
    }

    function _openRound(uint256 taskId, uint256 round) private view returns (Task storage t) {
        t = _task(taskId);
        if (t.settled || block.timestamp > t.deadline) revert NotAllowed("task is closed");
        if (round != t.currentRound || round >= t.rounds) revert NotAllowed("round is not open");
    }

    /// @dev Who may submit, and is it theirs: everything that reverts rather than judges.
    /// `pending` counts updates of the same batch already headed for a decision.
    function _admit(Task storage t, uint256 taskId, uint256 round, SignedUpdate memory u, uint256 pending)
        private
        returns (Participant storage p)
    {
        p = _participants[taskId][u.participant];
        if (!p.joined) revert NotAllowed("participant has not joined");
        if (p.slashed) revert NotAllowed("participant was slashed");
        if (p.decidedRound == round + 1) revert NotAllowed("already submitted this round");
        // Never more accepted updates than the aggregation circuit has slots. (A round stays open
        // until it is published: an update accepted while the aggregator proves the round's FedAvg
        // makes it aggregate again, at most once per free slot.)
        if (_rounds[taskId][round].accepted + pending >= t.aggregationSlots) revert NotAllowed("round is full");
        if (u.update.length != 8 * uint256(t.updateValues)) revert NotAllowed("update must be the model's int64 values");
        bytes32 digest = submissionDigest(
            taskId,
            round,
            u.updateCommitment,
            keccak256(u.update),
            keccak256(abi.encodePacked(u.publicValues)),
            keccak256(u.proof)
        );
        if (ECDSA.recover(digest, u.signature) != u.participant) revert BadSignature();
        p.submitted = true;
        t.submissions += 1;
    }

    /// @dev Record the verdict: accept, or reject with its reason and slash.
    function _decide(
        Task storage t,
        uint256 taskId,
        uint256 round,
        SignedUpdate memory u,
        Reason reason,
        string memory detail
    ) private returns (bool) {
        Participant storage p = _participants[taskId][u.participant];
        p.seal = keccak256(abi.encode(u.updateCommitment, keccak256(u.update)));
        p.decidedRound = uint32(round + 1); // round < t.rounds, a uint32
        if (reason == Reason.None) {
            _accept(t, taskId, round, u.participant, p, u.updateCommitment, u.publicValues);
            emit UpdateData(taskId, round, u.participant, u.update);
            return true;
        }
        p.status = Status.Rejected;
        p.reason = reason;
        _rounds[taskId][round].rejected += 1;
        emit UpdateRejected(taskId, round, u.participant, reason, detail);
        _slash(t, taskId, u.participant, p);
        return false;
    }

    function _accept(
        Task storage t,
        uint256 taskId,
        uint256 round,
        address participant,
        Participant storage p,
        uint256 updateCommitment,
        uint256[] memory publicValues
    ) private {
        bytes32 dataCommitment = keccak256(abi.encode(publicValues[FEATURES_AT], publicValues[LABELS_AT]));
        // Kept only where the task pins data (the one place it is read); the event carries it always.
        if (t.pinData && p.dataCommitment == bytes32(0)) p.dataCommitment = dataCommitment;
        p.status = Status.Accepted;
        p.reason = Reason.None;
        _rounds[taskId][round].accepted += 1;
        _acceptedDigest[taskId][round] = _link(_acceptedDigest[taskId][round], updateCommitment);
        if (p.acceptedUpdates == 0) t.contributors += 1;
        p.acceptedUpdates += 1;
        p.verifiedSamples += t.samplesPerUpdate;
        t.verifiedSamples += t.samplesPerUpdate;
        emit UpdateAccepted(taskId, round, participant, updateCommitment, dataCommitment, t.samplesPerUpdate);
    }

    /// @dev Every check but the proof's: the public values against the round, the wallet and the task.
    function _check(
        Task storage t,
        uint256 taskId,
        uint256 round,
        Participant storage p,
        uint256 updateCommitment,
        uint256[] memory publicValues
    ) private view returns (Reason, string memory) {
        if (publicValues.length != STEP_PUBLIC_VALUES) {
            return (Reason.MalformedPublicValues, "a step proof has exactly 6 public values");
        }
        if (publicValues[GLOBAL_AT] != _rounds[taskId][round].globalCommitment) {
            return (Reason.StaleGlobalModel, "proof does not start from this round's global model");
        }
        if (publicValues[BINDING_AT] != p.binding) {
            return (Reason.BindingMismatch, "proof is bound to another wallet, task, contract or chain");
        }
        if (publicValues[UPDATE_AT] != updateCommitment) {
            return (Reason.UpdateMismatch, "submitted update is not the proof's output");
        }
        if (publicValues[CHECK_AT] != INPUTS_VALID) {
            return (Reason.InputsOutOfBounds, "proof's inputs are outside the task's bounds");
        }
        bytes32 dataCommitment = keccak256(abi.encode(publicValues[FEATURES_AT], publicValues[LABELS_AT]));
        if (t.pinData && p.dataCommitment != bytes32(0) && p.dataCommitment != dataCommitment) {
            return (Reason.DataCommitmentChanged, "data commitment differs from the participant's earlier rounds");
        }
        return (Reason.None, "");
    }

    /// @dev One proof, by the task's verifier, with exactly the task's verifyGas.
    function _verify(Task storage t, bytes memory proof, uint256[] memory publicValues)
        private
        view
        returns (Reason, string memory)
    {
        // A call starved of gas fails like a bad proof would, and a relayer could use that to get
        // an honest participant slashed: so the relayer must leave enough for all of it (EIP-150
        // passes at most 63/64 on), and a failure that used (nearly) all of it is no verdict
        // either, whatever ran out (a verifier that forwards the call, the reusable adapter, says
        // so with the same VerifierOutOfGas error): both revert, and nobody is slashed.
        // Encoded before the gas is measured: copying an oversized proof costs memory gas, which must not
        // count as the verifier's, or a cheat could pad its proof until its rejection read as starvation.
        bytes memory call = abi.encodeWithSignature("verifyProof(bytes,uint256[])", proof, publicValues);
        uint256 g = t.verifyGas;
        if (gasleft() < g + g / 63 + 40_000) revert VerifierOutOfGas();
        uint256 before = gasleft();
        (bool ok, bytes memory ret) = t.verifier.staticcall{gas: g}(call);
        if (!ok && (before - gasleft() >= g - g / 64 || _isOutOfGas(ret))) revert VerifierOutOfGas();
        // Exactly `true`: a revert, empty return data or anything else is a rejection.
        if (!ok || ret.length != 32 || abi.decode(ret, (uint256)) != 1) {
            return (Reason.InvalidProof, "proof does not verify");
        }
        return (Reason.None, "");
    }

    /// @dev The batch's undecided proofs, verified as one. No verdict comes from here: a false,
    /// a revert or a starved call only sends each proof to `_verify` on its own.
    function _verifyTogether(Task storage t, SignedUpdate[] memory batch, Reason[] memory reasons, uint256 count)
        private
        view
        returns (bool)
    {
        bytes[] memory proofs = new bytes[](count);
        uint256[][] memory values = new uint256[][](count);
        uint256 k;
        for (uint256 i = 0; i < batch.length; ++i) {
            if (reasons[i] != Reason.None) continue;
            (proofs[k], values[k]) = (batch[i].proof, batch[i].publicValues);
            ++k;
        }
        // At most verifyGas per proof, and never more than is left (EIP-150 caps it at 63/64):
        // a starved batch call only sends each proof to the guarded single verification.
        return _isTrue(t.verifier, t.verifyGas * count,
            abi.encodeWithSignature("verifyProofs(bytes[],uint256[][])", proofs, values));
    }

    function _isTrue(address target, uint256 gas, bytes memory data) private view returns (bool) {
        (bool ok, bytes memory ret) = target.staticcall{gas: gas}(data);
        return ok && ret.length == 32 && abi.decode(ret, (uint256)) == 1;
    }

    function _isOutOfGas(bytes memory ret) private pure returns (bool) {
        return ret.length == 4 && bytes4(ret) == VerifierOutOfGas.selector;
    }

    /// @notice The aggregator publishes G_{r+1}, which opens round r+1, with a proof that
    /// G_{r+1} is the FedAvg of exactly the round's accepted updates.
    /// @param aggregationValues the aggregation proof's public values (see the contract's notes).
    function publishGlobalModel(
        uint256 taskId,
        uint256 round,
        uint256 globalCommitment,
        bytes calldata modelCid,
        bytes calldata manifestCid,
        bytes calldata aggregationProof,
        uint256[] calldata aggregationValues
    ) external {
        Task storage t = _task(taskId);
        if (!hasRole(aggregatorRole(taskId), msg.sender)) revert NotAllowed("only the task's aggregator publishes");
        if (t.settled) revert NotAllowed("task is settled");
        if (round != t.currentRound || round >= t.rounds) revert NotAllowed("round is not open");
        Round storage current = _rounds[taskId][round];
        if (current.accepted == 0) revert NotAllowed("no accepted update this round");
        // The aggregator may not close a round early on a few (its own) updates: it waits out the
        // collection window unless every active participant was accepted.
        if (block.timestamp < current.openedAt + t.collectionWindow && current.accepted < t.activeParticipants) {
            revert NotAllowed("round is still collecting submissions");
        }
        _checkAggregation(t, current.accepted, _acceptedDigest[taskId][round], globalCommitment, aggregationProof,
            aggregationValues);
        t.currentRound = uint32(round + 1);
        (bytes4 modelPrefix, bytes32 modelDigest) = _splitCid(modelCid);
        _splitCid(manifestCid);
        _rounds[taskId][round + 1] = Round(globalCommitment, modelDigest, uint64(block.timestamp), 0, 0, modelPrefix);
        emit GlobalModelPublished(taskId, round + 1, globalCommitment, modelCid, manifestCid);
    }

    /// @dev Slot k < n holds the k-th accepted update with the task's samples per update (the
    /// first n inputs chain to the round's accepted digest); every slot past n has weight 0, so
    /// whatever it holds adds nothing to the average.
    function _checkAggregation(
        Task storage t,
        uint256 n,
        bytes32 accepted,
        uint256 globalCommitment,
        bytes calldata proof,
        uint256[] calldata values
    ) private view {
        uint256 slots = t.aggregationSlots;
        if (values.length != 2 * slots + 4) revert AggregationRejected("wrong number of public values");
        if (_chain(values, n) != accepted) revert AggregationRejected("inputs are not the round's accepted updates");
        for (uint256 k = 0; k < slots; ++k) {
            if (k < n) {
                if (values[slots + 2 + k] != t.samplesPerUpdate) {
                    revert AggregationRejected("weights are not the accepted updates' sample counts");
                }
            } else if (values[slots + 2 + k] != 0) {
                revert AggregationRejected("an absent slot carries weight");
            }
        }
        if (values[slots + 1] != globalCommitment) revert AggregationRejected("proof is for another model");
        // margin and headroom are field elements: a negative one wraps to nearly 2^254.
        if (values[2 * slots + 2] >= 2 ** 128) revert AggregationRejected("model is not the rounded average");
        if (values[2 * slots + 3] >= 2 ** 128) revert AggregationRejected("values out of the circuit's bound");
        (bool ok, bytes memory ret) = t.aggregationVerifier.staticcall(
            abi.encodeWithSignature("verifyProof(bytes,uint256[])", proof, values)
        );
        if (!ok || ret.length != 32 || abi.decode(ret, (uint256)) != 1) {
            revert AggregationRejected("aggregation proof does not verify");
        }
    }

    /// @notice The hash chain of the round's accepted update commitments in acceptance order, the
    /// order the aggregation proof takes them: d_0 = 0, d_{k+1} = keccak256(abi.encode(d_k, c_k)).
    /// The commitments are the round's UpdateAccepted events, less those a challenge withdrew.
    function acceptedDigest(uint256 taskId, uint256 round) external view returns (bytes32) {
        return _acceptedDigest[taskId][round];
    }

    // ---------------------------------------------------------------- run by the extension
    // Each of these runs FederationExtension's function of the same signature on this contract's
    // storage (see there for what it does); the declarations keep this contract's ABI whole.

    function createTask(TaskParams calldata) external payable returns (uint256) {
        _delegate();
    }

    function leave(uint256) external {
        _delegate();
    }

    function topUp(uint256, uint256) external payable {
        _delegate();
    }

    function cancel(uint256) external {
        _delegate();
    }

    function challengeUpdate(uint256, uint256, address, bytes calldata, uint256, uint256, uint256[] calldata) external {
        _delegate();
    }

    function settle(uint256) external {
        _delegate();
    }

    function withdraw(uint256) external {
        _delegate();
    }

    function reclaim(uint256) external {
        _delegate();
    }

    /// @dev Run the extension's code on this storage, with this call's sender, value and data, and
    /// return or revert with what it returns (it never comes back here).
    function _delegate() private {
        address target = extension;
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), target, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }

    // ---------------------------------------------------------------- views

    function submissionDigest(
        uint256 taskId,
        uint256 round,
        uint256 updateCommitment,
        bytes32 updateHash,
        bytes32 publicValuesHash,
        bytes32 proofHash
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(SUBMISSION_TYPEHASH, taskId, round, updateCommitment, updateHash, publicValuesHash, proofHash)
            )
        );
    }

    function getTask(uint256 taskId) external view returns (Task memory) {
        return _task(taskId);
    }

    function getRound(uint256 taskId, uint256 round) external view returns (Round memory) {
        return _rounds[taskId][round];
    }

    /// @notice The client package's binary CIDv1.
    function packageCid(uint256 taskId) external view returns (bytes memory) {
        Task storage t = _task(taskId);
        return abi.encodePacked(t.packageCidPrefix, t.packageDigest);
    }

    /// @notice G_r's binary CIDv1; empty while round r has no model.
    function modelCid(uint256 taskId, uint256 round) external view returns (bytes memory) {
        Round storage r = _rounds[taskId][round];
        return r.modelCidPrefix == bytes4(0) ? bytes("") : abi.encodePacked(r.modelCidPrefix, r.modelDigest);
    }

    function getParticipant(uint256 taskId, address account) external view returns (Participant memory) {
        return _participants[taskId][account];
    }

}
