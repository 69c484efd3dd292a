"""Typed Python bindings for the Federation contract and the step verifiers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD

from zkfl.contracts.chain import chain_key, decode_revert, send, send_data
from zkfl.contracts.solc import (
    CompiledContract,
    federation_contract,
    federation_extension_contract,
    poseidon_contract,
)
from zkfl.errors import ChainError, ConfigError
from zkfl.paths import zkfl_home
from zkfl.store import cid_bytes, cid_from_bytes

EIP170_LIMIT = 24_576


class Status(IntEnum):
    NONE = 0
    ACCEPTED = 1
    REJECTED = 2


class Reason(IntEnum):
    NONE = 0
    STALE_GLOBAL_MODEL = 1
    UPDATE_MISMATCH = 2
    INVALID_PROOF = 3
    MALFORMED_PUBLIC_VALUES = 4
    BINDING_MISMATCH = 5
    DATA_COMMITMENT_CHANGED = 6
    INPUTS_OUT_OF_BOUNDS = 7
    UPDATE_UNAVAILABLE = 8

    @property
    def text(self) -> str:
        return {
            Reason.NONE: "",
            Reason.STALE_GLOBAL_MODEL: "proof does not start from this round's global model",
            Reason.UPDATE_MISMATCH: "submitted update is not the proof's output",
            Reason.INVALID_PROOF: "proof does not verify",
            Reason.MALFORMED_PUBLIC_VALUES: "a step proof has exactly 6 public values",
            Reason.BINDING_MISMATCH: "proof is bound to another wallet, task, contract or chain",
            Reason.DATA_COMMITMENT_CHANGED: "data commitment differs from the participant's earlier rounds",
            Reason.INPUTS_OUT_OF_BOUNDS: "proof's inputs are outside the task's bounds",
            Reason.UPDATE_UNAVAILABLE: "published update is not the proof's output",
        }[self]


class RewardRule(IntEnum):
    PRO_RATA_SAMPLES = 0
    EQUAL_SHARES = 1


class SlashRule(IntEnum):
    TO_REWARD_POOL = 0
    TO_ORGANISATION = 1


ETH = "0x0000000000000000000000000000000000000000"
#: Seconds a round stays open before the aggregator may publish on fewer than all participants.
DEFAULT_COLLECTION_WINDOW = 300
#: Gas each step verification gets: ezkl's verifiers take 0.25M (Groth16) to 2.7M (the MLP through the reusable
#: verifier), so every model's proof fits with room to spare; the relayer must leave this much for the call.
DEFAULT_VERIFY_GAS = 4_000_000
#: Values hashed per challengeUpdate call: about 8.4k gas each, so a call stays near 13M gas, under EIP-7825's cap.
CHALLENGE_VALUES_PER_CALL = 1500

ERC20_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "account", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
]


@dataclass(frozen=True)
class TaskParams:
    aggregator: str
    verifier: str
    aggregation_verifier: str  # verifies FedAvg proofs over `aggregation_slots` updates
    aggregation_slots: int
    deadline: int
    rounds: int
    samples_per_update: int
    min_stake: int
    global_commitment: int
    model_cid: str  # G_0's artifact, as IPFS names it
    package_cid: str  # the client package
    collection_window: int = DEFAULT_COLLECTION_WINDOW
    update_values: int = 0  # the model's parameter count: every submission publishes exactly these
    verify_gas: int = DEFAULT_VERIFY_GAS  # the gas each step verification gets, exactly
    pin_data: bool = False
    token: str = ETH  # ETH, or an ERC-20's address (stakes are in the same currency)
    reward_rule: RewardRule = RewardRule.PRO_RATA_SAMPLES
    slash_rule: SlashRule = SlashRule.TO_REWARD_POOL

    def as_tuple(self, reward: int) -> tuple[Any, ...]:
        return (self.aggregator, self.verifier, self.aggregation_verifier, self.aggregation_slots, self.token,
                int(self.reward_rule), int(self.slash_rule),
                0 if self.token == ETH else reward, self.deadline, self.rounds, self.samples_per_update,
                self.collection_window, self.update_values, self.verify_gas, self.pin_data, self.min_stake,
                self.global_commitment, cid_bytes(self.model_cid), cid_bytes(self.package_cid))


@dataclass(frozen=True)
class TaskState:
    task_id: int
    organisation: str
    aggregator: str
    verifier: str
    aggregation_verifier: str
    aggregation_slots: int
    token: str
    reward_rule: int
    slash_rule: int
    cancelled: bool
    submissions: int
    contributors: int
    deadline: int
    rounds: int
    current_round: int
    samples_per_update: int
    collection_window: int
    update_values: int
    verify_gas: int
    active_participants: int
    settled: bool
    reclaimed: bool
    pin_data: bool
    reward_pool: int
    slashed_pool: int
    min_stake: int
    verified_samples: int
    package_digest: bytes
    package_cid_prefix: bytes

    @property
    def package_cid(self) -> str:
        return cid_from_bytes(bytes(self.package_cid_prefix) + bytes(self.package_digest))

    @property
    def finished(self) -> bool:
        return self.current_round >= self.rounds


@dataclass(frozen=True)
class RoundState:
    global_commitment: int
    model_digest: bytes
    opened_at: int
    accepted: int
    rejected: int
    model_cid_prefix: bytes

    @property
    def model_cid(self) -> str | None:
        """G_r's artifact; None while the round has no model."""
        if bytes(self.model_cid_prefix) == b"\x00" * 4:
            return None
        return cid_from_bytes(bytes(self.model_cid_prefix) + bytes(self.model_digest))


