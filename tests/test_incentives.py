"""Money on anvil: ETH and ERC-20 tasks, reward and slash rules, leaving, cancelling,
slots, starvation, reentrancy. Every money test states its payouts exactly (in wei, from
the rules) and ends with conservation: paid + left = deposited, where what is left is
exactly the rules' rounding dust, so nothing is stuck in the contract."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from tests.conftest import (
    ProvenStep,
    advance_chain_time,
    aggregation_verifier_for,
    deploy_aggregation_verifier,
    publish_aggregate,
    submit_step,
    task_params,
)
from zkfl.contracts.chain import connect, send, start_anvil
from zkfl.contracts.federation import (
    DEFAULT_VERIFY_GAS,
    ETH,
    Federation,
    Reason,
    RewardRule,
    SlashRule,
    Status,
    deploy,
)
from zkfl.contracts.solc import (
    CONTRACTS_DIR,
    FEDERATION_SOURCES,
    compile_contract,
    compile_sources,
    poseidon_contract,
)
from zkfl.contracts.verifiers import adapter_contract, deploy_reusable_adapter, deploy_verifier
from zkfl.errors import ChainError
from zkfl.field.commit import commit
from zkfl.prover.ezkl.evm import verifier as ezkl_verifier
from zkfl.prover.records import StepProof

TEST_CONTRACTS = Path(__file__).parent / "contracts" / "TestContracts.sol"
STAKE = 10**17
REWARD = 10**18
#: OpenZeppelin's ReentrancyGuardReentrantCall(): by name where the caller's ABI has it, else by selector.
GUARD_SELECTOR = "0x" + Web3.keccak(text="ReentrancyGuardReentrantCall()")[:4].hex()
GUARD_ERROR = rf"^transaction reverted: (ReentrancyGuardReentrantCall|custom error {GUARD_SELECTOR})$"


# ------------------------------------------------------------------ helpers


def federation_variant(w3: Web3, account: LocalAccount, *edits: tuple[str, str]) -> Federation:
    """A control: the Federation's sources (contracts/Federation*.sol) with one defence edited
    out (each edit applies exactly once, in whichever source has it), deployed beside its
    Poseidon and extension. A test run against it shows that the test would catch the
    defence's absence."""
    sources = {name: (CONTRACTS_DIR / name).read_text() for name in FEDERATION_SOURCES}
    for old, new in edits:
        assert sum(text.count(old) for text in sources.values()) == 1, f"the edit no longer applies: {old!r}"
        sources = {name: text.replace(old, new) for name, text in sources.items()}
    compiled = compile_sources(sources, via_ir=True)
    poseidon, _ = deploy(w3, account, poseidon_contract())
    extension, _ = deploy(w3, account, compiled["FederationExtension"], poseidon)
    address, _ = deploy(w3, account, compiled["Federation"], poseidon, extension)
    return Federation(w3, address)


def stand_in_step(fed: Federation, task_id: int, wallet: str, global_model: np.ndarray,
                  update: list[int]) -> ProvenStep:
    """What a participant submits to a task whose verifier is a stand-in that accepts any
    proof (tests/contracts GasHungryVerifier): the six public values the contract checks
    itself, bound to exactly this (Federation, task, wallet) as the contract derives it,
    with ``update``'s commitment and a valid input check; the proof bytes are never read."""
    values = [commit(global_model), 1, 2, fed.binding_of(task_id, wallet), commit(np.array(update, dtype=np.int64)),
              int(fed.contract.functions.INPUTS_VALID().call())]
    proof = StepProof(bytes(32), values, list(update))
    empty = np.zeros(0, dtype=np.int64)
    return ProvenStep(global_model, empty, empty, empty, proof)


# ------------------------------------------------------------------ ledger


@dataclass
class Ledger:
    """Every unit that enters or leaves the Federation during a test."""

    fed: Federation
    token: str = ETH
    start: int = 0
    deposited: int = 0
    paid: int = 0
    payouts: dict[str, int] = field(default_factory=dict)

    def balance(self) -> int:
        if self.token == ETH:
            return int(self.fed.w3.eth.get_balance(self.fed.address))
        erc20 = self.fed.w3.eth.contract(address=self.token, abi=compile_contract(TEST_CONTRACTS, "TestToken").abi)
        return int(erc20.functions.balanceOf(self.fed.address).call())

    def __post_init__(self) -> None:
        self.start = self.balance()

    def pay(self, who: str, amount: int) -> None:
        self.paid += amount
        self.payouts[who] = self.payouts.get(who, 0) + amount

    def check(self, dust: int) -> None:
        """Conservation, and exactly ``dust`` wei (the rules' rounding) left in the contract."""
        left = self.balance() - self.start
        assert (self.paid + left, left) == (self.deposited, dust), (self.paid, left, self.deposited, dust)


