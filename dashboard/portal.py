"""The participants' portal, read side: tasks as a participant shops for them, and one
wallet's standing in a task.

Every figure comes from the chain (the task record, the events, ``payoutOf``) or from the
task's client package, fetched by the CID the chain names and checked against it. A task
whose package this machine cannot fetch is still listed, with its model fields empty.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from web3 import Web3

from zkfl.artifacts import PackageReader, TaskPackage
from zkfl.contracts.chain import next_block_time
from zkfl.contracts.events import task_history
from zkfl.contracts.federation import ETH, Federation, TaskState
from zkfl.store import ContentStore

log = logging.getLogger(__name__)
TOKEN_RETRY_SECONDS = 60.0  # a token whose metadata could not be read is asked again after this
FETCHERS = 2  # packages fetched at once in the background
SYMBOL = re.compile(r"[A-Za-z0-9._-]{1,16}")
MAX_DECIMALS = 77  # 10**77 is the largest power of ten a uint256 holds

TOKEN_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": name, "stateMutability": "view", "inputs": [], "outputs": [{"name": "", "type": kind}]}
    for name, kind in (("symbol", "string"), ("decimals", "uint8"))
]


class TaskPhase(StrEnum):
    OPEN = "open"  # the contract takes a join now: not settled, before the deadline, rounds left
    RUNNING = "running"  # no longer joinable (deadline passed or every round published), not yet settled
    SETTLED = "settled"  # settled or cancelled: contributors withdraw


class ModelTerms(BaseModel):
    """What the client package says the task trains and proves (from the package, by CID)."""

    family: str = Field(description="logreg, softmax or mlp")
    layer_sizes: list[int] = Field(description="inputs, hidden widths, outputs")
    parameters: int
    features: int
    classes: int
    batch: int = Field(description="samples per proven step (a participant's weight in FedAvg)")
    local_steps: int
    learning_rate: float
    scale: int = Field(description="fixed-point fractional bits")
    feature_bound: float = Field(description="declared input bound: every proof checks |x| <= this for each feature")
    labels: str = Field(description="what each label row must be")
    dataset: str
    backend: str = Field(description="the proving backend (ezkl or zokrates)")


class Token(BaseModel):
    address: str = Field(description="the ERC-20's address; the zero address for ETH")
    symbol: str
    decimals: int


class TaskListing(BaseModel):
    """One task as the portal lists it. The first fields are the dashboard's original summary."""

    task_id: int
    organisation: str
    rounds: int = Field(description="the task's total rounds")
    current_round: int
    reward_pool: int = Field(description="in the token's smallest unit (wei for ETH)")
    settled: bool
    active_participants: int
    state: TaskPhase
    joinable: bool = Field(description="a join sent now would be taken (the state is open)")
    token: Token
    min_stake: int = Field(description="in the token's smallest unit")
    deadline: int = Field(description="unix time (chain time)")
    seconds_left: int = Field(description="until the deadline, by the time a transaction sent now would see (the "
                              "later of the latest block's and this server's clock); 0 once passed")
    slots: int = Field(description="accepted updates a round can take (the FedAvg circuit's slots)")
    samples_per_update: int
    pin_data: bool = Field(description="a participant must prove on the same data every round, and its proofs carry "
                                       "hashes of its batch; without a pin no hash of the data is published")
    cancelled: bool
    aggregator: str
    verifier: str
    package_cid: str
    model: ModelTerms | None = Field(description="null while this machine does not hold the package (it fetches it "
                                                 "in the background), or when what the CID names is not a package")


def _shown_symbol(symbol: str, address: str) -> str:
    """A token's symbol as the page may show it: a short ASCII name that is not ETH's (lookalike
    letters from other scripts are not ASCII), else the token's address."""
    if not SYMBOL.fullmatch(symbol) or symbol.upper() in ("ETH", "ETHER"):
        return f"token {address[:10]}"
    return symbol


def task_phase(task: TaskState, now: int) -> TaskPhase:
    if task.settled:
        return TaskPhase.SETTLED
    if now <= task.deadline and task.current_round < task.rounds:
        return TaskPhase.OPEN
    return TaskPhase.RUNNING


def model_terms(package: TaskPackage) -> ModelTerms:
    spec = package.spec
    labels = "0 or 1" if spec.family == "logreg" else f"one-hot rows over {spec.classes} classes"
    return ModelTerms(
        family=spec.family, layer_sizes=spec.layer_sizes, parameters=spec.param_count, features=spec.features,
        classes=spec.classes, batch=spec.batch, local_steps=spec.local_steps, learning_rate=spec.learning_rate,
        scale=spec.scale, feature_bound=spec.feature_bound, labels=labels, dataset=package.dataset,
        backend=package.backend)


