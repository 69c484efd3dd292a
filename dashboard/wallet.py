"""Unsigned transactions for a browser wallet (EIP-1193): the portal prepares, the wallet
signs and sends.

The server never holds a participant's key and never sends anything: it checks what the
chain would say before the wallet is asked (a stake under the minimum, a closed task, a
second join), so the user reads a clear reason instead of a failed transaction, and it
returns the exact calls, which the wallet shows the user to confirm one by one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from zkfl.contracts.chain import decode_revert, next_block_time
from zkfl.contracts.federation import ERC20_ABI, ETH, Federation
from zkfl.dashboard.portal import TaskPhase, task_phase


class WalletAction(StrEnum):
    JOIN = "join"
    LEAVE = "leave"
    WITHDRAW = "withdraw"


class PreparedTransaction(BaseModel):
    """One call for the wallet's ``eth_sendTransaction``, with what it does in words."""

    to: str
    data: str = Field(description="0x-prefixed calldata")
    value: str = Field(description="0x-prefixed wei sent with the call")
    description: str


class PreparedAction(BaseModel):
    action: WalletAction
    chain_id: int = Field(description="the wallet must be on this chain")
    wallet: str = Field(description="the account that must sign (the transactions' from)")
    transactions: list[PreparedTransaction] = Field(
        description="to be sent in this order, each once the one before is mined")


class RefusedAction(ValueError):
    """What the chain would refuse, said before anything is sent."""


def prepare(fed: Federation, task_id: int, action: WalletAction, wallet: str, stake: int | None) -> PreparedAction:
    address = Web3.to_checksum_address(wallet)
    if action is WalletAction.JOIN:
        transactions = _join(fed, task_id, address, stake)
    else:
        _refuse_if_not_member(fed, task_id, address, action)
        call = getattr(fed.contract.functions, action.value)(task_id)
        _dry_run(call, address, 0)
        transactions = [_transaction(fed.address, call, 0, f"{action.value} task {task_id}")]
    return PreparedAction(action=action, chain_id=fed.w3.eth.chain_id, wallet=address, transactions=transactions)


def _join(fed: Federation, task_id: int, address: str, stake: int | None) -> list[PreparedTransaction]:
    task = fed.task(task_id)
    now = next_block_time(fed.w3)  # an idle chain's latest block may be older than the deadline
    if task_phase(task, now) is not TaskPhase.OPEN:
        raise RefusedAction(f"task {task_id} is not open for joining (settled, past its deadline, or finished)")
    if stake is None or stake <= 0 or stake < task.min_stake:
        raise RefusedAction(f"the stake must be at least the task's minimum, {task.min_stake} (smallest unit)")
    state = fed.participant(task_id, address)
    if state.joined:
        raise RefusedAction(f"{address} has already joined task {task_id}")
    if state.submitted:
        raise RefusedAction(f"{address} has submitted in task {task_id} before and cannot rejoin")
    call = fed.contract.functions.join(task_id, stake)
    if task.token == ETH:
        if fed.w3.eth.get_balance(address) < stake:
            raise RefusedAction(f"{address} holds less than the stake of {stake} wei")
        _dry_run(call, address, stake)
        return [_transaction(fed.address, call, stake, f"join task {task_id}, staking {stake} wei")]
    token = fed.w3.eth.contract(address=Web3.to_checksum_address(task.token), abi=ERC20_ABI)
    try:
        balance = int(token.functions.balanceOf(address).call())
    except Exception:  # the organisation chose the token: a broken one is its refusal, not our crash
        raise RefusedAction(f"the task's token {task.token} does not answer balanceOf: it cannot be staked") from None
    if balance < stake:
        raise RefusedAction(f"{address} holds less than the stake of {stake} of token {task.token}")
    # The join can only be dry-run once the approval is mined: the wallet sends them in order.
    return [_transaction(task.token, token.functions.approve(fed.address, stake), 0,
                         f"allow the Federation to take the stake of {stake} (token {task.token})"),
            _transaction(fed.address, call, 0, f"join task {task_id}, staking {stake} of token {task.token}")]


def _refuse_if_not_member(fed: Federation, task_id: int, address: str, action: WalletAction) -> None:
    task, state = fed.task(task_id), fed.participant(task_id, address)
    if not state.joined:
        raise RefusedAction(f"{address} is not a participant of task {task_id}")
    if action is WalletAction.WITHDRAW and not task.settled:
        raise RefusedAction(f"task {task_id} is not settled yet: withdraw after settlement")
    if action is WalletAction.WITHDRAW and state.withdrawn:
        raise RefusedAction(f"{address} has already withdrawn from task {task_id}")
    if action is WalletAction.WITHDRAW and sum(fed.payout_of(task_id, address)) == 0:
        # The contract would take it and pay nothing: the wallet would spend gas for no reason.
        why = "it was slashed" if state.slashed else "it earned no reward and has no stake left"
        raise RefusedAction(f"{address} has nothing to withdraw from task {task_id}: {why}")
    if action is WalletAction.LEAVE and state.submitted:
        raise RefusedAction(f"{address} has submitted in task {task_id}: it can no longer leave")


def _dry_run(call: Any, address: str, value: int) -> None:
    """What the chain says to this call from this wallet now: a refusal is said before signing."""
    try:
        call.call({"from": address, "value": value})
    except (ContractLogicError, ContractCustomError) as exc:
        raise RefusedAction(f"the chain would refuse it: {_reason(call, exc)}") from None
    except Web3RPCError as exc:
        raise RefusedAction(f"the chain would refuse it: {_printable(str(exc))}") from None


def _reason(call: Any, exc: Exception) -> str:
    """The revert in words, at most a line: a token's revert data passes up through the
    Federation, so its length and content are the token author's."""
    try:
        return _printable(decode_revert(call, exc))
    except Exception:
        return "it reverts (with data that does not decode)"


def _printable(text: str, limit: int = 200) -> str:
    shown = "".join(c if c.isprintable() else " " for c in text)
    return shown if len(shown) <= limit else shown[:limit] + "…"


def _transaction(to: str, call: Any, value: int, description: str) -> PreparedTransaction:
    data = Web3().eth.contract(abi=call.contract_abi).encode_abi(call.fn_name, args=list(call.args))
    return PreparedTransaction(to=Web3.to_checksum_address(to), data=data, value=hex(value), description=description)
