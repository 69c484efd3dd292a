"""The ezkl backend: halo2 with KZG on BN254, for every model family and for FedAvg.

``circuit`` exports a step to ONNX and compiles it, ``prove`` makes and verifies proofs,
``keys`` rebuilds a task's keys from its package, ``evm`` generates the Solidity verifiers,
``srs`` caches the structured reference string, ``aggregation`` builds and proves FedAvg.
"""
