"""The ZoKrates backend: Groth16 on BN254 for the linear models.

``driver`` runs zokrates-js (WebAssembly, under Node) for compile, setup, witness and
proof; ``groth16`` verifies its proofs in pure Python (py-ecc), so an auditor needs
neither Node nor a chain; ``evm`` turns ZoKrates' generated Solidity verifier into a
verifier with the interface the Federation contract calls.
"""