def create(fed: Federation, accounts: list[LocalAccount], verifier: str, initial, ledger: Ledger,  # type: ignore[no-untyped-def]
           joiners: int = 3, **kw) -> int:
    params = task_params(accounts[1].address, verifier, initial, token=ledger.token,
                         aggregation_verifier=aggregation_verifier_for(fed), **kw)
    task_id = fed.create_task(accounts[0], params, REWARD)
    ledger.deposited += REWARD
    for participant in accounts[2 : 2 + joiners]:
        binding = fed.join(participant, task_id, STAKE)
        assert binding == fed.binding_of(task_id, participant.address) != 0
        ledger.deposited += STAKE
    return task_id


def withdraw_all(fed: Federation, accounts: list[LocalAccount], task_id: int, ledger: Ledger) -> None:
    for account in accounts[2:5]:
        if fed.participant(task_id, account.address).joined:
            ledger.pay(account.address, fed.withdraw(account, task_id))
    if fed.contract.functions.reclaimable(task_id).call() > 0:
        ledger.pay(accounts[0].address, fed.reclaim(accounts[0], task_id))


def calldata(fed: Federation, function: str, *args: object) -> bytes:
    return bytes(Web3.to_bytes(hexstr=fed.contract.encode_abi(function, list(args))))


def cancelled_refund(fed: Federation, task_id: int) -> int:
    [event] = fed.events("Cancelled", task_id)
    return int(event["args"]["refund"])


@pytest.fixture(scope="module")
def token(w3, accounts) -> str:  # type: ignore[no-untyped-def]
    address, _ = deploy(w3, accounts[0], compile_contract(TEST_CONTRACTS, "TestToken"))
    contract = w3.eth.contract(address=address, abi=compile_contract(TEST_CONTRACTS, "TestToken").abi)
    for account in accounts[:6]:
        send(w3, accounts[0], contract.functions.mint(account.address, 100 * REWARD))
    return address


# ------------------------------------------------------------------ the session chain


# The cheat either changes the update its own proof produced, or signs wallet 2's proof as its own.
@pytest.mark.parametrize(("currency", "slash_rule", "cheat"), [
    ("eth", SlashRule.TO_REWARD_POOL, "changes its update"),
    ("erc20", SlashRule.TO_ORGANISATION, "copies a proof"),
])
@pytest.mark.slow
def test_task_end_to_end_pays_the_honest_and_slashes_the_cheat(currency, slash_rule, cheat, federation, accounts,  # type: ignore[no-untyped-def]
                                                               verifier_address, initial_model, token, aggregation,
                                                               prover) -> None:
    ledger = Ledger(federation, ETH if currency == "eth" else token)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, rounds=1, slash_rule=slash_rule)
    honest = prover.step(federation, task_id, accounts[2], 1, initial_model)
    assert submit_step(federation, accounts[1], accounts[2], task_id, 0, honest).accepted
    if cheat == "changes its update":
        own = prover.step(federation, task_id, accounts[3], 2, initial_model)
        changed = list(own.proof.update)
        changed[0] += 1
        result = submit_step(federation, accounts[1], accounts[3], task_id, 0, own, update=changed)
        assert (result.accepted, result.reason) == (False, Reason.UPDATE_MISMATCH)
    else:
        result = submit_step(federation, accounts[1], accounts[3], task_id, 0, honest)
        assert (result.accepted, result.reason) == (False, Reason.BINDING_MISMATCH)
    assert federation.task(task_id).slashed_pool == STAKE
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    federation.settle(accounts[5], task_id)
    withdraw_all(federation, accounts, task_id, ledger)
    expected = {accounts[3].address: 0, accounts[4].address: STAKE}  # slashed; joined, never submitted
    if slash_rule == SlashRule.TO_REWARD_POOL:  # the one contributor: the pool, the slashed stake, its own stake
        expected[accounts[2].address] = REWARD + STAKE + STAKE
    else:  # the organisation reclaims exactly the slashed stake
        expected |= {accounts[2].address: REWARD + STAKE, accounts[0].address: STAKE}
    assert ledger.payouts == expected
    ledger.check(dust=0)  # one contributor takes the whole pool


