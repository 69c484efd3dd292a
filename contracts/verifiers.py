"""A circuit's verifier on chain: deployed from the source its backend generated, and checked.

Backend-neutral: a backend hands over a :class:`~zkfl.prover.records.VerifierSource` (its
Solidity, and optionally a shared form: a reusable verifier fed the circuit's key by an
adapter). A verifier too large for a contract (EIP-170) goes through the shared form.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount as Account
from web3 import Web3

from zkfl.contracts.federation import EIP170_LIMIT, deploy
from zkfl.contracts.solc import CONTRACTS_DIR, CompiledContract, compile_contract
from zkfl.errors import ZkflError
from zkfl.prover.records import ReusableVerifier, VerifierSource

ADAPTER = "EzklReusableAdapter"


def compiled(source: VerifierSource) -> CompiledContract:
    return compile_contract(source.solidity, source.contract)


def adapter_contract() -> CompiledContract:
    """The adapter that gives a shared verifier the Federation's ``verify`` interface."""
    return compile_contract(CONTRACTS_DIR / f"{ADAPTER}.sol", ADAPTER)


def needs_shared_verifier(source: VerifierSource) -> bool:
    """A circuit whose own verifier exceeds the contract size limit (softmax and MLP under
    ezkl: their lookup tables make it about 37 KB) goes through the shared verifier."""
    return source.reusable is not None and compiled(source).deployed_size > EIP170_LIMIT


def deploy_verifier(w3: Web3, account: Account, source: VerifierSource) -> tuple[str, int]:
    """The circuit's own verifier: (address, gas)."""
    return deploy(w3, account, compiled(source))


def deploy_reusable_adapter(w3: Web3, account: Account, shared: ReusableVerifier,
                            reusable: str | None = None) -> tuple[str, str, int]:
    """A circuit's verifier on a shared one: (adapter, shared verifier, adapter gas).

    Deploys the shared verifier too when ``reusable`` is None or holds no code (once per chain)."""
    if reusable is None or len(w3.eth.get_code(Web3.to_checksum_address(reusable))) == 0:
        reusable, _ = deploy(w3, account, compile_contract(shared.solidity, shared.contract))
    adapter, gas = deploy(w3, account, adapter_contract(), reusable, shared.vka_words)
    return adapter, reusable, gas


def deploy_circuit_verifier(w3: Web3, account: Account, source: VerifierSource,
                            reusable: str | None = None) -> tuple[str, str | None]:
    """The circuit's own verifier, or an adapter over the shared one when its own is too
    large. Returns the address to verify with and the shared verifier's (if any)."""
    if source.reusable is not None and needs_shared_verifier(source):
        adapter, reusable, _ = deploy_reusable_adapter(w3, account, source.reusable(), reusable)
        return adapter, reusable
    address, _ = deploy_verifier(w3, account, source)
    return address, reusable


def _code(w3: Web3, address: str) -> str:
    return ("0x" + bytes(w3.eth.get_code(Web3.to_checksum_address(address))).hex()).lower()


def check_verifier_on_chain(w3: Web3, address: str, source: VerifierSource) -> None:
    """The contract at ``address`` verifies with exactly this circuit's keys.

    An own verifier must be, byte for byte, the compilation of the source generated from
    the circuit's verifying key. An adapter must be the known adapter code, point at the
    known shared verifier code, and hold the VKA generated from the verifying key.
    """
    deployed = _code(w3, address)
    if source.reusable is not None and deployed == adapter_contract().runtime.lower():
        shared = source.reusable()
        adapter = w3.eth.contract(address=Web3.to_checksum_address(address), abi=adapter_contract().abi)
        expected_shared = compile_contract(shared.solidity, shared.contract).runtime
        if _code(w3, adapter.functions.reusable().call()) != expected_shared.lower():
            raise ZkflError(f"the shared verifier behind {address} is not the backend's")
        if [bytes(w) for w in adapter.functions.vka().call()] != shared.vka_words:
            raise ZkflError(f"the verifier at {address} holds another circuit's verifying key")
        return
    if deployed != compiled(source).runtime.lower():
        raise ZkflError(f"the verifier at {address} was not generated from this task's verifying key")