@dataclass(frozen=True)
class SubmissionState:
    """A wallet's submission for a round, as the contract recorded its decision."""

    status: Status
    reason: Reason
    update_commitment: int  # what it was accepted with (its UpdateAccepted event); 0 if it never was
    # keccak256(abi.encode(commitment, keccak256(update))) as submitted; the chain keeps it for each
    # wallet's latest decision only: an earlier acceptance's is rebuilt from its events, and an earlier
    # rejection's reads empty
    seal: bytes

    def seals(self, commitment: int, update: list[int]) -> bool:
        """Whether this is the submission of ``update`` with ``commitment``."""
        return self.seal == submission_seal(commitment, update)


def submission_seal(commitment: int, update: list[int]) -> bytes:
    """What the contract keeps of a decided submission: which values, with which commitment."""
    return bytes(Web3.keccak(commitment.to_bytes(32, "big") + bytes(Web3.keccak(encode_update(update)))))


def replay_accepted(events: list[Any]) -> dict[int, list[int]]:
    """Each round's accepted set as the contract keeps it, replayed from a task's UpdateAccepted and
    UpdateRejected events in chain order: an acceptance appends its commitment, and a challenge
    (UpdateUnavailable) takes out the first entry equal to the challenged update's commitment,
    whoever's it is, as the contract's ``_removeAccepted`` does (two wallets may hold one commitment)."""
    order: dict[int, list[int]] = {}
    held: dict[tuple[int, str], int] = {}
    for event in sorted(events, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"]))):
        args = event["args"]
        round_, wallet = int(args["round"]), str(args["participant"]).lower()
        if event["event"] == "UpdateAccepted":
            held[(round_, wallet)] = int(args["updateCommitment"])
            order.setdefault(round_, []).append(int(args["updateCommitment"]))
        elif Reason(int(args["reason"])) == Reason.UPDATE_UNAVAILABLE and (round_, wallet) in held:
            order[round_].remove(held.pop((round_, wallet)))
    return order


def accepted_digest(commitments: list[int]) -> bytes:
    """The contract's hash chain over a round's accepted commitments (``acceptedDigest``)."""
    digest = bytes(32)
    for commitment in commitments:
        digest = bytes(Web3.keccak(digest + commitment.to_bytes(32, "big")))
    return digest


@dataclass(frozen=True)
class ParticipantState:
    stake: int
    binding: int
    data_commitment: bytes  # of its first accepted update where the task pins data, else zero
    verified_samples: int
    accepted_updates: int
    joined: bool
    submitted: bool
    slashed: bool
    withdrawn: bool
    decided_round: int  # 1 + the round of its latest decision; 0 before any
    status: Status  # that decision
    reason: Reason
    seal: bytes  # that decision's seal (``submission_seal``)

    def __post_init__(self) -> None:  # the ABI decodes enums and bytes32 as int and bytes
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "reason", Reason(self.reason))
        object.__setattr__(self, "seal", bytes(self.seal))


@dataclass(frozen=True)
class SubmitResult:
    accepted: bool
    reason: Reason
    gas_used: int
    tx_hash: str