# Wallet 2 is accepted in rounds 0 and 1 (32 verified samples), wallet 3 in round 1 (16).
# Pro rata: floor(10**18 * 32 / 48) and floor(10**18 * 16 / 48); 1 wei of rounding stays.
# Equal shares: 10**18 // 2 each; nothing stays.
@pytest.mark.parametrize(("rule", "rewards", "dust"), [
    (RewardRule.PRO_RATA_SAMPLES, (666_666_666_666_666_666, 333_333_333_333_333_333), 1),
    (RewardRule.EQUAL_SHARES, (500_000_000_000_000_000, 500_000_000_000_000_000), 0),
])
@pytest.mark.slow
def test_reward_rules(rule, rewards, dust, federation, accounts, verifier_address, initial_model,  # type: ignore[no-untyped-def]
                      aggregation, prover) -> None:
    assert sum(rewards) + dust == REWARD
    ledger = Ledger(federation)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, joiners=2, reward_rule=rule)
    a, b = accounts[2], accounts[3]
    step = prover.step(federation, task_id, a, 1, initial_model)
    assert submit_step(federation, accounts[1], a, task_id, 0, step).accepted  # wallet 3 sits round 0 out
    model = publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    assert commit(model) == federation.round(task_id, 1).global_commitment
    for wallet, seed in ((a, 1), (b, 2)):
        step = prover.step(federation, task_id, wallet, seed, model)
        assert submit_step(federation, accounts[1], wallet, task_id, 1, step).accepted
    publish_aggregate(federation, aggregation, accounts[1], task_id, 1)
    federation.settle(accounts[0], task_id)
    assert federation.contract.functions.reclaimable(task_id).call() == 0
    withdraw_all(federation, accounts, task_id, ledger)
    assert ledger.payouts == {a.address: rewards[0] + STAKE, b.address: rewards[1] + STAKE}
    ledger.check(dust)


@pytest.mark.slow
def test_leave_and_top_up(federation, accounts, verifier_address, initial_model, aggregation, prover) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(federation)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, rounds=1)
    federation.top_up(accounts[0], task_id, REWARD)
    ledger.deposited += REWARD
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        federation.top_up(accounts[3], task_id, REWARD)
    before = ledger.balance()
    federation.leave(accounts[4], task_id)  # before any submission: exactly its stake back
    assert before - ledger.balance() == STAKE
    ledger.pay(accounts[4].address, STAKE)
    assert not federation.participant(task_id, accounts[4].address).joined
    step = prover.step(federation, task_id, accounts[2], 1, initial_model)
    assert submit_step(federation, accounts[1], accounts[2], task_id, 0, step).accepted
    with pytest.raises(ChainError, match="cannot leave after submitting"):
        federation.leave(accounts[2], task_id)
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    federation.settle(accounts[0], task_id)
    withdraw_all(federation, accounts, task_id, ledger)
    assert ledger.payouts == {accounts[4].address: STAKE, accounts[2].address: 2 * REWARD + STAKE,
                              accounts[3].address: STAKE}
    ledger.check(dust=0)


def test_cancel_is_not_blocked_by_join_and_leave(federation, accounts, verifier_address, initial_model) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(federation)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, joiners=1)
    federation.leave(accounts[2], task_id)
    ledger.pay(accounts[2].address, STAKE)
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        federation.cancel(accounts[2], task_id)
    before = ledger.balance()
    federation.cancel(accounts[0], task_id)
    assert before - ledger.balance() == REWARD == cancelled_refund(federation, task_id)
    ledger.pay(accounts[0].address, REWARD)
    state = federation.task(task_id)
    assert (state.cancelled, state.settled, state.reclaimed) == (True, True, True)
    with pytest.raises(ChainError, match="nothing to reclaim"):
        federation.reclaim(accounts[0], task_id)
    with pytest.raises(ChainError, match="task is closed"):
        federation.join(accounts[3], task_id, STAKE)
    ledger.check(dust=0)


def test_cancel_with_joined_participants_returns_pool_and_stakes(federation, accounts, verifier_address,  # type: ignore[no-untyped-def]
                                                                 initial_model) -> None:
    ledger = Ledger(federation)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, joiners=1)
    odd_stake = STAKE + 12_345
    federation.join(accounts[3], task_id, odd_stake)
    ledger.deposited += odd_stake
    federation.cancel(accounts[0], task_id)
    assert cancelled_refund(federation, task_id) == REWARD
    ledger.pay(accounts[0].address, REWARD)
    with pytest.raises(ChainError, match="task is settled: withdraw instead"):
        federation.leave(accounts[2], task_id)
    withdraw_all(federation, accounts, task_id, ledger)
    assert ledger.payouts == {accounts[0].address: REWARD, accounts[2].address: STAKE, accounts[3].address: odd_stake}
    with pytest.raises(ChainError, match="already withdrawn"):
        federation.withdraw(accounts[3], task_id)
    ledger.check(dust=0)


# ------------------------------------------------------------------ starvation

#: A verifier burning HUNGRY_BURN starves under STARVED_GAS, while a recorded rejection
#: (bookkeeping and slash) fits in STARVED_GAS: control 1 below shows the second part.
HUNGRY_BURN = 8_000_000
STARVED_GAS = 7_000_000
ENOUGH_GAS = 12_000_000
#: The starving verifier's task gives it more gas than it burns, so only the relayer's gas limit can starve it.
HUNGRY_TASK_VERIFY_GAS = 9_000_000
NO_STARVATION_CHECK = (
    ("if (gasleft() < g + g / 63 + 40_000) revert VerifierOutOfGas();", ""),
    ("if (!ok && (before - gasleft() >= g - g / 64 || _isOutOfGas(ret))) revert VerifierOutOfGas();", ""),
    ("t.verifier.staticcall{gas: g}(", "t.verifier.staticcall("),
)


