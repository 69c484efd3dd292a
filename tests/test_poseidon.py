"""The pure-Python Poseidon (zkfl.field.poseidon) against ezkl's, via commit()."""

from __future__ import annotations

import numpy as np
import pytest

from zkfl.field.commit import commit
from zkfl.field.poseidon import INITIAL_CAPACITY, MDS, ROUND_CONSTANTS, P, generate_constants, permute, poseidon_commit

LENGTHS = [1, 2, 16, 31, 32, 33, 64, 65, 650, 1100]


def test_constants_come_from_the_grain_generator() -> None:
    rows, mds = generate_constants()
    assert [tuple(row) for row in rows] == ROUND_CONSTANTS
    assert [list(row) for row in MDS] == mds
    # The first and last round constants and MDS[0][0] as ezkl's poseidon_params.rs writes them.
    assert ROUND_CONSTANTS[0][0] == 0x09C46E9EC68E9BD4FE1FAABA294CBA38A71AA177534CDD1B6C7DC0DBD0ABD7A7
    assert ROUND_CONSTANTS[63][1] == 0x269E4B5B7A2EB21AFD567970A717CEEC5BD4184571C254FDC06E03A7FF8378F0
    assert MDS[0][0] == 0x066F6F85D6F68A85EC10345351A23A3AAF07F38AF8C952A7BCECA70BD2AF7AD5


@pytest.mark.parametrize("length", LENGTHS)
def test_matches_ezkl_on_random_signed_values(length: int) -> None:
    rng = np.random.default_rng(length)
    values = rng.integers(-(2**40), 2**40, size=length, dtype=np.int64)
    assert poseidon_commit([int(v) for v in values]) == commit(values)


@pytest.mark.parametrize("length", LENGTHS)
def test_matches_ezkl_on_zeros(length: int) -> None:
    assert poseidon_commit([0] * length) == commit(np.zeros(length, dtype=np.int64))


def test_int64_extremes() -> None:
    values = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, -1, 1], dtype=np.int64)
    assert poseidon_commit([int(v) for v in values]) == commit(values)


def test_one_sponge_without_tree_or_padding() -> None:
    assert poseidon_commit([-5]) == permute([P - 5, INITIAL_CAPACITY])[0]  # one element is hashed too
    state = [0, INITIAL_CAPACITY]
    for value in range(40):
        state = permute([(state[0] + value) % P, state[1]])
    assert poseidon_commit(list(range(40))) == state[0]
    assert poseidon_commit([1, 2]) != poseidon_commit([1, 2, 0])  # trailing zeros are not padding
    with pytest.raises(ValueError):
        poseidon_commit([])


def test_inputs_valid_is_the_commitment_to_a_zero_check_everywhere() -> None:
    """H([0]), the input check's commitment for a batch within the task's bounds: ezkl's
    hash of the check output 0, the pure-Python Poseidon, zkfl's constant and the
    Federation's INPUTS_VALID (read from its source) are one number."""
    import re
    from pathlib import Path

    from zkfl.prover.records import INPUTS_VALID

    source = (Path(__file__).resolve().parent.parent / "contracts" / "FederationBase.sol").read_text()
    [on_chain] = re.findall(r"uint256 public constant INPUTS_VALID =\s*(\d+);", source)
    assert INPUTS_VALID == poseidon_commit([0]) == commit(np.zeros(1, dtype=np.int64)) == int(on_chain)
    # A violation of one quantum commits to something else: the contract tells them apart.
    assert poseidon_commit([1]) != INPUTS_VALID and poseidon_commit([0, 0]) != INPUTS_VALID
