"""The chain: start and stop a local anvil, connect to any RPC URL, send transactions.

``zkfl chain up`` runs anvil (from the pinned npm package) on 127.0.0.1 and a free
port, detached, and records it under ``ZKFL_HOME/chains`` so ``chain down`` can stop
it. Any other chain is used by RPC URL.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.types import TxReceipt

from zkfl.errors import ChainError, ZkflError
from zkfl.paths import anvil_binary, zkfl_home
from zkfl.processes import terminate_group

#: anvil's default mnemonic: its dev accounts are funded with 10,000 ETH each.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = 10


def dev_keys(count: int = DEV_ACCOUNTS) -> list[str]:
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex()
        for i in range(count)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AnvilProcess:
    port: int
    pid: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        terminate_group(self.pid, self.process, timeout=5)

    def __enter__(self) -> AnvilProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(port: int | None = None, block_time: float | None = None,
                chain_id: int | None = None) -> AnvilProcess:
    port = port or free_port()
    args = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port), "--silent",
            "--accounts", str(DEV_ACCOUNTS), "--mnemonic", DEV_MNEMONIC]
    if block_time:
        args += ["--block-time", str(block_time)]
    if chain_id:
        args += ["--chain-id", str(chain_id)]
    with open(zkfl_home() / f"anvil-{port}.log", "wb") as log:  # the child keeps its own handle
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ChainError(f"anvil exited at start (code {process.returncode}); port {port} in use?")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        raise ChainError(f"anvil did not start on port {port}")
    return AnvilProcess(port=port, pid=process.pid, process=process)


def _chains_dir() -> Path:
    path = zkfl_home() / "chains"
    path.mkdir(parents=True, exist_ok=True)
    return path


def chain_up(port: int | None = None) -> AnvilProcess:
    anvil = start_anvil(port)
    record = {"port": anvil.port, "pid": anvil.pid, "rpc_url": anvil.rpc_url}
    (_chains_dir() / f"anvil-{anvil.port}.json").write_text(json.dumps(record))
    return anvil


def chain_down(port: int | None = None) -> list[int]:
    stopped = []
    for record_path in sorted(_chains_dir().glob("anvil-*.json")):
        record = json.loads(record_path.read_text())
        if port is not None and record["port"] != port:
            continue
        AnvilProcess(port=record["port"], pid=record["pid"]).stop()
        record_path.unlink()
        stopped.append(int(record["port"]))
    return stopped


def connect(rpc_url: str) -> Web3:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    try:
        w3.eth.chain_id  # noqa: B018 - probe the connection
    except Exception as exc:
        raise ChainError(f"no chain answers at {rpc_url}: {type(exc).__name__}") from exc
    return w3


def latest_block_time(w3: Web3) -> int:
    """The chain's own clock: the timestamp of its latest block."""
    return int(w3.eth.get_block("latest")["timestamp"])


def next_block_time(w3: Web3, clock: Callable[[], float] = time.time) -> int:
    """The earliest time a transaction sent now can see: a new block is neither older than the
    latest one nor than this machine's clock. On an idle chain the latest block can be minutes
    old, so its timestamp alone would call a task open after its deadline has passed. (A clock
    that runs ahead makes this early: use it to be careful, never to decide what the chain will.)"""
    return max(latest_block_time(w3), int(clock()))


def account_from_key(key: str) -> LocalAccount:
    try:
        return Account.from_key(key)
    except Exception:
        raise ZkflError("invalid private key: expected 32 bytes of hex (0x...)") from None


def chain_key(w3: Web3) -> str:
    """Names a chain instance: chain id plus genesis hash (anvil restarts get new ones)."""
    genesis = w3.eth.get_block(0)["hash"].hex()
    return f"{w3.eth.chain_id}-{genesis.removeprefix('0x')[:16]}"


def revert_reason(exc: Exception) -> str:
    if isinstance(exc, ContractCustomError):
        return f"custom error {exc.data}"
    message = str(exc.args[0] if exc.args else exc)
    return message.removeprefix("execution reverted: ")


_NONCE_ERRORS = ("nonce too low", "nonce too high", "already known", "replacement transaction underpriced")


def send(w3: Web3, account: LocalAccount, call: ContractFunction, value: int = 0,
         gas: int | None = None, attempts: int = 5) -> TxReceipt:
    """Sign and send a contract call from ``account``; raise ChainError with the reason.

    A nonce taken by a concurrent sender from the same account (several workers, one
    key) is retried with a fresh nonce rather than reported as a failure."""
    for attempt in range(attempts):
        try:
            return _send_once(w3, account, call, value, gas)
        except Web3RPCError as exc:
            if attempt == attempts - 1 or not any(e in str(exc).lower() for e in _NONCE_ERRORS):
                raise ChainError(f"chain refused the transaction: {str(exc)[:300]}") from exc
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _send_once(w3: Web3, account: LocalAccount, call: ContractFunction, value: int,
               gas: int | None) -> TxReceipt:
    tx: Any = {"from": account.address, "value": value,
               "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    try:
        probe: Any = {"from": account.address, "value": value}
        tx["gas"] = gas or int(call.estimate_gas(probe) * 1.2) + 20_000
        built = call.build_transaction(tx)
    except (ContractLogicError, ContractCustomError) as exc:
        raise ChainError(f"transaction reverted: {decode_revert(call, exc)}") from exc
    except Web3RPCError as exc:
        message = str(exc)
        if "insufficient funds" in message.lower():
            raise ChainError(f"account {account.address} cannot pay for this transaction (insufficient funds)") from exc
        if any(e in message.lower() for e in _NONCE_ERRORS):
            raise  # retried by send()
        raise ChainError(f"chain refused the transaction: {message[:300]}") from exc
    return _sign_and_wait(w3, account, built)


def _sign_and_wait(w3: Web3, account: LocalAccount, tx: Any) -> TxReceipt:
    """Send and wait until mined: on a chain with a block time, nothing is final when sent."""
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    if receipt["status"] != 1:
        raise ChainError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def send_data(w3: Web3, account: LocalAccount, to: str, data: bytes) -> TxReceipt:
    """A transaction with raw calldata (for contracts without an ABI, like the CREATE2 deployer)."""
    tx: Any = {"from": account.address, "to": Web3.to_checksum_address(to), "data": data,
               "nonce": w3.eth.get_transaction_count(account.address, "pending"), "chainId": w3.eth.chain_id}
    try:
        tx["gas"] = int(w3.eth.estimate_gas({"from": account.address, "to": tx["to"], "data": data}) * 1.2) + 20_000
    except (ContractLogicError, Web3RPCError) as exc:
        raise ChainError(f"transaction to {to} would fail: {str(exc)[:300]}") from exc
    tx["gasPrice"] = w3.eth.gas_price
    return _sign_and_wait(w3, account, tx)


def decode_revert(call: ContractFunction, exc: Exception) -> str:
    """Turn a revert into words: custom errors from the contract's ABI, else the message."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        from eth_abi import decode
        from eth_utils import function_abi_to_4byte_selector

        abi: list[Any] = list(call.contract_abi)
        for item in abi:
            if item.get("type") != "error":
                continue
            if "0x" + function_abi_to_4byte_selector(item).hex() == data[:10]:
                types = [i["type"] for i in item["inputs"]]
                values = decode(types, bytes.fromhex(data[10:])) if types else ()
                shown = ", ".join(str(v) for v in values)
                return f"{item['name']}({shown})" if shown else item["name"]
    return revert_reason(exc)