def mined_revert(fed: Federation, exc: ChainError) -> str:
    """The error a mined, reverted transaction ended with, by name in the Federation's ABI.
    (A transaction sent with a fixed gas limit is not estimated first, so its ChainError
    names only its hash; the trace has the revert data.)"""
    match = re.search(r"transaction (?:0x)?([0-9a-fA-F]{64}) reverted$", str(exc))
    assert match, exc
    trace = fed.w3.provider.make_request(  # type: ignore[arg-type]
        "debug_traceTransaction", ["0x" + match.group(1), {"tracer": "callTracer"}])
    output = str(trace["result"].get("output", "0x"))
    for item in fed.contract.abi:
        if item["type"] == "error" and not item["inputs"] and output == "0x" + Web3.keccak(
                text=f"{item['name']}()")[:4].hex():
            return str(item["name"])
    return output


@pytest.fixture(scope="module")
def naive_federation(federation, accounts) -> Federation:  # type: ignore[no-untyped-def]
    """Control: a Federation that takes a starved verifier call for a verdict."""
    return federation_variant(federation.w3, accounts[0], *NO_STARVATION_CHECK)


@pytest.mark.parametrize("route", ["direct", "adapter"])
def test_a_relayer_cannot_starve_the_verifier_to_slash_an_honest_client(route, federation, naive_federation,  # type: ignore[no-untyped-def]
                                                                        accounts, artifacts, verifier_address,
                                                                        initial_model) -> None:
    """A verifier far costlier than the Federation's bookkeeping (called directly, or as the
    reusable verifier behind an adapter): with too little gas it starves, and the submission
    must revert with exactly VerifierOutOfGas, recording nothing and slashing nobody.
    Control 1: at the same gas a verifier that does not starve gets a bad proof, and the
    rejection is recorded and slashed (so the gas would cover a rejection). Control 2: a
    Federation without the starvation check records the starved honest submission as a
    rejection and slashes it, so this test fails if starvation is taken for a verdict."""
    w3, relayer, honest = federation.w3, accounts[1], accounts[2]
    hungry = compile_contract(TEST_CONTRACTS, "GasHungryVerifier")

    def verifier(starving: bool) -> str:
        if route == "direct":
            return deploy(w3, accounts[0], hungry, HUNGRY_BURN)[0] if starving else verifier_address
        if starving:
            reusable = deploy(w3, accounts[0], hungry, HUNGRY_BURN)[0]
            return deploy(w3, accounts[0], adapter_contract(), reusable, [b"\x01" * 32])[0]
        return deploy_reusable_adapter(w3, accounts[0], ezkl_verifier(artifacts).reusable())[0]

    def task_on(fed: Federation, verifier: str, wallet: LocalAccount,
                verify_gas: int = HUNGRY_TASK_VERIFY_GAS) -> tuple[int, ProvenStep]:
        params = task_params(relayer.address, verifier, initial_model, verify_gas=verify_gas,
                             aggregation_verifier=aggregation_verifier_for(fed))
        task_id = fed.create_task(accounts[0], params, REWARD)
        fed.join(wallet, task_id, STAKE)
        # The starving verifier never reads the proof; the real one gets 32 zero bytes: a bad proof.
        return task_id, stand_in_step(fed, task_id, wallet.address, initial_model, [3, -1, 4, 1, -5] + [0] * 26)

    starving = verifier(starving=True)
    task_id, step = task_on(federation, starving, honest)
    with pytest.raises(ChainError) as starved:
        submit_step(federation, relayer, honest, task_id, 0, step, gas=STARVED_GAS)
    assert mined_revert(federation, starved.value) == "VerifierOutOfGas"
    assert federation.submission_status(task_id, 0, honest.address) == (Status.NONE, Reason.NONE)
    state = federation.participant(task_id, honest.address)
    assert (state.stake, state.submitted, state.slashed) == (STAKE, False, False)
    assert (federation.task(task_id).submissions, federation.task(task_id).slashed_pool) == (0, 0)

    control_id, bad = task_on(federation, verifier(starving=False), accounts[3], verify_gas=DEFAULT_VERIFY_GAS)
    rejected = submit_step(federation, relayer, accounts[3], control_id, 0, bad, gas=STARVED_GAS)
    assert (rejected.accepted, rejected.reason) == (False, Reason.INVALID_PROOF)
    assert federation.participant(control_id, accounts[3].address).slashed

    naive_id, naive_step = task_on(naive_federation, starving, honest)
    framed = submit_step(naive_federation, relayer, honest, naive_id, 0, naive_step, gas=STARVED_GAS)
    assert (framed.accepted, framed.reason) == (False, Reason.INVALID_PROOF)
    assert naive_federation.participant(naive_id, honest.address).slashed

    assert submit_step(federation, relayer, honest, task_id, 0, step, gas=ENOUGH_GAS).accepted