@dataclass(frozen=True)
class SignedUpdate:
    """One participant's signed submission, as a relayer sends it: `submitUpdate`'s arguments
    after the task and round, and one entry of `submitUpdates`' batch."""

    participant: str
    update_commitment: int
    update: list[int]
    proof: bytes
    public_values: list[int]
    signature: bytes

    def as_abi(self) -> tuple[ChecksumAddress, int, bytes, bytes, list[int], bytes]:
        return (Web3.to_checksum_address(self.participant), self.update_commitment, encode_update(self.update),
                self.proof, self.public_values, self.signature)


@dataclass(frozen=True)
class BatchResult:
    """What one `submitUpdates` transaction decided, by participant (lower-case address)."""

    results: dict[str, SubmitResult]
    together: bool  # the proofs verified as one batch (else each was verified on its own)
    gas_used: int
    tx_hash: str

    @property
    def gas_per_update(self) -> int:
        return self.gas_used // max(len(self.results), 1)


@dataclass(frozen=True)
class PublishResult:
    gas_used: int
    tx_hash: str


@dataclass
class Deployment:
    """What zkfl deployed on one chain: the Federation and a verifier per circuit."""

    federation: str | None = None
    verifiers: dict[str, str] = field(default_factory=dict)
    reusable: str | None = None  # ezkl's reusable verifier, shared by adapters

    @staticmethod
    def path_for(w3: Web3) -> Path:
        folder = zkfl_home() / "deployments"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{chain_key(w3)}.json"

    @classmethod
    def load(cls, w3: Web3) -> Deployment:
        path = cls.path_for(w3)
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(federation=data.get("federation"), verifiers=dict(data.get("verifiers", {})),
                   reusable=data.get("reusable"))

    def save(self, w3: Web3) -> None:
        self.path_for(w3).write_text(json.dumps({"federation": self.federation, "verifiers": self.verifiers,
                                                 "reusable": self.reusable}))


def deploy(w3: Web3, account: LocalAccount, compiled: CompiledContract, *args: Any) -> tuple[str, int]:
    if compiled.deployed_size > EIP170_LIMIT:
        raise ConfigError(f"{compiled.name} is {compiled.deployed_size} bytes, over the {EIP170_LIMIT}-byte limit")
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    receipt = send(w3, account, factory.constructor(*args))
    address = receipt["contractAddress"]
    if address is None or len(w3.eth.get_code(address)) == 0:
        raise ChainError(f"{compiled.name} deployment left no code")
    return str(address), int(receipt["gasUsed"])


# The deterministic-deployment proxy (Arachnid's), at the same address on anvil and on most
# EVM chains: a contract deployed through it has an address fixed by its code alone, so
# every party finds zkfl's Federation from the chain, without a file from whoever deployed it.
CREATE2_DEPLOYER = "0x4e59b44847b379578588920ca78fbf26c0b4956c"
CANONICAL_SALT = bytes(Web3.keccak(text="zkfl canonical deployment v1"))


def create2_address(initcode: bytes, salt: bytes = CANONICAL_SALT) -> ChecksumAddress:
    digest = Web3.keccak(b"\xff" + bytes.fromhex(CREATE2_DEPLOYER[2:]) + salt + Web3.keccak(initcode))
    return Web3.to_checksum_address(digest[12:])


def _initcode(compiled: CompiledContract, *args: Any) -> bytes:
    factory = Web3().eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    return bytes.fromhex(str(factory.constructor(*args).data_in_transaction).removeprefix("0x"))


def has_create2_deployer(w3: Web3) -> bool:
    return len(w3.eth.get_code(Web3.to_checksum_address(CREATE2_DEPLOYER))) > 0


def deploy_canonical(w3: Web3, account: LocalAccount, compiled: CompiledContract, *args: Any) -> tuple[str, int]:
    """Deploy through the CREATE2 deployer (reusing the contract if it is already there)."""
    if compiled.deployed_size > EIP170_LIMIT:
        raise ConfigError(f"{compiled.name} is {compiled.deployed_size} bytes, over the {EIP170_LIMIT}-byte limit")
    initcode = _initcode(compiled, *args)
    address = create2_address(initcode)
    if len(w3.eth.get_code(address)) > 0:
        return address, 0
    receipt = send_data(w3, account, CREATE2_DEPLOYER, CANONICAL_SALT + initcode)
    if len(w3.eth.get_code(address)) == 0:
        raise ChainError(f"{compiled.name} deployment through {CREATE2_DEPLOYER} left no code at {address}")
    return address, int(receipt["gasUsed"])


