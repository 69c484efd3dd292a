"""FedAvg in exact integer arithmetic. The rule lives in :mod:`zkfl.prover.fedavg`, beside the
quantizer it matches, so that participants can recompute a global model without importing the
aggregator; this module keeps the aggregator's name for it."""

from zkfl.prover.fedavg import divide_round_half_away, fedavg

__all__ = ["divide_round_half_away", "fedavg"]