@pytest.mark.slow
def test_organisation_rotates_the_aggregator(federation, accounts, verifier_address, initial_model,  # type: ignore[no-untyped-def]
                                             aggregation, prover) -> None:
    ledger = Ledger(federation)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, joiners=1, rounds=1)
    step = prover.step(federation, task_id, accounts[2], 1, initial_model)
    assert submit_step(federation, accounts[1], accounts[2], task_id, 0, step).accepted
    role = federation.contract.functions.aggregatorRole(task_id).call()
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        send(federation.w3, accounts[1], federation.contract.functions.grantRole(role, accounts[6].address))
    send(federation.w3, accounts[0], federation.contract.functions.grantRole(role, accounts[6].address))
    send(federation.w3, accounts[0], federation.contract.functions.revokeRole(role, accounts[1].address))
    with pytest.raises(ChainError, match="only the task's aggregator"):
        publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    publish_aggregate(federation, aggregation, accounts[6], task_id, 0)
    assert federation.task(task_id).current_round == 1
    federation.settle(accounts[0], task_id)
    withdraw_all(federation, accounts, task_id, ledger)
    assert ledger.payouts == {accounts[2].address: REWARD + STAKE}
    ledger.check(dust=0)


# ------------------------------------------------------------------ a chain whose clock the tests move


@pytest.fixture(scope="module")
def time_chain(accounts, artifacts, aggregation) -> Iterator[tuple[Federation, str]]:  # type: ignore[no-untyped-def]
    """A chain of its own (its own chain id, so no binding equals one on the session
    chain): these tests move its clock."""
    with start_anvil(chain_id=31_338) as anvil:
        w3 = connect(anvil.rpc_url)
        deploy_aggregation_verifier(w3, accounts[0], aggregation)
        yield Federation.deploy(w3, accounts[0]), deploy_verifier(w3, accounts[0], ezkl_verifier(artifacts))[0]


def chain_now(fed: Federation) -> int:
    return int(fed.w3.eth.get_block("latest")["timestamp"])


def past_deadline(fed: Federation, task_id: int) -> None:
    advance_chain_time(fed.w3, fed.task(task_id).deadline - chain_now(fed) + 1)


def test_task_with_no_participants_refunds_the_organisation(time_chain, accounts, initial_model) -> None:  # type: ignore[no-untyped-def]
    fed, verifier = time_chain
    ledger = Ledger(fed)
    task_id = create(fed, accounts, verifier, initial_model, ledger, joiners=0, deadline_in=60, now=chain_now(fed))
    with pytest.raises(ChainError, match="still running"):
        fed.settle(accounts[0], task_id)
    past_deadline(fed, task_id)
    fed.settle(accounts[0], task_id)
    assert fed.reclaim(accounts[0], task_id) == REWARD
    ledger.pay(accounts[0].address, REWARD)
    with pytest.raises(ChainError, match="nothing to reclaim"):
        fed.reclaim(accounts[0], task_id)
    ledger.check(dust=0)


def test_cancel_after_a_decided_submission_is_refused(time_chain, accounts, initial_model) -> None:  # type: ignore[no-untyped-def]
    """One rejected submission (no proof needed: it starts from another model) is decided:
    cancel is refused. Nobody verified, so the organisation reclaims pool + slashed stake."""
    fed, verifier = time_chain
    ledger = Ledger(fed)
    task_id = create(fed, accounts, verifier, initial_model, ledger, joiners=1, rounds=1, now=chain_now(fed))
    stale = stand_in_step(fed, task_id, accounts[2].address, initial_model + 1, [1, 2, 3] + [0] * 28)
    result = submit_step(fed, accounts[1], accounts[2], task_id, 0, stale)
    assert (result.accepted, result.reason) == (False, Reason.STALE_GLOBAL_MODEL)
    assert fed.task(task_id).submissions == 1
    with pytest.raises(ChainError, match="submissions have been made"):
        fed.cancel(accounts[0], task_id)
    assert not fed.task(task_id).cancelled
    past_deadline(fed, task_id)
    fed.settle(accounts[0], task_id)
    withdraw_all(fed, accounts, task_id, ledger)
    assert ledger.payouts == {accounts[2].address: 0, accounts[0].address: REWARD + STAKE}
    ledger.check(dust=0)


