"""PoseidonT2.sol on anvil against the pure-Python Poseidon (zkfl.field.poseidon)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams

from zkfl.contracts.federation import EIP170_LIMIT, deploy
from zkfl.contracts.solc import CONTRACTS_DIR, CompiledContract, compile_contract
from zkfl.field.poseidon import INITIAL_CAPACITY, P, permute, poseidon_commit

LENGTHS = [1, 2, 3, 16, 31, 64]
START = [0, INITIAL_CAPACITY]


@pytest.fixture(scope="module")
def compiled() -> CompiledContract:
    return compile_contract(CONTRACTS_DIR / "PoseidonT2.sol", "PoseidonT2")


@pytest.fixture(scope="module")
def poseidon(w3: Web3, accounts: list[LocalAccount], compiled: CompiledContract) -> Contract:
    address, _ = deploy(w3, accounts[0], compiled)
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=compiled.abi)


def sponge(values: list[int], state: list[int] | None = None) -> list[int]:
    """The Python sponge's full state after absorbing values (poseidon_commit is its word 0)."""
    s0, s1 = state if state is not None else START
    for v in values:
        s0, s1 = permute([(s0 + v) % P, s1])
    return [s0, s1]


def message(kind: str, n: int, seed: int) -> list[int]:
    rng = random.Random(f"{kind}-{n}-{seed}")
    if kind == "field":
        return [rng.randrange(P) for _ in range(n)]
    return [rng.randrange(2**16) for _ in range(n)]  # 16-bit chunks, as binding/quantised values are


def test_deployed_code_is_the_compiled_runtime(w3: Web3, poseidon: Contract, compiled: CompiledContract) -> None:
    code = bytes(w3.eth.get_code(poseidon.address))
    assert code.hex() == compiled.runtime[2:]
    assert len(code) == compiled.deployed_size < EIP170_LIMIT


@pytest.mark.parametrize("kind", ["field", "small"])
@pytest.mark.parametrize("n", LENGTHS)
def test_hash_equals_poseidon_commit(poseidon: Contract, kind: str, n: int) -> None:
    for seed in range(2):
        m = message(kind, n, seed)
        expected = poseidon_commit(m)
        assert poseidon.functions.hash(m).call() == expected
        assert poseidon.functions.absorb(START, m).call() == sponge(m)


def test_known_values(poseidon: Contract) -> None:
    """Edge inputs: zeros, p - 1, and the hash of one element differs from its neighbours'."""
    for m in ([0], [0, 0], [P - 1], [P - 1, P - 1, 1], [1], [2]):
        assert poseidon.functions.hash(m).call() == poseidon_commit(m)
    assert len({poseidon.functions.hash([v]).call() for v in (0, 1, 2, P - 1)}) == 4


def test_elements_and_state_are_reduced_mod_p(poseidon: Contract) -> None:
    m = message("field", 5, 9)
    lifted = [v + P for v in m[:3]] + [m[3] + 4 * P, m[4]]  # all still below 2**256
    assert lifted[3] < 2**256
    assert poseidon.functions.hash(lifted).call() == poseidon_commit(lifted) == poseidon_commit(m)
    top = [2**256 - 1]
    assert poseidon.functions.hash(top).call() == poseidon_commit(top) == poseidon_commit([(2**256 - 1) % P])
    state = sponge(m[:2])
    assert poseidon.functions.absorb([state[0] + P, state[1] + P], m[2:]).call() == sponge(m)
    assert poseidon.functions.absorb([2**256 - 1, 2**256 - 1], []).call() == [(2**256 - 1) % P] * 2


def test_absorb_in_pieces_equals_the_whole_hash(poseidon: Contract) -> None:
    m = message("field", 31, 3)
    whole = poseidon_commit(m)
    for cut in (0, 1, 2, 15, 30, 31):
        first = poseidon.functions.absorb(START, m[:cut]).call()
        assert first == sponge(m[:cut])
        second = poseidon.functions.absorb(first, m[cut:]).call()
        assert second == sponge(m)
        assert second[0] == whole
    small = message("small", 16, 4)
    pieces = [small[:5], small[5:6], small[6:]]
    state = START
    for piece in pieces:
        state = poseidon.functions.absorb(state, piece).call()
    assert state[0] == poseidon_commit(small)


def test_empty_message(poseidon: Contract) -> None:
    with pytest.raises(Exception, match="empty message"):
        poseidon.functions.hash([]).call()
    assert poseidon.functions.absorb(START, []).call() == START


def test_gas_per_permutation(poseidon: Contract, accounts: list[LocalAccount], compiled: CompiledContract,
                             capsys: pytest.CaptureFixture[str],
                             record_property: Callable[[str, object], None]) -> None:
    sender: TxParams = {"from": accounts[0].address}
    one = message("field", 1, 5)
    sixteen = message("field", 16, 5)
    gas_1 = poseidon.functions.hash(one).estimate_gas(sender)
    gas_16 = poseidon.functions.hash(sixteen).estimate_gas(sender)
    small_16 = poseidon.functions.hash(message("small", 16, 5)).estimate_gas(sender)
    per_permutation = (gas_16 - gas_1) / 15
    for name, value in (("gas_hash_1", gas_1), ("gas_hash_16", gas_16), ("gas_per_permutation", per_permutation),
                        ("deployed_size", compiled.deployed_size)):
        record_property(name, value)
    with capsys.disabled():
        print(f"\nPoseidonT2: deployed {compiled.deployed_size} bytes; estimate_gas hash(1 elt) = {gas_1}, "
              f"hash(16 field elts) = {gas_16} ({per_permutation:.0f} per extra permutation, calldata included), "
              f"hash(16 16-bit elts) = {small_16}")
    # Budgets, with headroom over what this implementation costs (about 29.9k and 8.4k per permutation).
    assert 21_000 < gas_1 < 32_000
    assert 7_000 < per_permutation < 9_000
