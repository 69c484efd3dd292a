from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zkfl.aggregator.fedavg import divide_round_half_away, fedavg
from zkfl.errors import ZkflError
from zkfl.field.quantize import FIELD_MODULUS, Quantizer, felt_to_int, felts_to_ints, int_to_felt, ints_to_felts


def test_rounds_half_away_from_zero() -> None:
    q = Quantizer(2)  # quantum 0.25
    assert q.to_int([0.125, -0.125, 0.375, -0.375, 0.1]).tolist() == [1, -1, 2, -2, 0]


def test_negative_values_are_field_negatives() -> None:
    felt = int_to_felt(-1)
    assert int.from_bytes(bytes.fromhex(felt), "little") == FIELD_MODULUS - 1
    assert felt_to_int(felt) == -1


@given(st.lists(st.integers(min_value=-(2**60), max_value=2**60), max_size=50))
def test_felt_roundtrip(values: list[int]) -> None:
    assert felts_to_ints(ints_to_felts(np.array(values, dtype=np.int64))).tolist() == values


def test_quantizer_refuses_nan_and_out_of_range() -> None:
    with pytest.raises(ZkflError, match="NaN"):
        Quantizer(12).to_int([np.nan])
    with pytest.raises(ZkflError, match="range"):
        Quantizer(12).to_int([1e9])


def test_division_rounds_half_away() -> None:
    assert [divide_round_half_away(n, 4) for n in (2, -2, 1, -1, 3, -3, 6)] == [1, -1, 0, 0, 1, -1, 2]


def test_fedavg_weights_by_samples_and_rescales() -> None:
    # updates at scale 3 (8ths), model at scale 1 (halves): (16*1 + 48*3)/64 = 2.5 units of 1/8 -> 2.5/4 = 0.625 -> 1
    expected = [divide_round_half_away(16 * 16 + 24 * 48, 64 * 4)]
    assert fedavg([[16], [24]], [16, 48], update_scale=3, model_scale=1) == expected


@given(
    st.lists(st.lists(st.integers(-(2**40), 2**40), min_size=3, max_size=3), min_size=1, max_size=6),
    st.data(),
)
def test_fedavg_is_within_half_a_quantum_of_the_exact_average(updates: list[list[int]], data: st.DataObject) -> None:
    samples = data.draw(st.lists(st.integers(1, 500), min_size=len(updates), max_size=len(updates)))
    shift = 7
    result = fedavg(updates, samples, update_scale=10 + shift, model_scale=10)
    exact = np.array(updates, dtype=object).T.dot(np.array(samples, dtype=object)) / (sum(samples) * 2**shift)
    for got, want in zip(result, exact, strict=True):
        assert abs(got - float(want)) <= 0.5 + 1e-9


def test_fedavg_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        fedavg([], [], 12, 12)
    with pytest.raises(ValueError):
        fedavg([[1], [1, 2]], [1, 1], 12, 12)
    with pytest.raises(ValueError):
        fedavg([[1]], [0], 12, 12)