@pytest.mark.slow
def test_slots_are_taken_by_accepted_updates_not_by_joining(time_chain, accounts, initial_model, prover) -> None:  # type: ignore[no-untyped-def]
    """One aggregation slot, three wallets: all may join; the first accepted update takes the
    slot; a second valid update is refused with "round is full" (a revert: nobody is
    slashed, nothing is recorded) and its wallet can still leave with its stake."""
    fed, verifier = time_chain
    ledger = Ledger(fed)
    task_id = create(fed, accounts, verifier, initial_model, ledger, joiners=3, rounds=1, slots=1,
                     deadline_in=600, now=chain_now(fed))
    assert (fed.task(task_id).active_participants, fed.task(task_id).aggregation_slots) == (3, 1)
    first = prover.step(fed, task_id, accounts[2], 1, initial_model)
    late = prover.step(fed, task_id, accounts[3], 2, initial_model)
    assert fed.simulate_submit(task_id, 0, accounts[3].address, late.proof.update_commitment, late.proof.update,
                               late.proof.proof_bytes, late.proof.instances,
                               fed.sign_submission(accounts[3], task_id, 0, late.proof.update_commitment,
                                                   late.proof.update, late.proof.instances, late.proof.proof_bytes))
    assert submit_step(fed, accounts[1], accounts[2], task_id, 0, first).accepted
    with pytest.raises(ChainError, match=r"^transaction reverted: NotAllowed\(round is full\)$"):
        submit_step(fed, accounts[1], accounts[3], task_id, 0, late)
    late_state = fed.participant(task_id, accounts[3].address)
    assert (late_state.stake, late_state.submitted, late_state.slashed) == (STAKE, False, False)
    assert fed.submission_status(task_id, 0, accounts[3].address) == (Status.NONE, Reason.NONE)
    round_, state = fed.round(task_id, 0), fed.task(task_id)
    assert (round_.accepted, round_.rejected, state.submissions, state.slashed_pool) == (1, 0, 1, 0)
    with pytest.raises(ChainError, match="submissions have been made"):
        fed.cancel(accounts[0], task_id)
    fed.leave(accounts[3], task_id)
    ledger.pay(accounts[3].address, STAKE)
    past_deadline(fed, task_id)
    fed.settle(accounts[0], task_id)
    withdraw_all(fed, accounts, task_id, ledger)
    assert ledger.payouts == {accounts[3].address: STAKE, accounts[2].address: REWARD + STAKE,
                              accounts[4].address: STAKE}
    ledger.check(dust=0)


# ------------------------------------------------------------------ reentrancy

# Each attack re-enters exactly once (the attacker disarms before its call) with a call the
# Federation would accept on its own: the same call made afterwards, not nested, succeeds.
# So the only thing that can refuse the nested call is the reentrancy guard, and the test
# matches the guard's own error. The control runs the same attack against a Federation with
# `nonReentrant` taken off `withdraw` and `leave`: there the nested call goes through.

UNGUARDED = tuple((f"function {name}(uint256 taskId) external nonReentrant {{",
                   f"function {name}(uint256 taskId) external {{") for name in ("withdraw", "leave"))


@pytest.fixture(scope="module")
def unguarded(time_chain, accounts) -> Federation:  # type: ignore[no-untyped-def]
    fed, _ = time_chain
    return federation_variant(fed.w3, accounts[0], *UNGUARDED)


def _federation(guarded: bool, time_chain, unguarded) -> tuple[Federation, str]:  # type: ignore[no-untyped-def]
    fed, verifier = time_chain
    return (fed if guarded else unguarded), verifier


def _attempt(guarded: bool, action: Callable[[], object]) -> None:
    if guarded:
        with pytest.raises(ChainError, match=GUARD_ERROR):
            action()
    else:
        action()


