"""zkfl on IPFS: artifacts added to and fetched from IPFS nodes, gateways and pinning services."""
