"""The Flower example app: zkfl's verified FedAvg with one poisoning node (see ../run.py)."""