@pytest.mark.parametrize("guarded", [True, False], ids=["federation", "control-without-guard"])
def test_a_receiver_reenters_once_and_meets_the_guard(guarded, time_chain, unguarded, accounts,  # type: ignore[no-untyped-def]
                                                      initial_model) -> None:
    fed, verifier = _federation(guarded, time_chain, unguarded)
    w3, owner = fed.w3, accounts[6]
    ledger = Ledger(fed)
    tasks = [create(fed, accounts, verifier, initial_model, ledger, joiners=0, deadline_in=600, now=chain_now(fed))
             for _ in range(4)]
    compiled = compile_contract(TEST_CONTRACTS, "ReentrantParticipant")
    address, _ = deploy(w3, owner, compiled, fed.address)
    attacker = w3.eth.contract(address=address, abi=compiled.abi)
    for task_id in tasks:
        send(w3, owner, attacker.functions.join(task_id), value=STAKE)
        ledger.deposited += STAKE
    a, b, c, d = tasks

    def joined(task_id: int) -> bool:
        return bool(fed.participant(task_id, address).joined)

    # leave(a) pays the attacker; its receive() calls leave(b), which it may do on its own.
    send(w3, owner, attacker.functions.arm(calldata(fed, "leave", b)))
    _attempt(guarded, lambda: send(w3, owner, attacker.functions.leave(a)))
    if guarded:
        assert (joined(a), joined(b), attacker.functions.reentries().call()) == (True, True, 0)
        send(w3, owner, attacker.functions.arm(b""))
        send(w3, owner, attacker.functions.leave(a))
        send(w3, owner, attacker.functions.leave(b))  # the same call, not nested: allowed
    assert (joined(a), joined(b), attacker.functions.reentries().call()) == (False, False, 0 if guarded else 1)
    assert w3.eth.get_balance(address) == 2 * STAKE
    ledger.pay(address, 2 * STAKE)

    # withdraw(c) pays the attacker; its receive() calls withdraw(d), settled and not yet withdrawn.
    past_deadline(fed, d)
    for task_id in tasks:
        fed.settle(accounts[5], task_id)
    send(w3, owner, attacker.functions.arm(calldata(fed, "withdraw", d)))
    _attempt(guarded, lambda: send(w3, owner, attacker.functions.withdraw(c)))
    withdrawn = [fed.participant(t, address).withdrawn for t in (c, d)]
    if guarded:
        assert withdrawn == [False, False]
        send(w3, owner, attacker.functions.arm(b""))
        send(w3, owner, attacker.functions.withdraw(c))
        send(w3, owner, attacker.functions.withdraw(d))  # not nested: allowed
    else:
        assert withdrawn == [True, True] and attacker.functions.reentries().call() == 2
    assert w3.eth.get_balance(address) == 4 * STAKE
    ledger.pay(address, 2 * STAKE)
    for task_id in tasks:  # nobody contributed: every pool goes back
        assert fed.reclaim(accounts[0], task_id) == REWARD
        ledger.pay(accounts[0].address, REWARD)
    ledger.check(dust=0)


@pytest.mark.parametrize("guarded", [True, False], ids=["federation", "control-without-guard"])
def test_a_token_reenters_once_and_meets_the_guard(guarded, time_chain, unguarded, accounts,  # type: ignore[no-untyped-def]
                                                   initial_model) -> None:
    """A token that, paying wallet 2 out of task t, calls `withdraw(u)` as a participant of u."""
    fed, verifier = _federation(guarded, time_chain, unguarded)
    w3 = fed.w3
    compiled = compile_contract(TEST_CONTRACTS, "ReentrantToken")
    token_address, _ = deploy(w3, accounts[0], compiled)
    token = w3.eth.contract(address=token_address, abi=compiled.abi)
    for account in accounts[:3]:
        send(w3, accounts[0], token.functions.mint(account.address, 10 * REWARD))
    ledger = Ledger(fed, token_address)
    t = create(fed, accounts, verifier, initial_model, ledger, joiners=1, deadline_in=600, now=chain_now(fed))
    u = create(fed, accounts, verifier, initial_model, ledger, joiners=0, deadline_in=600, now=chain_now(fed))
    send(w3, accounts[0], token.functions.joinTask(fed.address, u, STAKE))
    ledger.deposited += STAKE
    past_deadline(fed, u)
    for task_id in (t, u):
        fed.settle(accounts[5], task_id)
    send(w3, accounts[0], token.functions.arm(fed.address, accounts[2].address, calldata(fed, "withdraw", u)))
    _attempt(guarded, lambda: fed.withdraw(accounts[2], t))
    if guarded:
        assert [fed.participant(t, accounts[2].address).withdrawn, fed.participant(u, token_address).withdrawn,
                token.functions.reentries().call()] == [False, False, 0]
        send(w3, accounts[0], token.functions.arm(fed.address, accounts[2].address, b""))
        assert fed.withdraw(accounts[2], t) == STAKE
        send(w3, accounts[0], token.functions.callFederation(fed.address, calldata(fed, "withdraw", u)))
    else:
        assert token.functions.reentries().call() == 1
    assert fed.participant(u, token_address).withdrawn and fed.participant(t, accounts[2].address).withdrawn
    assert token.functions.balanceOf(token_address).call() == STAKE
    ledger.pay(accounts[2].address, STAKE)
    ledger.pay(token_address, STAKE)
    for task_id in (t, u):
        assert fed.reclaim(accounts[0], task_id) == REWARD
        ledger.pay(accounts[0].address, REWARD)
    ledger.check(dust=0)


# ------------------------------------------------------------------ random sequences


@pytest.fixture(scope="module")
def stand_in_verifier(time_chain, accounts) -> str:  # type: ignore[no-untyped-def]
    """A verifier that accepts any proof (GasHungryVerifier burning nothing)."""
    fed, _ = time_chain
    address, _ = deploy(fed.w3, accounts[0], compile_contract(TEST_CONTRACTS, "GasHungryVerifier"), 0)
    return address