def _canonical_addresses() -> tuple[ChecksumAddress, ChecksumAddress, ChecksumAddress]:
    """Poseidon, the Federation's extension and the Federation, as ``Federation.deploy`` places them."""
    poseidon = create2_address(_initcode(poseidon_contract()))
    extension = create2_address(_initcode(federation_extension_contract(), poseidon))
    return poseidon, extension, create2_address(_initcode(federation_contract(), poseidon, extension))


def canonical_federation_address() -> ChecksumAddress:
    """Where ``Federation.deploy`` puts zkfl's Federation on any chain with the CREATE2 deployer."""
    return _canonical_addresses()[2]


class Federation:
    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        if len(w3.eth.get_code(self.address)) == 0:
            raise ChainError(f"no Federation contract at {self.address}")
        self.contract: Contract = w3.eth.contract(address=self.address, abi=federation_contract().abi)

    @classmethod
    def deploy(cls, w3: Web3, account: LocalAccount, canonical: bool = True) -> Federation:
        """PoseidonT2 (the binding's hash), the Federation's extension (its cold paths) and a
        Federation that uses both: at the canonical address (found by anyone from the chain)
        when the chain has the CREATE2 deployer and ``canonical`` holds, else wherever a plain
        deployment puts them."""
        place = deploy_canonical if canonical and has_create2_deployer(w3) else deploy
        poseidon, _ = place(w3, account, poseidon_contract())
        extension, _ = place(w3, account, federation_extension_contract(), poseidon)
        address, _ = place(w3, account, federation_contract(), poseidon, extension)
        return cls(w3, address)

    # -------------------------------------------------------------- writes

    def _approve(self, account: LocalAccount, token: str, amount: int) -> None:
        erc20 = self.w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)
        send(self.w3, account, erc20.functions.approve(self.address, amount))

    def _value(self, account: LocalAccount, token: str, amount: int) -> int:
        """ETH goes as msg.value; an ERC-20 amount is approved for the contract to pull."""
        if token == ETH:
            return amount
        self._approve(account, token, amount)
        return 0

    def create_task(self, account: LocalAccount, params: TaskParams, reward: int) -> int:
        value = self._value(account, params.token, reward)
        receipt = send(self.w3, account, self.contract.functions.createTask(params.as_tuple(reward)), value=value)
        events = self.contract.events.TaskCreated().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["taskId"])

    def join(self, account: LocalAccount, task_id: int, stake: int) -> int:
        """Stake and join; returns the binding H(b) the contract derived for this wallet."""
        value = self._value(account, self.task(task_id).token, stake)
        send(self.w3, account, self.contract.functions.join(task_id, stake), value=value)
        return self.participant(task_id, account.address).binding

    def binding_of(self, task_id: int, wallet: str) -> int:
        """H(b) the contract derives for a wallet in a task (what its proofs must carry)."""
        return int(self.contract.functions.bindingOf(task_id, Web3.to_checksum_address(wallet)).call())

    def leave(self, account: LocalAccount, task_id: int) -> None:
        send(self.w3, account, self.contract.functions.leave(task_id))

    def top_up(self, account: LocalAccount, task_id: int, amount: int) -> None:
        value = self._value(account, self.task(task_id).token, amount)
        send(self.w3, account, self.contract.functions.topUp(task_id, amount), value=value)

    def cancel(self, account: LocalAccount, task_id: int) -> None:
        send(self.w3, account, self.contract.functions.cancel(task_id))

    def reclaim(self, account: LocalAccount, task_id: int) -> int:
        receipt = send(self.w3, account, self.contract.functions.reclaim(task_id))
        return int(self.contract.events.Reclaimed().process_receipt(receipt, errors=DISCARD)[0]["args"]["amount"])

    def sign_submission(self, account: LocalAccount, task_id: int, round_: int, update_commitment: int,
                        update: list[int], public_values: list[int], proof: bytes) -> bytes:
        return sign_submission(account, self.w3.eth.chain_id, self.address, task_id, round_, update_commitment,
                               update, public_values, proof)

    def submit_call(self, task_id: int, round_: int, participant: str, update_commitment: int,
                    update: list[int], proof: bytes, public_values: list[int], signature: bytes) -> Any:
        return self.contract.functions.submitUpdate(
            task_id, round_, Web3.to_checksum_address(participant), update_commitment, encode_update(update), proof,
            public_values, signature)

    def simulate_submit(self, task_id: int, round_: int, participant: str, update_commitment: int,
                        update: list[int], proof: bytes, public_values: list[int], signature: bytes) -> bool:
        """What the contract would decide now (eth_call): True if accepted. Raises ChainError on a revert."""
        call = self.submit_call(task_id, round_, participant, update_commitment, update, proof, public_values,
                                signature)
        try:
            return bool(call.call({"from": Web3.to_checksum_address(participant), "gas": 10_000_000}))
        except (ContractLogicError, ContractCustomError) as exc:
            raise ChainError(f"the contract would refuse this submission: {decode_revert(call, exc)}") from None

    def submit_update(self, relayer: LocalAccount, task_id: int, round_: int, participant: str,
                      update_commitment: int, update: list[int], proof: bytes, public_values: list[int],
                      signature: bytes, gas: int | None = None) -> SubmitResult:
        call = self.submit_call(task_id, round_, participant, update_commitment, update, proof, public_values,
                                signature)
        receipt = send(self.w3, relayer, call, gas=gas)
        accepted = self.contract.events.UpdateAccepted().process_receipt(receipt, errors=DISCARD)
        rejected = self.contract.events.UpdateRejected().process_receipt(receipt, errors=DISCARD)
        reason = Reason(int(rejected[0]["args"]["reason"])) if rejected else Reason.NONE
        return SubmitResult(accepted=bool(accepted), reason=reason, gas_used=int(receipt["gasUsed"]),
                            tx_hash="0x" + receipt["transactionHash"].hex().removeprefix("0x"))

    def submit_updates(self, relayer: LocalAccount, task_id: int, round_: int, updates: list[SignedUpdate],
                       gas: int | None = None) -> BatchResult:
        """Relay several participants' updates in one transaction (`submitUpdates`): their proofs
        are verified together where the task's verifier can batch them. The contract takes the
        batch in increasing address order; this sorts it."""
        batch = sorted(updates, key=lambda u: int(u.participant, 16))
        call = self.contract.functions.submitUpdates(task_id, round_, [u.as_abi() for u in batch])
        receipt = send(self.w3, relayer, call, gas=gas)  # estimates the gas, and raises ChainError on a revert
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        accepted = {str(e["args"]["participant"]).lower() for e in
                    self.contract.events.UpdateAccepted().process_receipt(receipt, errors=DISCARD)}
        reasons = {str(e["args"]["participant"]).lower(): Reason(int(e["args"]["reason"])) for e in
                   self.contract.events.UpdateRejected().process_receipt(receipt, errors=DISCARD)}
        gas_used = int(receipt["gasUsed"])
        results = {u.participant.lower(): SubmitResult(u.participant.lower() in accepted,
                                                       reasons.get(u.participant.lower(), Reason.NONE), gas_used,
                                                       tx_hash) for u in batch}
        together = bool(self.contract.events.BatchVerified().process_receipt(receipt, errors=DISCARD))
        return BatchResult(results, together, gas_used, tx_hash)

    def publish_global_model(self, account: LocalAccount, task_id: int, round_: int, commitment: int,
                             model_cid: str, manifest_cid: str, aggregation_proof: bytes,
                             aggregation_values: list[int]) -> PublishResult:
        """Publish G_{r+1} with its FedAvg proof; the contract reverts (ChainError) on any mismatch."""
        receipt = send(self.w3, account, self.contract.functions.publishGlobalModel(
            task_id, round_, commitment, cid_bytes(model_cid), cid_bytes(manifest_cid), aggregation_proof,
            aggregation_values))
        return PublishResult(int(receipt["gasUsed"]), "0x" + bytes(receipt["transactionHash"]).hex())

    def challenge_update(self, account: LocalAccount, task_id: int, round_: int, participant: str,
                         update: list[int], per_call: int = CHALLENGE_VALUES_PER_CALL) -> str:
        """Show on chain that an accepted update's published values are not its proof's output,
        hashing ``per_call`` values a transaction (a challenge in progress is continued). Returns
        the last transaction's hash."""
        data, wallet = encode_update(update), Web3.to_checksum_address(participant)
        commitment = self.submission(task_id, round_, wallet).update_commitment
        tx = ""
        for _ in range(-(-len(update) // per_call)):
            tx = self._challenge_step(account, (task_id, round_, wallet, data, commitment, per_call))
            if self.submission_status(task_id, round_, wallet)[0] != Status.ACCEPTED:
                break
        return tx

    def _challenge_step(self, account: LocalAccount, args: tuple[Any, ...], tries: int = 3) -> str:
        """Send one challengeUpdate transaction. The call that completes a challenge names the round's
        accepted set as it stands, so another acceptance landing first makes it stale: refused at the
        estimate, or reverted (changing nothing) if mined after it. Either way it is built again on a
        fresh read; any other refusal is raised at once with its reason."""
        for attempt in range(tries):
            call = self.contract.functions.challengeUpdate(*args, self.accepted_updates(args[0], args[1]))
            try:
                gas = int(call.estimate_gas({"from": account.address}) * 1.1) + 20_000
            except (ContractLogicError, ContractCustomError) as exc:
                why = decode_revert(call, exc)
                if "as it stands" not in why or attempt == tries - 1:
                    raise ChainError(f"challenge refused: {why}") from None
                continue
            try:
                return "0x" + bytes(send(self.w3, account, call, gas=gas)["transactionHash"]).hex()
            except ChainError:
                if attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")

    def published_updates(self, task_id: int, round_: int) -> dict[str, list[int]]:
        """The values of the round's accepted updates, from the chain's UpdateData events, by wallet."""
        logs = self.contract.events.UpdateData().get_logs(
            from_block=0, argument_filters={"taskId": task_id, "round": round_})
        return {str(e["args"]["participant"]).lower(): decode_update(bytes(e["args"]["update"])) for e in logs}

    def accepted_updates(self, task_id: int, round_: int) -> list[int]:
        """The round's accepted update commitments in acceptance order, the aggregation's slots: its
        UpdateAccepted events less the updates a challenge withdrew, checked against the chain's
        digest of the set (so a node that drops or invents a log is caught, not believed)."""
        block = self.w3.eth.block_number
        where = {"taskId": task_id, "round": round_}
        events = [*self.contract.events.UpdateAccepted().get_logs(from_block=0, to_block=block, argument_filters=where),
                  *self.contract.events.UpdateRejected().get_logs(from_block=0, to_block=block, argument_filters=where)]
        order = replay_accepted(events).get(round_, [])
        if accepted_digest(order) != self.accepted_set_digest(task_id, round_, block):
            raise ChainError(f"task {task_id} round {round_}: the node's UpdateAccepted logs do not add up to the "
                             "round's accepted set on chain (a node missing logs?)")
        return order

    def accepted_set_digest(self, task_id: int, round_: int, block: int | None = None) -> bytes:
        """The contract's hash chain of the round's accepted set (``accepted_digest`` of its list), at
        ``block`` (the latest by default)."""
        call = self.contract.functions.acceptedDigest(task_id, round_)
        return bytes(call.call() if block is None else call.call(block_identifier=block))

    def settle(self, account: LocalAccount, task_id: int) -> None:
        send(self.w3, account, self.contract.functions.settle(task_id))

    def withdraw(self, account: LocalAccount, task_id: int) -> int:
        receipt = send(self.w3, account, self.contract.functions.withdraw(task_id))
        events = self.contract.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["reward"]) + int(events[0]["args"]["stake"])

    # -------------------------------------------------------------- reads

    def task_count(self) -> int:
        return int(self.contract.functions.taskCount().call())

    def task(self, task_id: int) -> TaskState:
        if not 1 <= task_id <= self.task_count():
            raise ChainError(f"task {task_id} does not exist on the Federation at {self.address}")
        t = self.contract.functions.getTask(task_id).call()
        return TaskState(task_id, *t)

    def round(self, task_id: int, round_: int) -> RoundState:
        return RoundState(*self.contract.functions.getRound(task_id, round_).call())

    def participant(self, task_id: int, account: str) -> ParticipantState:
        state = self.contract.functions.getParticipant(task_id, Web3.to_checksum_address(account)).call()
        return ParticipantState(*state)

    def submission(self, task_id: int, round_: int, account: str) -> SubmissionState:
        """The decision with the commitment it was accepted with, which only the UpdateAccepted event
        holds, and its seal: the chain keeps the latest decision's, and an earlier accepted round's is
        rebuilt from its events (log queries over the chain: ``submission_status`` is the cheap read)."""
        wallet, block = Web3.to_checksum_address(account), self.w3.eth.block_number
        status, reason, seal = self._decision(task_id, round_, wallet, block)
        commitment = 0
        if status == Status.ACCEPTED or reason == Reason.UPDATE_UNAVAILABLE:
            where = {"taskId": task_id, "round": round_, "participant": wallet}
            logs = self.contract.events.UpdateAccepted().get_logs(from_block=0, to_block=block, argument_filters=where)
            commitment = int(logs[-1]["args"]["updateCommitment"]) if logs else 0
            if logs and not seal:
                data = self.contract.events.UpdateData().get_logs(from_block=0, to_block=block, argument_filters=where)
                seal = submission_seal(commitment, decode_update(bytes(data[-1]["args"]["update"]))) if data else b""
        return SubmissionState(status, reason, commitment, seal)

    def submission_status(self, task_id: int, round_: int, account: str) -> tuple[Status, Reason]:
        status, reason, _ = self._decision(task_id, round_, Web3.to_checksum_address(account))
        return status, reason

    def _decision(self, task_id: int, round_: int, wallet: str, block: int | None = None
                  ) -> tuple[Status, Reason, bytes]:
        """The chain keeps each wallet's latest decision, with its seal; an earlier round's is read
        from the events (and has no seal here)."""
        block = self.w3.eth.block_number if block is None else block
        me = ParticipantState(*self.contract.functions.getParticipant(task_id, wallet).call(block_identifier=block))
        if me.decided_round == round_ + 1:
            return me.status, me.reason, me.seal
        if me.decided_round <= round_:
            return Status.NONE, Reason.NONE, b""
        return self._earlier_decision(task_id, round_, wallet, me, block)

    def _earlier_decision(self, task_id: int, round_: int, wallet: str, me: ParticipantState, block: int
                          ) -> tuple[Status, Reason, bytes]:
        """A round before the wallet's latest decision. Any rejection (at submission, or by a
        challenge) slashes, and a slashed wallet never submits again: so every earlier decision
        was an acceptance that stood, and the round's answer is accepted or none. The wallet's
        UpdateAccepted logs must number its accepted updates (one more if a challenge took its
        latest out), or the node is missing some, and silence would read as none."""
        logs = self.contract.events.UpdateAccepted().get_logs(
            from_block=0, to_block=block, argument_filters={"taskId": task_id, "participant": wallet})
        challenged = me.status == Status.REJECTED and me.reason == Reason.UPDATE_UNAVAILABLE
        if len(logs) != me.accepted_updates + int(challenged):
            raise ChainError(f"task {task_id}: the node's UpdateAccepted logs for {wallet} ({len(logs)}) are not the "
                             f"{me.accepted_updates + int(challenged)} the chain counts (a node missing logs?)")
        if any(int(log["args"]["round"]) == round_ for log in logs):
            return Status.ACCEPTED, Reason.NONE, b""
        return Status.NONE, Reason.NONE, b""

    def payout_of(self, task_id: int, account: str) -> tuple[int, int]:
        reward, stake = self.contract.functions.payoutOf(task_id, Web3.to_checksum_address(account)).call()
        return int(reward), int(stake)

    def events(self, name: str, task_id: int, from_block: int = 0) -> list[Any]:
        event = getattr(self.contract.events, name)()
        return list(event.get_logs(from_block=from_block, argument_filters={"taskId": task_id}))


def encode_update(values: list[int]) -> bytes:
    """An update as the contract takes it: int64 values, big-endian two's complement."""
    try:
        return b"".join(int(v).to_bytes(8, "big", signed=True) for v in values)
    except OverflowError:
        raise ConfigError("an update value does not fit in 64 bits") from None


def decode_update(data: bytes) -> list[int]:
    return [int.from_bytes(data[i:i + 8], "big", signed=True) for i in range(0, len(data), 8)]


SUBMISSION_FIELDS = (("taskId", "uint256"), ("round", "uint256"), ("updateCommitment", "uint256"),
                     ("updateHash", "bytes32"), ("publicValuesHash", "bytes32"), ("proofHash", "bytes32"))
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def submission_typed_data(chain_id: int, federation: str, task_id: int, round_: int, update_commitment: int,
                          update: list[int], public_values: list[int], proof: bytes) -> dict[str, Any]:
    """The EIP-712 message a participant signs for one submission, as the Federation checks it.
    Pure: a signer needs only the chain id and the Federation's address, no connection."""
    message = {
        "taskId": task_id,
        "round": round_,
        "updateCommitment": update_commitment,
        "updateHash": Web3.keccak(encode_update(update)),
        "publicValuesHash": public_values_hash(public_values),
        "proofHash": Web3.keccak(proof),
    }
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Submission": [{"name": name, "type": kind} for name, kind in SUBMISSION_FIELDS],
        },
        "primaryType": "Submission",
        "domain": {"name": "zkfl Federation", "version": "2", "chainId": chain_id,
                   "verifyingContract": Web3.to_checksum_address(federation)},
        "message": message,
    }


