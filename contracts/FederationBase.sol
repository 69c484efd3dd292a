// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @notice ezkl's Poseidon (width 2, rate 1) on chain: see PoseidonT2.sol.
interface IPoseidon {
    function hash(uint256[] calldata m) external pure returns (uint256);
    function absorb(uint256[2] calldata state, uint256[] calldata m) external pure returns (uint256[2] memory);
}

/// @title State, events and shared rules of the zkfl Federation.
/// @notice The Federation is two contracts over one storage: `Federation` (joining, submissions,
/// publication, views) and `FederationExtension` (task creation and funding, leaving, challenges,
/// settlement and payouts), which the Federation runs by DELEGATECALL. They are split only because
/// one contract would exceed EIP-170's 24,576 bytes; both inherit this layout, so their storage is
/// the same and the extension cannot hold state of its own. See Federation.sol for the protocol.
abstract contract FederationBase is EIP712, ReentrancyGuard, AccessControl {
    using SafeERC20 for IERC20;

    /// @notice Step public values: their number and positions, the same for every backend.
    uint256 public constant STEP_PUBLIC_VALUES = 6;
    uint256 internal constant GLOBAL_AT = 0;
    uint256 internal constant FEATURES_AT = 1;
    uint256 internal constant LABELS_AT = 2;
    uint256 internal constant BINDING_AT = 3;
    uint256 internal constant UPDATE_AT = 4;
    uint256 internal constant CHECK_AT = 5;
    /// @notice H([0]): the input-check output of a step whose inputs are within the task's bounds.
    uint256 public constant INPUTS_VALID =
        8065231320233546845889504658050882987663732304574489295982393739117377810121;
    /// @notice The binding b is 16 chunks of 16 bits of this tagged hash of the context.
    bytes32 public constant BINDING_TAG = keccak256("zkfl binding v2");
    uint256 internal constant BINDING_CHUNKS = 16;
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
    uint256 internal constant FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

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
        // Its latest decision, in the slot above (earlier rounds' are in the events): a round's
        // decision costs no storage slot of its own.
        uint32 decidedRound; // 1 + the round of its latest decision; 0 before any
        Status status;
        Reason reason;
        // The latest decision's seal, keccak256(abi.encode(updateCommitment, keccak256(update))): a
        // challenge names the commitment and the published values, and the seal says they are the
        // ones submitted. `join` fills the slot, so that each decision rewrites it (about 5k gas)
        // instead of writing a fresh slot (about 22k) in every submission.
        bytes32 seal;
    }

    /// @dev A challenge in progress: the Poseidon sponge over the first `absorbed` values.
    struct Challenge {
        uint256 rate;
        uint256 capacity;
        uint32 absorbed;
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

    bytes4 internal constant CID_RAW = 0x01551220; // CIDv1, raw, sha2-256, 32 bytes
    bytes4 internal constant CID_DAG_PB = 0x01701220; // CIDv1, dag-pb, sha2-256, 32 bytes


    uint256 public taskCount;
    mapping(uint256 => Task) internal _tasks;
    mapping(uint256 => mapping(uint256 => Round)) internal _rounds;
    mapping(uint256 => mapping(address => Participant)) internal _participants;
    // task => round => the round's accepted update commitments, in acceptance order (the aggregation's
    // slots), as a hash chain: d_0 = 0, d_{k+1} = keccak256(d_k, c_k) (see `_link`). One slot per round,
    // not one per update; the list itself is in the UpdateAccepted events, and whoever names it is checked.
    mapping(uint256 => mapping(uint256 => bytes32)) internal _acceptedDigest;
    mapping(uint256 => mapping(uint256 => mapping(address => Challenge))) internal _challenges;

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

    function organisationRole(uint256 taskId) public pure returns (bytes32) {
        return keccak256(abi.encode("zkfl.organisation", taskId));
    }

    function aggregatorRole(uint256 taskId) public pure returns (bytes32) {
        return keccak256(abi.encode("zkfl.aggregator", taskId));
    }

    function _task(uint256 taskId) internal view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.organisation == address(0)) revert UnknownTask(taskId);
    }

    /// @dev One link of the accepted-set hash chain: keccak256(abi.encode(digest, commitment)).
    function _link(bytes32 digest, uint256 commitment) internal pure returns (bytes32 next) {
        assembly ("memory-safe") {
            mstore(0x00, digest)
            mstore(0x20, commitment)
            next := keccak256(0x00, 0x40)
        }
    }

    /// @dev The hash chain of the first `n` commitments of `list`.
    function _chain(uint256[] calldata list, uint256 n) internal pure returns (bytes32 digest) {
        for (uint256 i = 0; i < n; ++i) digest = _link(digest, list[i]);
    }

    function _slash(Task storage t, uint256 taskId, address participant, Participant storage p) internal {
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

    /// @dev Pull ETH (already sent as msg.value) or ERC-20 (by allowance). Returns what
    /// arrived: the balance difference, so a fee-on-transfer token cannot overstate it.
    function _pull(address token, address from, uint256 amount) internal returns (uint256) {
        if (token == address(0)) return msg.value;
        if (msg.value != 0) revert NotAllowed("this task is paid in tokens, not ETH");
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(from, address(this), amount);
        return IERC20(token).balanceOf(address(this)) - before;
    }

    function _push(address token, address to, uint256 amount) internal {
        if (amount == 0) return;
        if (token == address(0)) Address.sendValue(payable(to), amount);
        else IERC20(token).safeTransfer(to, amount);
    }

    /// @dev An artifact's CID as IPFS gives it (`ipfs add --cid-version 1 --raw-leaves`): version 1,
    /// codec raw (a file of one chunk) or dag-pb (the root of a chunked file), sha2-256. The
    /// codec is kept, not only the digest: the same digest read with the other codec is another
    /// artifact, so a digest alone would not name a file over one chunk.
    function _splitCid(bytes calldata cid) internal pure returns (bytes4 prefix, bytes32 digest) {
        if (cid.length != 36) revert InvalidCid("not a 36-byte sha2-256 CIDv1");
        prefix = bytes4(cid[:4]);
        if (prefix != CID_RAW && prefix != CID_DAG_PB) revert InvalidCid("not a raw or dag-pb sha2-256 CIDv1");
        digest = bytes32(cid[4:]);
    }
}
