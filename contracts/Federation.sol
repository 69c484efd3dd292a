// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

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
/// @notice ezkl's Poseidon (width 2, rate 1) on chain: see PoseidonT2.sol.
interface IPoseidon {
    function hash(uint256[] calldata m) external pure returns (uint256);
    function absorb(uint256[2] calldata state, uint256[] calldata m) external pure returns (uint256[2] memory);
}

contract Federation is EIP712, ReentrancyGuard, AccessControl {
    using SafeERC20 for IERC20;

    /// @notice Step public values: their number and positions, the same for every backend.
    uint256 public constant STEP_PUBLIC_VALUES = 6;
    uint256 private constant GLOBAL_AT = 0;
    uint256 private constant FEATURES_AT = 1;
    uint256 private constant LABELS_AT = 2;
    uint256 private constant BINDING_AT = 3;
    uint256 private constant UPDATE_AT = 4;
    uint256 private constant CHECK_AT = 5;
    /// @notice H([0]): the input-check output of a step whose inputs are within the task's bounds.
    uint256 public constant INPUTS_VALID =
        8065231320233546845889504658050882987663732304574489295982393739117377810121;
    /// @notice The binding b is 16 chunks of 16 bits of this tagged hash of the context.
    bytes32 public constant BINDING_TAG = keccak256("zkfl binding v2");
    uint256 private constant BINDING_CHUNKS = 16;
    /// @notice No task runs longer than this: pool and stakes are never locked for longer.
    uint256 public constant MAX_TASK_DURATION = 365 days;
    /// @notice Bounds on the per-round collection window fixed at creation.
    uint256 public constant MIN_COLLECTION_WINDOW = 10 seconds;
    uint256 public constant MAX_COLLECTION_WINDOW = 7 days;
    /// @notice At most this many values in an update: its bytes travel in one transaction's calldata
    /// (96 KB, under the 128 KB nodes relay). A challenge hashes them over as many calls as it needs.
    uint256 public constant MAX_UPDATE_VALUES = 12000;
    /// @notice Bounds on the gas a task gives its step verifier.
    uint256 public constant MIN_VERIFY_GAS = 100_000;
    uint256 public constant MAX_VERIFY_GAS = 10_000_000;
    /// @notice An update travels as int64 values, 8 bytes each, big-endian two's complement.
    uint256 private constant FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    IPoseidon public immutable poseidon;

    enum RewardRule {
        ProRataSamples, // reward pool split pro rata to verified samples
        EqualShares // split equally among participants with at least one verified update
    }

    enum SlashRule {
        ToRewardPool, // slashed stakes are added to the rewards of the honest
        ToOrganisation // slashed stakes go to the organisation
    }

    enum Status {
        None,
        Accepted,
        Rejected
    }

    enum Reason {
        None,
        StaleGlobalModel,
        UpdateMismatch,
        InvalidProof,
        MalformedPublicValues,
        BindingMismatch,
        DataCommitmentChanged,
        InputsOutOfBounds, // the circuit's input check failed: labels invalid or features past the bound
        UpdateUnavailable // the update's published values are not the proof's output (found by a challenge)
    }

    struct TaskParams {
        address aggregator;
        address verifier;
        address aggregationVerifier; // verifies the FedAvg proof over `aggregationSlots` updates
        uint32 aggregationSlots; // at most this many accepted updates a round (joining takes no slot)
        address token; // address(0): ETH
        RewardRule rewardRule;
        SlashRule slashRule;
        uint256 reward; // ERC-20 tasks: the amount pulled from the organisation (ETH: msg.value)
        uint64 deadline;
        uint32 rounds;
        uint32 samplesPerUpdate;
        uint32 collectionWindow; // seconds each round stays open for submissions before the aggregator may publish
        uint32 updateValues; // values in an update (the model's parameters): every submission publishes exactly these
        uint32 verifyGas; // the gas every step verification gets, exactly: no relayer can give it less
        bool pinData; // a participant's data commitment may not change between rounds
        uint256 minStake;
        uint256 globalCommitment;
        bytes modelCid; // binary CIDv1 of G_0's artifact (see `_splitCid`)
        bytes packageCid; // binary CIDv1 of the client package
    }

    struct Task {
        address organisation;
        address aggregator;
        address verifier;
        address aggregationVerifier;
        uint32 aggregationSlots;
        address token;
        RewardRule rewardRule;
        SlashRule slashRule;
        bool cancelled;
        uint32 submissions; // decided submissions over the task's life: cancel only while there are none
        uint32 contributors; // participants with a verified update, not slashed
        uint64 deadline;
        uint32 rounds;
        uint32 currentRound; // open round; equals `rounds` once the last model is published
        uint32 samplesPerUpdate;
        uint32 collectionWindow;
        uint32 updateValues;
        uint32 verifyGas;
        uint32 activeParticipants; // joined and not slashed
        bool settled;
        bool reclaimed;
        bool pinData;
        uint256 rewardPool;
        uint256 slashedPool;
        uint256 minStake;
        uint256 verifiedSamples; // over participants not slashed
        bytes32 packageDigest; // the client package's CID is packageCidPrefix ++ packageDigest
        bytes4 packageCidPrefix;
    }

    struct Round {
        uint256 globalCommitment; // H(G_r): every proof of round r must start here
        bytes32 modelDigest; // G_r's artifact has CID modelCidPrefix ++ modelDigest
        uint64 openedAt; // when the round opened: the aggregator publishes after openedAt + collectionWindow
        uint32 accepted;
        uint32 rejected;
        bytes4 modelCidPrefix; // packed with openedAt: naming the codec costs no extra storage slot
    }

    struct Participant {
        uint256 stake;
        uint256 binding; // H(b), b derived by the contract from (chain, contract, task, wallet)
        bytes32 dataCommitment; // of its first accepted update, kept only when the task pins data
        uint64 verifiedSamples;
        uint32 acceptedUpdates;
        bool joined;
        bool submitted; // has a decision in some round: can no longer leave
        bool slashed;
        bool withdrawn;
    }

    /// @dev A challenge in progress: the Poseidon sponge over the first `absorbed` values.
    struct Challenge {
        uint256 rate;
        uint256 capacity;
        uint32 absorbed;
    }

    /// @dev Two storage slots, not three: status, reason and the update's hash share the first.
    struct Submission {
        Status status;
        Reason reason;
        bytes30 updateHash; // keccak256 of the update's values as submitted (published in UpdateData), first 30 bytes
        uint256 updateCommitment;
    }

    /// @notice One participant's signed update, as `submitUpdate` takes it (for `submitUpdates`).
    struct SignedUpdate {
        address participant;
        uint256 updateCommitment;
        bytes update;
        bytes proof;
        uint256[] publicValues;
        bytes signature;
    }

    bytes4 private constant CID_RAW = 0x01551220; // CIDv1, raw, sha2-256, 32 bytes
    bytes4 private constant CID_DAG_PB = 0x01701220; // CIDv1, dag-pb, sha2-256, 32 bytes

    bytes32 public constant SUBMISSION_TYPEHASH = keccak256(
        "Submission(uint256 taskId,uint256 round,uint256 updateCommitment,bytes32 updateHash,bytes32 publicValuesHash,bytes32 proofHash)"
    );

    uint256 public taskCount;
    mapping(uint256 => Task) private _tasks;
    mapping(uint256 => mapping(uint256 => Round)) private _rounds;
    mapping(uint256 => mapping(address => Participant)) private _participants;
    mapping(uint256 => mapping(uint256 => mapping(address => Submission))) private _submissions;
    // task => round => accepted update commitments, in acceptance order (the aggregation's slots)
    mapping(uint256 => mapping(uint256 => uint256[])) private _acceptedUpdates;
    mapping(uint256 => mapping(uint256 => mapping(address => Challenge))) private _challenges;

    event TaskCreated(
        uint256 indexed taskId,
        address indexed organisation,
        address aggregator,
        address verifier,
        uint256 rewardPool,
        uint256 minStake,
        uint64 deadline,
        uint32 rounds,
        uint32 samplesPerUpdate,
        uint256 globalCommitment,
        bytes modelCid,
        bytes packageCid
    );
    event TaskTerms(
        uint256 indexed taskId,
        address token,
        RewardRule rewardRule,
        SlashRule slashRule,
        bool pinData,
        uint32 collectionWindow,
        address aggregationVerifier,
        uint32 aggregationSlots
    );
    event Joined(uint256 indexed taskId, address indexed participant, uint256 stake, uint256 binding);
    event UpdateAccepted(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed participant,
        uint256 updateCommitment,
        bytes32 dataCommitment,
        uint256 samples
    );
    event UpdateRejected(
        uint256 indexed taskId, uint256 indexed round, address indexed participant, Reason reason, string detail
    );
    /// @notice The values of an accepted update (int64, big-endian), on chain for anyone to aggregate or check:
    /// nobody can withhold an accepted update from the aggregator.
    /// @notice A batch's proofs verified as one (`submitUpdates`); each is then accepted with its own event.
    event BatchVerified(uint256 indexed taskId, uint256 indexed round, uint256 proofs);
    event UpdateData(uint256 indexed taskId, uint256 indexed round, address indexed participant, bytes update);
    event Slashed(uint256 indexed taskId, address indexed participant, uint256 amount);
    /// @param manifestCid binary CID of the aggregation manifest: which update artifacts, with
    /// which sample counts, were averaged into this model.
    event GlobalModelPublished(
        uint256 indexed taskId, uint256 indexed round, uint256 globalCommitment, bytes modelCid, bytes manifestCid
    );
    event TaskSettled(uint256 indexed taskId, uint256 rewardTotal, uint256 verifiedSamples);
    event Withdrawn(uint256 indexed taskId, address indexed account, uint256 reward, uint256 stake);
    event Reclaimed(uint256 indexed taskId, address indexed organisation, uint256 amount);
    event ToppedUp(uint256 indexed taskId, address indexed from, uint256 amount);
    event Cancelled(uint256 indexed taskId, uint256 refund);
    event Left(uint256 indexed taskId, address indexed participant, uint256 stake);

    error UnknownTask(uint256 taskId);
    error InvalidTask(string why);
    error InvalidCid(string why);
    error NotAllowed(string why);
    error BadSignature();
    error VerifierOutOfGas();
    error AggregationRejected(string why);

    constructor(IPoseidon poseidon_) EIP712("zkfl Federation", "2") {
        if (address(poseidon_).code.length == 0) revert InvalidTask("Poseidon has no code");
        poseidon = poseidon_;
    }

    // ---------------------------------------------------------------- tasks

    function organisationRole(uint256 taskId) public pure returns (bytes32) {
        return keccak256(abi.encode("zkfl.organisation", taskId));
    }

    function aggregatorRole(uint256 taskId) public pure returns (bytes32) {
        return keccak256(abi.encode("zkfl.aggregator", taskId));
    }

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
        if (_submissions[taskId][round][u.participant].status != Status.None) {
            revert NotAllowed("already submitted this round");
        }
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
        Submission storage s = _submissions[taskId][round][u.participant];
        s.updateCommitment = u.updateCommitment;
        if (reason == Reason.None) {
            s.updateHash = bytes30(keccak256(u.update)); // one slot with the status _accept sets
            _accept(t, taskId, round, u.participant, p, s, u.publicValues);
            emit UpdateData(taskId, round, u.participant, u.update);
            return true;
        }
        s.status = Status.Rejected;
        s.reason = reason;
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
        Submission storage s,
        uint256[] memory publicValues
    ) private {
        bytes32 dataCommitment = keccak256(abi.encode(publicValues[FEATURES_AT], publicValues[LABELS_AT]));
        // Kept only where the task pins data (the one place it is read); the event carries it always.
        if (t.pinData && p.dataCommitment == bytes32(0)) p.dataCommitment = dataCommitment;
        s.status = Status.Accepted;
        _rounds[taskId][round].accepted += 1;
        _acceptedUpdates[taskId][round].push(s.updateCommitment);
        if (p.acceptedUpdates == 0) t.contributors += 1;
        p.acceptedUpdates += 1;
        p.verifiedSamples += t.samplesPerUpdate;
        t.verifiedSamples += t.samplesPerUpdate;
        emit UpdateAccepted(taskId, round, participant, s.updateCommitment, dataCommitment, t.samplesPerUpdate);
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
        uint256 g = t.verifyGas;
        if (gasleft() < g + g / 63 + 40_000) revert VerifierOutOfGas();
        uint256 before = gasleft();
        (bool ok, bytes memory ret) =
            t.verifier.staticcall{gas: g}(abi.encodeWithSignature("verifyProof(bytes,uint256[])", proof, publicValues));
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

    /// @notice Anyone may show that an accepted update's published values (`UpdateData`) are
    /// not the proof's output, so that nobody could aggregate it: the update leaves the
    /// round's accepted set, its submitter is slashed, and the round goes on without it.
    /// This is what stops a participant from freezing a round by withholding its update.
    /// The values are hashed on chain, at most `count` of them per call: a big update is
    /// challenged over several calls (anyone may continue one), each well inside a block
    /// and inside EIP-7825's per-transaction gas cap.
    function challengeUpdate(uint256 taskId, uint256 round, address participant, bytes calldata update, uint256 count)
        external
        nonReentrant
    {
        Task storage t = _task(taskId);
        if (t.settled || round != t.currentRound) revert NotAllowed("round is not open");
        Submission storage s = _submissions[taskId][round][participant];
        if (s.status != Status.Accepted) revert NotAllowed("no accepted update to challenge");
        if (bytes30(keccak256(update)) != s.updateHash) revert NotAllowed("these are not the published values");
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
        if (state[0] == s.updateCommitment) revert NotAllowed("the published values are the proof's output");
        _withdrawAccepted(t, taskId, round, participant, s);
    }

    function _withdrawAccepted(Task storage t, uint256 taskId, uint256 round, address participant, Submission storage s)
        private
    {
        Participant storage p = _participants[taskId][participant];
        Round storage r = _rounds[taskId][round];
        s.status = Status.Rejected;
        s.reason = Reason.UpdateUnavailable;
        r.accepted -= 1;
        r.rejected += 1;
        _removeAccepted(_acceptedUpdates[taskId][round], s.updateCommitment);
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

    /// @dev Remove one occurrence, keeping the others' order (the aggregation's slot order).
    function _removeAccepted(uint256[] storage list, uint256 commitment) private {
        uint256 n = list.length;
        uint256 i = 0;
        while (list[i] != commitment) ++i;
        for (; i + 1 < n; ++i) list[i] = list[i + 1];
        list.pop();
    }

    function _isOutOfGas(bytes memory ret) private pure returns (bool) {
        return ret.length == 4 && bytes4(ret) == VerifierOutOfGas.selector;
    }

    function _slash(Task storage t, uint256 taskId, address participant, Participant storage p) private {
        uint256 amount = p.stake;
        p.slashed = true;
        p.stake = 0;
        // A slashed participant forfeits its stake and any reward for earlier rounds.
        if (p.acceptedUpdates > 0) t.contributors -= 1;
        t.verifiedSamples -= p.verifiedSamples;
        p.verifiedSamples = 0;
        t.activeParticipants -= 1;
        t.slashedPool += amount;
        emit Slashed(taskId, participant, amount);
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
        _checkAggregation(t, _acceptedUpdates[taskId][round], globalCommitment, aggregationProof, aggregationValues);
        t.currentRound = uint32(round + 1);
        (bytes4 modelPrefix, bytes32 modelDigest) = _splitCid(modelCid);
        _splitCid(manifestCid);
        _rounds[taskId][round + 1] = Round(globalCommitment, modelDigest, uint64(block.timestamp), 0, 0, modelPrefix);
        emit GlobalModelPublished(taskId, round + 1, globalCommitment, modelCid, manifestCid);
    }

    /// @dev Slot k < n holds the k-th accepted update with the task's samples per update;
    /// every slot past n has weight 0, so whatever it holds adds nothing to the average.
    function _checkAggregation(
        Task storage t,
        uint256[] storage accepted,
        uint256 globalCommitment,
        bytes calldata proof,
        uint256[] calldata values
    ) private view {
        uint256 slots = t.aggregationSlots;
        if (values.length != 2 * slots + 4) revert AggregationRejected("wrong number of public values");
        uint256 n = accepted.length;
        for (uint256 k = 0; k < slots; ++k) {
            if (k < n) {
                if (values[k] != accepted[k]) revert AggregationRejected("inputs are not the round's accepted updates");
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

    /// @notice The round's accepted update commitments, in the order the aggregation proof must take them.
    function acceptedUpdates(uint256 taskId, uint256 round) external view returns (uint256[] memory) {
        return _acceptedUpdates[taskId][round];
    }

    // ---------------------------------------------------------------- money

    /// @notice Close the task after its last round or its deadline. Anyone may call it.
    function settle(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (t.settled) revert NotAllowed("already settled");
        if (t.currentRound < t.rounds && block.timestamp <= t.deadline) revert NotAllowed("task still running");
        t.settled = true;
        emit TaskSettled(taskId, rewardTotal(taskId), t.verifiedSamples);
    }

    /// @notice The pool shared by verified contributors: rewards, plus slashed stakes
    /// when the task's slash rule sends them to the pool.
    function rewardTotal(uint256 taskId) public view returns (uint256) {
        Task storage t = _tasks[taskId];
        return t.rewardPool + (t.slashRule == SlashRule.ToRewardPool ? t.slashedPool : 0);
    }

    /// @notice What `account` can withdraw once the task is settled: (reward, stake).
    function payoutOf(uint256 taskId, address account) public view returns (uint256 reward, uint256 stake) {
        Task storage t = _tasks[taskId];
        Participant storage p = _participants[taskId][account];
        if (!p.joined || p.withdrawn) return (0, 0);
        stake = p.stake; // zero once slashed
        // Rounding dust (at most one wei per contributor) stays in the contract.
        if (p.verifiedSamples == 0) return (0, stake);
        if (t.rewardRule == RewardRule.EqualShares) {
            reward = rewardTotal(taskId) / t.contributors;
        } else {
            reward = (rewardTotal(taskId) * p.verifiedSamples) / t.verifiedSamples;
        }
    }

    /// @notice What the organisation can reclaim once the task is settled: the pool if
    /// nobody contributed, plus slashed stakes when the slash rule sends them to it.
    function reclaimable(uint256 taskId) public view returns (uint256 amount) {
        Task storage t = _tasks[taskId];
        if (t.reclaimed) return 0;
        if (t.slashRule == SlashRule.ToOrganisation) amount += t.slashedPool;
        if (t.verifiedSamples == 0) amount += rewardTotal(taskId);
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

    // ---------------------------------------------------------------- transfers

    /// @dev Pull ETH (already sent as msg.value) or ERC-20 (by allowance). Returns what
    /// arrived: the balance difference, so a fee-on-transfer token cannot overstate it.
    function _pull(address token, address from, uint256 amount) private returns (uint256) {
        if (token == address(0)) return msg.value;
        if (msg.value != 0) revert NotAllowed("this task is paid in tokens, not ETH");
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(from, address(this), amount);
        return IERC20(token).balanceOf(address(this)) - before;
    }

    function _push(address token, address to, uint256 amount) private {
        if (amount == 0) return;
        if (token == address(0)) Address.sendValue(payable(to), amount);
        else IERC20(token).safeTransfer(to, amount);
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

    /// @dev An artifact's CID as IPFS gives it (`ipfs add --cid-version 1 --raw-leaves`): version 1,
    /// codec raw (a file of one chunk) or dag-pb (the root of a chunked file), sha2-256. The
    /// codec is kept, not only the digest: the same digest read with the other codec is another
    /// artifact, so a digest alone would not name a file over one chunk.
    function _splitCid(bytes calldata cid) private pure returns (bytes4 prefix, bytes32 digest) {
        if (cid.length != 36) revert InvalidCid("not a 36-byte sha2-256 CIDv1");
        prefix = bytes4(cid[:4]);
        if (prefix != CID_RAW && prefix != CID_DAG_PB) revert InvalidCid("not a raw or dag-pb sha2-256 CIDv1");
        digest = bytes32(cid[4:]);
    }

    function getParticipant(uint256 taskId, address account) external view returns (Participant memory) {
        return _participants[taskId][account];
    }

    function getSubmission(uint256 taskId, uint256 round, address account) external view returns (Submission memory) {
        return _submissions[taskId][round][account];
    }

    function _task(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.organisation == address(0)) revert UnknownTask(taskId);
    }
}
