"""Money on anvil: ETH and ERC-20 tasks, reward and slash rules, leaving, cancelling,
reentrancy, and conservation of value (paid + left = deposited) in every test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from tests.conftest import (
    ProvenStep,
    aggregation_verifier_for,
    deploy_aggregation_verifier,
    publish_aggregate,
    task_params,
    test_binding,
)
from tests.test_federation_contract import submit
from zkfl.contracts.chain import connect, start_anvil
from zkfl.contracts.federation import ETH, Federation, Reason, RewardRule, SlashRule, deploy, deploy_verifier
from zkfl.contracts.solc import compile_contract
from zkfl.errors import ChainError
from zkfl.prover.commit import commit

TEST_CONTRACTS = Path(__file__).parent / "contracts" / "TestContracts.sol"
STAKE = 10**17
REWARD = 10**18


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

    def check(self) -> None:
        left = self.balance() - self.start
        assert self.paid + left == self.deposited, (self.paid, left, self.deposited)


def create(fed: Federation, accounts: list[LocalAccount], verifier: str, initial, ledger: Ledger,  # type: ignore[no-untyped-def]
           joiners: int = 3, **kw) -> int:
    params = task_params(accounts[1].address, verifier, initial, token=ledger.token,
                         aggregation_verifier=aggregation_verifier_for(fed), **kw)
    task_id = fed.create_task(accounts[0], params, REWARD)
    ledger.deposited += REWARD
    for seed, participant in enumerate(accounts[2 : 2 + joiners], start=1):
        fed.join(participant, task_id, STAKE, commit(test_binding(seed)))
        ledger.deposited += STAKE
    return task_id


def withdraw_all(fed: Federation, accounts: list[LocalAccount], task_id: int, ledger: Ledger) -> None:
    for account in accounts[2:5]:
        if fed.participant(task_id, account.address).joined:
            ledger.pay(account.address, fed.withdraw(account, task_id))
    if fed.contract.functions.reclaimable(task_id).call() > 0:
        ledger.pay(accounts[0].address, fed.reclaim(accounts[0], task_id))


@pytest.fixture(scope="module")
def token(w3, accounts) -> str:  # type: ignore[no-untyped-def]
    address, _ = deploy(w3, accounts[0], compile_contract(TEST_CONTRACTS, "TestToken"))
    contract = w3.eth.contract(address=address, abi=compile_contract(TEST_CONTRACTS, "TestToken").abi)
    from zkfl.contracts.chain import send

    for account in accounts[:6]:
        send(w3, accounts[0], contract.functions.mint(account.address, 100 * REWARD))
    return address


@pytest.mark.parametrize("currency", ["eth", "erc20"])
def test_task_end_to_end_pays_the_honest_and_slashes_the_cheat(currency, federation, accounts, verifier_address,  # type: ignore[no-untyped-def]
                                                               initial_model, step_a, step_b, token,
                                                               aggregation) -> None:
    ledger = Ledger(federation, ETH if currency == "eth" else token)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, rounds=1)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    cheat = list(step_b.proof.update)
    cheat[0] += 1
    result = submit(federation, accounts[1], accounts[3], task_id, 0, step_b, update_commitment=commit(cheat))
    assert not result.accepted
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    federation.settle(accounts[5], task_id)
    withdraw_all(federation, accounts, task_id, ledger)
    assert ledger.payouts[accounts[2].address] == REWARD + STAKE + STAKE  # pool + slashed stake + own stake
    assert ledger.payouts[accounts[3].address] == 0  # slashed
    assert ledger.payouts[accounts[4].address] == STAKE  # joined, never submitted: stake back
    ledger.check()


@pytest.mark.parametrize(("rule", "shares"), [(RewardRule.PRO_RATA_SAMPLES, (2, 1)), (RewardRule.EQUAL_SHARES, (1, 1))])
def test_reward_rules(rule, shares, federation, accounts, verifier_address, initial_model, step_a,  # type: ignore[no-untyped-def]
                      next_model, step_a_next, step_b_next, aggregation) -> None:
    ledger = Ledger(federation)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, joiners=2, reward_rule=rule)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted  # wallet 3 sits round 0 out
    assert (publish_aggregate(federation, aggregation, accounts[1], task_id, 0) == next_model).all()
    assert submit(federation, accounts[1], accounts[2], task_id, 1, step_a_next).accepted  # 32 samples vs 16
    assert submit(federation, accounts[1], accounts[3], task_id, 1, step_b_next).accepted
    publish_aggregate(federation, aggregation, accounts[1], task_id, 1)
    federation.settle(accounts[0], task_id)
    withdraw_all(federation, accounts, task_id, ledger)
    rewards = [ledger.payouts[a.address] - STAKE for a in accounts[2:4]]
    assert rewards[0] * shares[1] == rewards[1] * shares[0] or abs(rewards[0] * shares[1] - rewards[1] * shares[0]) <= 2
    ledger.check()


@pytest.mark.parametrize("slash_rule", [SlashRule.TO_REWARD_POOL, SlashRule.TO_ORGANISATION])
def test_slash_rules(slash_rule, federation, accounts, verifier_address, initial_model, step_a, step_b,
                     aggregation) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(federation)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, joiners=2, rounds=1,
                     slash_rule=slash_rule)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    result = submit(federation, accounts[1], accounts[3], task_id, 0, step_a)  # a copied proof
    assert result.reason == Reason.BINDING_MISMATCH
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    federation.settle(accounts[0], task_id)
    withdraw_all(federation, accounts, task_id, ledger)
    honest, organisation = ledger.payouts[accounts[2].address], ledger.payouts.get(accounts[0].address, 0)
    if slash_rule == SlashRule.TO_REWARD_POOL:
        assert (honest, organisation) == (REWARD + 2 * STAKE, 0)
    else:
        assert (honest, organisation) == (REWARD + STAKE, STAKE)
    ledger.check()


def test_leave_cancel_and_top_up(federation, accounts, verifier_address, initial_model, step_a,  # type: ignore[no-untyped-def]
                                 aggregation) -> None:
    ledger = Ledger(federation)
    lonely = federation.create_task(accounts[0], task_params(accounts[1].address, verifier_address, initial_model,
                                                             aggregation_verifier=aggregation_verifier_for(federation)),
                                    REWARD)
    ledger.deposited += REWARD
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        federation.cancel(accounts[2], lonely)
    balance = federation.w3.eth.get_balance(accounts[0].address)
    federation.cancel(accounts[0], lonely)
    ledger.pay(accounts[0].address, REWARD)
    assert federation.task(lonely).cancelled
    assert federation.w3.eth.get_balance(accounts[0].address) > balance + REWARD - 10**16  # refund minus gas

    task_id = create(federation, accounts, verifier_address, initial_model, ledger, rounds=1)
    with pytest.raises(ChainError, match="participants have joined"):
        federation.cancel(accounts[0], task_id)
    federation.top_up(accounts[0], task_id, REWARD)
    ledger.deposited += REWARD
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        federation.top_up(accounts[3], task_id, REWARD)
    federation.leave(accounts[4], task_id)  # before any submission: stake back
    ledger.pay(accounts[4].address, STAKE)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    with pytest.raises(ChainError, match="cannot leave after submitting"):
        federation.leave(accounts[2], task_id)
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    federation.settle(accounts[0], task_id)
    withdraw_all(federation, accounts, task_id, ledger)
    assert ledger.payouts[accounts[2].address] == 2 * REWARD + STAKE
    ledger.check()


def test_organisation_rotates_the_aggregator(federation, accounts, verifier_address, initial_model, step_a,
                                             aggregation) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(federation)
    task_id = create(federation, accounts, verifier_address, initial_model, ledger, rounds=1)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    role = federation.contract.functions.aggregatorRole(task_id).call()
    from zkfl.contracts.chain import send

    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        send(federation.w3, accounts[1], federation.contract.functions.grantRole(role, accounts[6].address))
    send(federation.w3, accounts[0], federation.contract.functions.grantRole(role, accounts[6].address))
    send(federation.w3, accounts[0], federation.contract.functions.revokeRole(role, accounts[1].address))
    with pytest.raises(ChainError, match="only the task's aggregator"):
        publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    publish_aggregate(federation, aggregation, accounts[6], task_id, 0)
    assert federation.task(task_id).current_round == 1


@pytest.fixture(scope="module")
def time_chain(accounts, artifacts, aggregation) -> Iterator[tuple[Federation, str]]:  # type: ignore[no-untyped-def]
    """A chain of its own: these tests move its clock."""
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        deploy_aggregation_verifier(w3, accounts[0], aggregation)
        yield Federation.deploy(w3, accounts[0]), deploy_verifier(w3, accounts[0], artifacts.verifier_sol)[0]


def chain_now(fed: Federation) -> int:
    return int(fed.w3.eth.get_block("latest")["timestamp"])


def test_task_with_no_participants_refunds_the_organisation(time_chain, accounts, initial_model) -> None:  # type: ignore[no-untyped-def]
    fed, verifier = time_chain
    ledger = Ledger(fed)
    task_id = create(fed, accounts, verifier, initial_model, ledger, joiners=0, deadline_in=60, now=chain_now(fed))
    with pytest.raises(ChainError, match="still running"):
        fed.settle(accounts[0], task_id)
    fed.w3.provider.make_request("evm_increaseTime", [120])  # type: ignore[arg-type]
    fed.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    fed.settle(accounts[0], task_id)
    ledger.pay(accounts[0].address, fed.reclaim(accounts[0], task_id))
    with pytest.raises(ChainError, match="nothing to reclaim"):
        fed.reclaim(accounts[0], task_id)
    ledger.check()


def test_reentrancy_through_a_receiver_and_a_token(time_chain, accounts, initial_model, step_a,
                                                    aggregation) -> None:  # type: ignore[no-untyped-def]
    fed, verifier = time_chain
    w3 = fed.w3
    from zkfl.contracts.chain import send

    # 1. A participant contract whose receive() re-enters withdraw / leave.
    for via_leave in (False, True):
        ledger = Ledger(fed)
        task_id = create(fed, accounts, verifier, initial_model, ledger, joiners=1, rounds=1, now=chain_now(fed))
        compiled = compile_contract(TEST_CONTRACTS, "ReentrantParticipant")
        address, _ = deploy(w3, accounts[6], compiled, fed.address)
        attacker = w3.eth.contract(address=address, abi=compiled.abi)
        send(w3, accounts[6], attacker.functions.join(task_id, 999 + int(via_leave), via_leave), value=STAKE)
        ledger.deposited += STAKE
        if via_leave:
            with pytest.raises(ChainError):
                send(w3, accounts[6], attacker.functions.leave(), gas=500_000)
        assert submit(fed, accounts[1], accounts[2], task_id, 0, step_a).accepted
        publish_aggregate(fed, aggregation, accounts[1], task_id, 0)
        fed.settle(accounts[0], task_id)
        if not via_leave:
            with pytest.raises(ChainError):
                send(w3, accounts[6], attacker.functions.withdraw(), gas=500_000)
        assert fed.participant(task_id, address).withdrawn is False  # nothing moved
        withdraw_all(fed, accounts, task_id, ledger)
        ledger.check()

    # 2. A token that calls back into the Federation when paid out.
    compiled = compile_contract(TEST_CONTRACTS, "ReentrantToken")
    token_address, _ = deploy(w3, accounts[0], compiled)
    token = w3.eth.contract(address=token_address, abi=compiled.abi)
    for account in accounts[:5]:
        send(w3, accounts[0], token.functions.mint(account.address, 10 * REWARD))
    ledger = Ledger(fed, token_address)
    task_id = create(fed, accounts, verifier, initial_model, ledger, joiners=1, rounds=1, now=chain_now(fed))
    assert submit(fed, accounts[1], accounts[2], task_id, 0, step_a).accepted
    publish_aggregate(fed, aggregation, accounts[1], task_id, 0)
    fed.settle(accounts[0], task_id)
    send(w3, accounts[0], token.functions.arm(fed.address, accounts[2].address, task_id, False))
    with pytest.raises(ChainError):
        fed.withdraw(accounts[2], task_id)  # the nested withdraw hits the reentrancy guard
    assert fed.participant(task_id, accounts[2].address).withdrawn is False
    send(w3, accounts[0], token.functions.arm(fed.address, accounts[9].address, task_id, False))  # disarm
    withdraw_all(fed, accounts, task_id, ledger)
    assert ledger.payouts[accounts[2].address] == REWARD + STAKE
    ledger.check()


ACTIONS = st.lists(
    st.tuples(st.sampled_from(["join", "leave", "good", "bad", "top_up"]), st.integers(0, 2)),
    max_size=8,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, publish=st.booleans(), rule=st.sampled_from(list(RewardRule)),
       slash=st.sampled_from(list(SlashRule)))
def test_value_is_conserved_under_random_sequences(time_chain, accounts, initial_model, step_a, step_b,  # type: ignore[no-untyped-def]
                                                   aggregation, actions, publish, rule, slash) -> None:
    """Joins, leaves, good and bad submissions (real proofs), top-ups, then settlement
    by publication or deadline, withdrawals and reclaim: paid + left = deposited."""
    fed, verifier = time_chain
    ledger = Ledger(fed)
    task_id = fed.create_task(accounts[0], task_params(accounts[1].address, verifier, initial_model, rounds=1,
                                                        deadline_in=600, now=chain_now(fed), reward_rule=rule,
                                                        slash_rule=slash,
                                                        aggregation_verifier=aggregation_verifier_for(fed)), REWARD)
    ledger.deposited += REWARD
    wallets = accounts[2:5]
    proofs: dict[int, ProvenStep] = {0: step_a, 1: step_b}
    for action, index in actions:
        wallet = wallets[index]
        try:
            if action == "join":
                fed.join(wallet, task_id, STAKE + index, commit(test_binding(index + 1)))
                ledger.deposited += STAKE + index
            elif action == "leave":
                stake = fed.participant(task_id, wallet.address).stake
                fed.leave(wallet, task_id)
                ledger.pay(wallet.address, stake)
            elif action == "good" and index in proofs:
                submit(fed, accounts[1], wallet, task_id, 0, proofs[index])
            elif action in ("good", "bad"):
                submit(fed, accounts[1], wallet, task_id, 0, step_a, update_commitment=12345)
            else:
                fed.top_up(accounts[0], task_id, 10**15)
                ledger.deposited += 10**15
        except ChainError:
            pass  # refused actions (not joined, already submitted, ...) move nothing
    if publish and fed.round(task_id, 0).accepted > 0:
        publish_aggregate(fed, aggregation, accounts[1], task_id, 0)
    else:
        fed.w3.provider.make_request("evm_increaseTime", [700])  # type: ignore[arg-type]
        fed.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    fed.settle(accounts[5], task_id)
    withdraw_all(fed, accounts, task_id, ledger)
    ledger.check()
    dust = ledger.balance() - ledger.start
    assert 0 <= dust <= 3  # at most a wei of rounding per contributor stays behind
    assert Web3.is_address(fed.address)
