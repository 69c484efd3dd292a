// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {FederationBase, IPoseidon} from "./FederationBase.sol";

/// @title The Federation's cold paths: tasks and their funds, leaving, challenges, settlement, payouts.
/// @notice Runs only by the Federation's DELEGATECALL (see `Federation._delegate`), on the Federation's
/// storage, as the Federation: its events are the Federation's and its transfers move the Federation's
/// funds. Called directly, it acts on its own empty storage, which nothing reads.
contract FederationExtension is FederationBase {
    constructor(IPoseidon poseidon_) FederationBase(poseidon_) {}

    function createTask(TaskParams calldata p) external payable nonReentrant returns (uint256 taskId) {
        uint256 funded = _pull(p.token, msg.sender, p.token == address(0) ? msg.value : p.reward);
        if (funded == 0) revert InvalidTask("reward pool is empty");
        if (p.deadline <= block.timestamp) revert InvalidTask("deadline is in the past");
        if (p.deadline > block.timestamp + MAX_TASK_DURATION) revert InvalidTask("deadline is more than a year away");
        if (p.rounds == 0) revert InvalidTask("zero rounds");
        if (p.samplesPerUpdate == 0) revert InvalidTask("zero samples per update");
        if (p.collectionWindow < MIN_COLLECTION_WINDOW || p.collectionWindow > MAX_COLLECTION_WINDOW) {
            revert InvalidTask("collection window must be 10 s to 7 days");
        }
        if (p.updateValues == 0 || p.updateValues > MAX_UPDATE_VALUES) {
            revert InvalidTask("an update has 1 to 12000 values");
        }
        if (p.verifyGas < MIN_VERIFY_GAS || p.verifyGas > MAX_VERIFY_GAS) {
            revert InvalidTask("verify gas must be 100k to 10M");
        }
        if (p.aggregator == address(0)) revert InvalidTask("no aggregator");
        // A call to an address without code "succeeds" with empty return data: never
        // accept a verifier that is not a deployed contract (e.g. one over 24,576 bytes).
        if (p.verifier.code.length == 0) revert InvalidTask("verifier has no code");
        if (p.aggregationVerifier.code.length == 0) revert InvalidTask("aggregation verifier has no code");
        if (p.aggregationSlots == 0) revert InvalidTask("zero aggregation slots");

        taskId = ++taskCount;
        Task storage t = _tasks[taskId];
        t.organisation = msg.sender;
        t.aggregator = p.aggregator;
        t.verifier = p.verifier;
        t.aggregationVerifier = p.aggregationVerifier;
        t.aggregationSlots = p.aggregationSlots;
        t.deadline = p.deadline;
        t.rounds = p.rounds;
        t.samplesPerUpdate = p.samplesPerUpdate;
        t.collectionWindow = p.collectionWindow;
        t.updateValues = p.updateValues;
        t.verifyGas = p.verifyGas;
        t.pinData = p.pinData;
        t.token = p.token;
        t.rewardRule = p.rewardRule;
        t.slashRule = p.slashRule;
        t.rewardPool = funded;
        t.minStake = p.minStake;
        (t.packageCidPrefix, t.packageDigest) = _splitCid(p.packageCid);
        (bytes4 modelPrefix, bytes32 modelDigest) = _splitCid(p.modelCid);
        _rounds[taskId][0] = Round(p.globalCommitment, modelDigest, uint64(block.timestamp), 0, 0, modelPrefix);
        _grantRole(organisationRole(taskId), msg.sender);
        _setRoleAdmin(organisationRole(taskId), organisationRole(taskId));
        _setRoleAdmin(aggregatorRole(taskId), organisationRole(taskId));
        _grantRole(aggregatorRole(taskId), p.aggregator);
        emit TaskCreated(
            taskId,
            msg.sender,
            p.aggregator,
            p.verifier,
            funded,
            p.minStake,
            p.deadline,
            p.rounds,
            p.samplesPerUpdate,
            p.globalCommitment,
            p.modelCid,
            p.packageCid
        );
        emit TaskTerms(
            taskId, p.token, p.rewardRule, p.slashRule, p.pinData, p.collectionWindow, p.aggregationVerifier,
            p.aggregationSlots
        );
    }

    /// @notice Leave before a first submission: the stake comes back.
    function leave(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        Participant storage p = _participants[taskId][msg.sender];
        if (!p.joined) revert NotAllowed("not a participant");
        if (p.submitted) revert NotAllowed("cannot leave after submitting");
        if (t.settled) revert NotAllowed("task is settled: withdraw instead");
        uint256 stake = p.stake;
        delete _participants[taskId][msg.sender];
        t.activeParticipants -= 1;
        emit Left(taskId, msg.sender, stake);
        _push(t.token, msg.sender, stake);
    }

    /// @notice Add to the reward pool (the organisation, before settlement).
    function topUp(uint256 taskId, uint256 amount) external payable nonReentrant onlyRole(organisationRole(taskId)) {
        Task storage t = _task(taskId);
        if (t.settled) revert NotAllowed("task is settled");
        uint256 added = _pull(t.token, msg.sender, t.token == address(0) ? msg.value : amount);
        if (added == 0) revert NotAllowed("nothing to add");
        t.rewardPool += added;
        emit ToppedUp(taskId, msg.sender, added);
    }

    /// @notice Cancel a task before any submission has been decided, and refund its pool.
    /// Participants who joined withdraw their stakes (`withdraw`); nobody has earned a reward yet.
    function cancel(uint256 taskId) external nonReentrant onlyRole(organisationRole(taskId)) {
        Task storage t = _task(taskId);
        if (t.settled) revert NotAllowed("task is settled");
        if (t.submissions != 0) revert NotAllowed("submissions have been made");
        uint256 refund = t.rewardPool;
        t.settled = true;
        t.cancelled = true;
        t.reclaimed = true;
        emit Cancelled(taskId, refund);
        _push(t.token, msg.sender, refund);
    }

    /// @notice Anyone may show that an accepted update's published values (`UpdateData`) are
    /// not the proof's output, so that nobody could aggregate it: the update leaves the
    /// round's accepted set, its submitter is slashed, and the round goes on without it.
    /// This is what stops a participant from freezing a round by withholding its update.
    /// The values are hashed on chain, at most `count` of them per call: a big update is
    /// challenged over several calls (anyone may continue one), each well inside a block
    /// and inside EIP-7825's per-transaction gas cap.
    /// @param updateCommitment the commitment the update was accepted with (its UpdateAccepted event)
    /// @param accepted the round's accepted commitments in acceptance order (`acceptedDigest`'s list),
    /// read only by the call that completes the challenge, to take the update out of it
    function challengeUpdate(
        uint256 taskId,
        uint256 round,
        address participant,
        bytes calldata update,
        uint256 updateCommitment,
        uint256 count,
        uint256[] calldata accepted
    ) external nonReentrant {
        Task storage t = _task(taskId);
        if (t.settled || round != t.currentRound) revert NotAllowed("round is not open");
        Participant storage p = _participants[taskId][participant];
        if (p.decidedRound != round + 1 || p.status != Status.Accepted) {
            revert NotAllowed("no accepted update to challenge");
        }
        if (keccak256(abi.encode(updateCommitment, keccak256(update))) != p.seal) {
            revert NotAllowed("these are not the published values and commitment");
        }
        Challenge storage c = _challenges[taskId][round][participant];
        uint256 total = update.length / 8;
        uint256 end = c.absorbed + count < total ? c.absorbed + count : total;
        if (end <= c.absorbed) revert NotAllowed("nothing to hash");
        uint256[2] memory state = c.absorbed == 0 ? [uint256(0), uint256(2 ** 64)] : [c.rate, c.capacity];
        state = poseidon.absorb(state, _fieldElements(update, c.absorbed, end));
        if (end < total) {
            (c.rate, c.capacity, c.absorbed) = (state[0], state[1], uint32(end));
            return;
        }
        delete _challenges[taskId][round][participant];
        if (state[0] == updateCommitment) revert NotAllowed("the published values are the proof's output");
        _removeAccepted(taskId, round, updateCommitment, accepted);
        _withdrawAccepted(t, taskId, round, participant, p);
    }

    function _withdrawAccepted(Task storage t, uint256 taskId, uint256 round, address participant, Participant storage p)
        private
    {
        Round storage r = _rounds[taskId][round];
        p.status = Status.Rejected;
        p.reason = Reason.UpdateUnavailable;
        r.accepted -= 1;
        r.rejected += 1;
        p.acceptedUpdates -= 1;
        p.verifiedSamples -= t.samplesPerUpdate;
        t.verifiedSamples -= t.samplesPerUpdate;
        if (p.acceptedUpdates == 0) t.contributors -= 1;
        emit UpdateRejected(taskId, round, participant, Reason.UpdateUnavailable, "published update is not the proof's output");
        _slash(t, taskId, participant, p);
    }

    /// @dev int64 big-endian values as BN254 field elements (negative v as FIELD + v), as the circuits hash them.
    function _fieldElements(bytes calldata update, uint256 from, uint256 to)
        private
        pure
        returns (uint256[] memory values)
    {
        values = new uint256[](to - from);
        for (uint256 i = 0; i < values.length; ++i) {
            uint256 raw = uint64(bytes8(update[8 * (from + i):8 * (from + i) + 8]));
            values[i] = raw < 2 ** 63 ? raw : FIELD - (2 ** 64 - raw); // two's complement, int64.min included
        }
    }

    /// @dev Take one occurrence of `commitment` out of the round's accepted set, keeping the others'
    /// order (the aggregation's slot order). `accepted` must be the whole set as it stands.
    function _removeAccepted(uint256 taskId, uint256 round, uint256 commitment, uint256[] calldata accepted)
        private
    {
        uint256 n = accepted.length;
        if (n != _rounds[taskId][round].accepted || _chain(accepted, n) != _acceptedDigest[taskId][round]) {
            revert NotAllowed("accepted is not the round's accepted set as it stands");
        }
        bytes32 digest;
        bool removed;
        for (uint256 i = 0; i < n; ++i) {
            if (!removed && accepted[i] == commitment) removed = true;
            else digest = _link(digest, accepted[i]);
        }
        if (!removed) revert NotAllowed("the update is not in the accepted set");
        _acceptedDigest[taskId][round] = digest;
    }

    /// @notice Close the task after its last round or its deadline. Anyone may call it.
    function settle(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (t.settled) revert NotAllowed("already settled");
        if (t.currentRound < t.rounds && block.timestamp <= t.deadline) revert NotAllowed("task still running");
        t.settled = true;
        emit TaskSettled(taskId, rewardTotal(taskId), t.verifiedSamples);
    }

    /// @notice Pull payment of a participant's reward and returned stake.
    function withdraw(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        if (!t.settled) revert NotAllowed("task is not settled");
        Participant storage p = _participants[taskId][msg.sender];
        if (!p.joined) revert NotAllowed("not a participant");
        if (p.withdrawn) revert NotAllowed("already withdrawn");
        (uint256 reward, uint256 stake) = payoutOf(taskId, msg.sender);
        p.withdrawn = true; // effects before the transfer
        emit Withdrawn(taskId, msg.sender, reward, stake);
        _push(t.token, msg.sender, reward + stake);
    }

    /// @notice The organisation takes what the task leaves it (see `reclaimable`).
    function reclaim(uint256 taskId) external nonReentrant onlyRole(organisationRole(taskId)) {
        Task storage t = _task(taskId);
        if (!t.settled) revert NotAllowed("task is not settled");
        uint256 amount = reclaimable(taskId);
        if (amount == 0) revert NotAllowed("nothing to reclaim");
        t.reclaimed = true;
        emit Reclaimed(taskId, msg.sender, amount);
        _push(t.token, msg.sender, amount);
    }
}