ACTIONS = st.lists(
    st.tuples(st.sampled_from(["join", "leave", "good", "bad", "top_up"]), st.integers(0, 2)),
    max_size=8,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, publish=st.booleans(), rule=st.sampled_from(list(RewardRule)),
       slash=st.sampled_from(list(SlashRule)))
@pytest.mark.slow
def test_value_is_conserved_under_random_sequences(time_chain, stand_in_verifier, accounts, initial_model,  # type: ignore[no-untyped-def]
                                                   step_a, step_b, aggregation, actions, publish, rule,
                                                   slash) -> None:
    """Joins, leaves, good and bad submissions, top-ups, then settlement by publication or
    deadline, withdrawals and reclaim, checked against a model of the rules: every action
    is allowed or refused as the model says, every payout is the model's to the wei, and
    exactly the model's rounding dust stays. The verifier is a stand-in that accepts any
    proof (a real proof per task and wallet would cost ~9 s each; every other test here
    uses real ones); the updates are real step outputs, so the FedAvg proofs are real."""
    fed, _ = time_chain
    ledger = Ledger(fed)
    task_id = fed.create_task(accounts[0], task_params(accounts[1].address, stand_in_verifier, initial_model,
                                                        rounds=1, deadline_in=600, now=chain_now(fed),
                                                        reward_rule=rule, slash_rule=slash,
                                                        aggregation_verifier=aggregation_verifier_for(fed)), REWARD)
    ledger.deposited += REWARD
    wallets = accounts[2:5]
    honest_updates = {0: list(step_a.proof.update), 1: list(step_b.proof.update)}
    pool, slashed_pool = REWARD, 0
    stakes: dict[int, int] = {}  # joined now (slashed ones stay joined with nothing)
    submitted: set[int] = set()
    accepted: list[int] = []
    expected: dict[str, int] = {}
    for action, index in actions:
        wallet = wallets[index]
        if action == "join":
            allowed = index not in stakes
            stake = STAKE + index
            outcome = _tries(lambda: fed.join(wallet, task_id, stake))  # noqa: B023
            if allowed:
                stakes[index] = stake
                ledger.deposited += stake
        elif action == "leave":
            allowed = index in stakes and index not in submitted
            outcome = _tries(lambda: fed.leave(wallet, task_id))  # noqa: B023
            if allowed:
                refund = stakes.pop(index)
                ledger.pay(wallet.address, refund)
                expected[wallet.address] = expected.get(wallet.address, 0) + refund
        elif action in ("good", "bad"):
            allowed = index in stakes and index not in submitted
            honest = action == "good" and index in honest_updates
            update = honest_updates.get(index, honest_updates[0])
            step = stand_in_step(fed, task_id, wallet.address, initial_model, update)
            cheat = None if honest else [update[0] + 1, *update[1:]]  # not the proof's output
            results: list[object] = []
            outcome = _tries(lambda: results.append(  # noqa: B023
                submit_step(fed, accounts[1], wallet, task_id, 0, step, update=cheat)))  # noqa: B023
            if allowed:
                [result] = results
                assert (result.accepted, result.reason) == (  # type: ignore[attr-defined]
                    (True, Reason.NONE) if honest else (False, Reason.UPDATE_MISMATCH))
                submitted.add(index)
                if honest:
                    accepted.append(index)
                else:
                    slashed_pool += stakes[index]
                    stakes[index] = 0
        else:
            allowed = True
            outcome = _tries(lambda: fed.top_up(accounts[0], task_id, 10**15))
            pool += 10**15
            ledger.deposited += 10**15
        assert outcome == allowed, (action, index)
    if publish and accepted:
        publish_aggregate(fed, aggregation, accounts[1], task_id, 0)
    else:
        past_deadline(fed, task_id)
    fed.settle(accounts[5], task_id)
    withdraw_all(fed, accounts, task_id, ledger)

    total = pool + (slashed_pool if slash == SlashRule.TO_REWARD_POOL else 0)
    # One round, the same samples per update: pro rata and equal shares both give total // n.
    share = total // len(accepted) if accepted else 0
    for index, stake in stakes.items():
        address = wallets[index].address
        expected[address] = expected.get(address, 0) + stake + (share if index in accepted else 0)
    reclaim = (slashed_pool if slash == SlashRule.TO_ORGANISATION else 0) + (0 if accepted else total)
    if reclaim:
        expected[accounts[0].address] = reclaim
    assert ledger.payouts == expected
    ledger.check(dust=total - share * len(accepted) if accepted else 0)


def _tries(action: Callable[[], object]) -> bool:
    """True if the contract took the action, False if it refused it (and so moved nothing)."""
    try:
        action()
    except ChainError as exc:
        assert re.search(r"transaction reverted: (NotAllowed|AccessControl)", str(exc)), exc
        return False
    return True