def sign_submission(account: LocalAccount, chain_id: int, federation: str, task_id: int, round_: int,
                    update_commitment: int, update: list[int], public_values: list[int], proof: bytes) -> bytes:
    """``account``'s EIP-712 signature of a submission to the Federation at ``federation``."""
    typed = submission_typed_data(chain_id, federation, task_id, round_, update_commitment, update,
                                  public_values, proof)
    return bytes(account.sign_message(encode_typed_data(full_message=typed)).signature)


def submission_signer(signature: bytes, chain_id: int, federation: str, task_id: int, round_: int,
                      update_commitment: int, update: list[int], public_values: list[int], proof: bytes) -> str:
    """The wallet that signed a submission (checksummed), recovered as the contract's ECDSA
    (OpenZeppelin) recovers it: 65 bytes, v 27 or 28, 0 < r < n and 0 < s <= n/2, else
    ConfigError (so an off-chain check accepts exactly the signatures the chain accepts)."""
    if len(signature) != 65:
        raise ConfigError(f"the submission's signature is {len(signature)} bytes, not 65")
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    if v not in (27, 28) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        raise ConfigError("the submission's signature is not canonical (v 27/28, 0 < r < n, 0 < s <= n/2)")
    typed = submission_typed_data(chain_id, federation, task_id, round_, update_commitment, update,
                                  public_values, proof)
    try:
        return str(Account.recover_message(encode_typed_data(full_message=typed), signature=signature))
    except Exception as exc:  # eth_keys' BadSignature is not a ValueError: a bad signature never crashes the caller
        raise ConfigError(f"the submission's signature is malformed: {type(exc).__name__}: {exc}") from None