class Portal:
    """Reads for the portal, with what never changes (packages, token metadata) cached.

    A request never waits on the network for a package: one the store does not hold yet is
    fetched in the background (bounded, one at a time) and the task is listed without its
    model until then. Anyone can post a task naming any CID, so nothing a stranger names may
    make a listing slow."""

    def __init__(self, fed: Federation, store: ContentStore) -> None:
        self.fed, self.store = fed, store
        self._packages = PackageReader(store)
        self._wanted: list[str] = []  # packages to fetch, newest last: fetched newest first
        self._fetchers = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="portal-packages")
        self._tokens: dict[str, tuple[Token, float]] = {}  # address -> (token, valid until)

    def chain_time(self) -> int:
        return next_block_time(self.fed.w3)

    def package(self, cid: str) -> TaskPackage | None:
        if self.store.has(cid):
            return self._packages.get(cid)
        with self._lock:
            if cid not in self._wanted:
                self._wanted.append(cid)
            if self._fetchers < FETCHERS:
                self._fetchers += 1
                self._pool.submit(self._fetch_wanted)
        return None

    def _fetch_wanted(self) -> None:
        """Newest first: CIDs that resolve nowhere (anyone can post them) wait behind new tasks,
        and the reader backs off from them; a fetched package lands in the store's cache."""
        while True:
            with self._lock:
                if not self._wanted:
                    self._fetchers -= 1
                    return
                cid = self._wanted.pop()
            self._packages.get(cid)

    def token(self, address: str) -> Token:
        cached = self._tokens.get(address)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        token, lasting = self._read_token(address)
        self._tokens[address] = (token, time.monotonic() + (float("inf") if lasting else TOKEN_RETRY_SECONDS))
        return token

    def _read_token(self, address: str) -> tuple[Token, bool]:
        """The token's metadata, and whether it is final (a failed read is tried again later)."""
        if address == ETH:
            return Token(address=ETH, symbol="ETH", decimals=18), True
        erc20 = self.fed.w3.eth.contract(address=Web3.to_checksum_address(address), abi=TOKEN_ABI)
        try:  # optional metadata, each read on its own (some tokens' symbol is a bytes32)
            decimals: int | None = int(erc20.functions.decimals().call())
        except Exception:
            decimals = None
        try:
            symbol = str(erc20.functions.symbol().call())
        except Exception:
            symbol = ""
        if decimals is None or decimals > MAX_DECIMALS:  # shown in base units
            return Token(address=address, symbol=_shown_symbol(symbol, address), decimals=0), False
        return Token(address=address, symbol=_shown_symbol(symbol, address), decimals=decimals), True

    def listing(self, task_id: int, now: int) -> TaskListing:
        task = self.fed.task(task_id)
        phase = task_phase(task, now)
        package = self.package(task.package_cid)
        return TaskListing(
            task_id=task_id, organisation=task.organisation, rounds=task.rounds, current_round=task.current_round,
            reward_pool=task.reward_pool, settled=task.settled, active_participants=task.active_participants,
            state=phase, joinable=phase is TaskPhase.OPEN, token=self.token(task.token), min_stake=task.min_stake,
            deadline=task.deadline, seconds_left=max(0, task.deadline - now), slots=task.aggregation_slots,
            samples_per_update=task.samples_per_update, pin_data=task.pin_data, cancelled=task.cancelled,
            aggregator=task.aggregator, verifier=task.verifier, package_cid=task.package_cid,
            model=model_terms(package) if package is not None else None)

    def listings(self, state: TaskPhase | None, sort: str | None) -> list[TaskListing]:
        now = self.chain_time()
        rows = [self.listing(task_id, now) for task_id in range(1, self.fed.task_count() + 1)]
        rows = [row for row in rows if state is None or row.state is state]
        if sort == "reward":
            rows.sort(key=lambda row: (-row.reward_pool, row.task_id))
        elif sort == "deadline":
            rows.sort(key=lambda row: (row.deadline, row.task_id))
        return rows


class RoundOutcome(BaseModel):
    round: int
    accepted: bool
    reason: str | None = Field(default=None, description="why the contract rejected it (null when accepted)")


class ParticipantView(BaseModel):
    """One wallet in one task, from the chain: what a participant checks on the portal."""

    task_id: int
    wallet: str
    joined: bool = Field(description="has joined (and not left)")
    stake: int = Field(description="staked, in the token's smallest unit; 0 once slashed")
    binding: str = Field(description="H(b), which the contract derived at join: every proof must carry it")
    rounds: list[RoundOutcome] = Field(description="each decided submission, in round order")
    verified_samples: int
    slashed: bool
    reward_accrued: int = Field(description="what payoutOf says the wallet's reward is now (final once settled)")
    withdrawn: bool
    withdrawn_amount: int | None = Field(default=None, description="reward + stake paid out, once withdrawn")
    can_withdraw: bool


def participant_view(fed: Federation, task_id: int, wallet: str) -> ParticipantView:
    address = Web3.to_checksum_address(wallet)
    state, task, history = fed.participant(task_id, address), fed.task(task_id), task_history(fed, task_id)
    outcomes = {e.round: RoundOutcome(round=e.round, accepted=True)
                for e in history.accepted if e.participant == address}
    for e in history.rejected:  # after the acceptance: a challenged update is rejected later
        if e.participant == address:
            outcomes[e.round] = RoundOutcome(round=e.round, accepted=False, reason=e.reason.text)
    paid = [w.reward + w.stake for w in history.withdrawn if w.account == address]
    reward, stake = fed.payout_of(task_id, address)
    return ParticipantView(
        task_id=task_id, wallet=address, joined=state.joined, stake=state.stake,
        binding=f"0x{state.binding:064x}", rounds=[outcomes[r] for r in sorted(outcomes)],
        verified_samples=state.verified_samples, slashed=state.slashed, reward_accrued=reward,
        withdrawn=state.withdrawn, withdrawn_amount=paid[0] if paid else None,
        # Only where there is something to take: a slashed non-contributor would pay gas for nothing.
        can_withdraw=task.settled and state.joined and not state.withdrawn and reward + stake > 0)