def public_values_hash(public_values: list[int]) -> bytes:
    """keccak256(abi.encodePacked(uint256[])), as the contract computes it."""
    return bytes(Web3.keccak(b"".join(int(v).to_bytes(32, "big") for v in public_values)))


def resolve_federation(w3: Web3, address: str | None = None) -> Federation:
    """The Federation given by address, else zkfl's canonical one on this chain: found from
    the chain alone, so a party in a fresh home needs no file from anyone."""
    if address:
        return Federation(w3, address)
    canonical = canonical_federation_address()
    if len(w3.eth.get_code(canonical)) == 0:
        raise ConfigError(f"no zkfl Federation at its canonical address {canonical} on this chain: "
                          "create a task first, or pass --federation ADDR")
    _check_canonical_code(w3)
    return Federation(w3, canonical)


def _check_canonical_code(w3: Web3) -> None:
    """CREATE2 fixes the code at the canonical addresses on a real chain, but a dev chain lets
    anyone overwrite code (anvil_setCode): compare it with zkfl's compiled runtime code, all
    but the immutables the constructors set, and check those (its Poseidon and extension)."""
    poseidon, extension, federation = _canonical_addresses()
    for compiled, address in ((poseidon_contract(), poseidon), (federation_extension_contract(), extension),
                              (federation_contract(), federation)):
        if not _same_code(bytes(w3.eth.get_code(address)), compiled):
            raise ConfigError(f"the code at zkfl's canonical {compiled.name} address {address} is not zkfl's "
                              f"{compiled.name}: pass --federation ADDR if you trust another deployment")
    for compiled, address in ((federation_extension_contract(), extension), (federation_contract(), federation)):
        if w3.eth.contract(address=address, abi=compiled.abi).functions.poseidon().call() != poseidon:
            raise ConfigError(f"the {compiled.name} at {address} does not use zkfl's canonical PoseidonT2")
    contract = w3.eth.contract(address=federation, abi=federation_contract().abi)
    if contract.functions.extension().call() != extension:
        raise ConfigError(f"the Federation at {federation} does not run zkfl's canonical extension")


def _same_code(deployed: bytes, compiled: CompiledContract) -> bool:
    expected = bytearray(bytes.fromhex(compiled.runtime.removeprefix("0x")))
    if len(deployed) != len(expected):
        return False
    masked = bytearray(deployed)
    for start, length in compiled.immutables:
        masked[start:start + length] = expected[start:start + length]
    return masked == expected
