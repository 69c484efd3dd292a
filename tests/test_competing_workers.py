"""Competing consumers on the real RabbitMQ: 200 submissions from 20 simulated clients,
processed by one verifier worker and then by three. The final state is the same."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from zkfl.aggregator.service import Aggregator
from zkfl.aggregator.state import AggregatorState
from zkfl.contracts.chain import AnvilProcess, account_from_key, chain_key, dev_keys
from zkfl.contracts.federation import Federation, Status
from zkfl.datasets import load, round_batch, shard
from zkfl.middleware.messages import UpdateSubmission
from zkfl.middleware.transport.base import task_key
from zkfl.middleware.transport.rabbitmq import RabbitMQTransport
from zkfl.organisation import PostedTask, post_task, prepare_circuit
from zkfl.prover.binding import binding_chunks
from zkfl.prover.commit import commit, commitment_hex
from zkfl.prover.ezkl_backend import StepProof, prove_step
from zkfl.prover.quantize import Quantizer

KEYS = dev_keys()
CLIENTS, CHEATERS, COPIES, GARBAGE = 20, 6, 5, 5  # 20 x (5 copies + 5 garbage) = 200 messages


def fund(w3: Web3, to: str, value: int) -> None:
    sender = account_from_key(KEYS[0])
    tx = {"to": to, "value": value, "gas": 21_000, "gasPrice": w3.eth.gas_price, "chainId": w3.eth.chain_id,
          "nonce": w3.eth.get_transaction_count(sender.address, "pending")}
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))


@pytest.fixture(scope="module")
def population(w3: Web3) -> tuple[list[LocalAccount], list[LocalAccount], list[StepProof]]:
    """20 funded client wallets, 3 relayer wallets, and one real proof per client from the
    initial model. Bindings are fixed per client, so the same proofs serve both tasks."""
    clients = [Account.create() for _ in range(CLIENTS)]
    relayers = [Account.create() for _ in range(3)]
    for account in clients + relayers:
        fund(w3, account.address, 10**18)
    data = load("breast_cancer")
    from zkfl.circuits.registry import default_spec

    artifacts = prepare_circuit(default_spec("logreg", data.features))
    spec, q = artifacts.spec, Quantizer(12)
    proofs = []
    for index in range(CLIENTS):
        x, y = round_batch(*shard(data, index + 1, CLIENTS), 0, spec.batch)
        proofs.append(prove_step(artifacts, np.zeros(spec.param_count, dtype=np.int64), q.to_int(x),
                                 q.to_int(y.reshape(-1, 1)), binding_chunks(bytes([index + 1]) * 32)))
    return clients, relayers, proofs


def messages(fed: Federation, task_id: int, clients: list[LocalAccount], proofs: list[StepProof]) -> list[bytes]:
    bodies = []
    for index, (client, proof) in enumerate(zip(clients, proofs, strict=True)):
        update = list(proof.update)
        if index < CHEATERS:
            update[0] += 1  # not the proven output: rejected on chain, and slashed
        commitment = commit(np.array(update, dtype=np.int64))
        signature = fed.sign_submission(client, task_id, 0, commitment, proof.instances, proof.proof_bytes)
        submission = UpdateSubmission(
            task_id=task_id, round=0, wallet=client.address, chain_id=fed.w3.eth.chain_id, federation=fed.address,
            backend="ezkl", num_samples=16, update_scale=proof.update_scale, update=update,
            update_commitment=commitment_hex(commitment), public_values=[commitment_hex(v) for v in proof.instances],
            proof="0x" + proof.proof_bytes.hex(), signature="0x" + signature.hex())
        body = submission.encode()
        bodies += [body] * COPIES  # re-sends of one signed submission: one effect
        data = asdict(submission)
        garbage = [b"{not json", json.dumps({**data, "schema_version": 7}).encode(),
                   json.dumps({**data, "update": [1, 2, 3]}).encode(),
                   body.replace(b'"update":[', b'"update":[NaN,', 1),
                   json.dumps({**data, "wallet": Account.create().address}).encode()]
        bodies += garbage[:GARBAGE]
    random.Random(7).shuffle(bodies)
    return bodies


def run_task(anvil: AnvilProcess, w3: Web3, rabbitmq_url: str, workers: int, tmp: Path,
             population: tuple[list[LocalAccount], list[LocalAccount], list[StepProof]]) -> dict[str, object]:
    clients, relayers, proofs = population
    posted: PostedTask = post_task(w3, account_from_key(KEYS[0]), model="logreg", dataset="breast_cancer",
                                   rounds=1, reward_wei=10**18, min_stake_wei=10**16, deadline_seconds=3600,
                                   aggregator=account_from_key(KEYS[1]).address, slots=len(clients))
    fed = Federation(w3, posted.federation)
    for index, client in enumerate(clients):
        fed.join(client, posted.task_id, 10**16, commit(binding_chunks(bytes([index + 1]) * 32)))
    key = task_key(chain_key(w3), fed.address, posted.task_id)
    with RabbitMQTransport(rabbitmq_url) as producer:
        for body in messages(fed, posted.task_id, clients, proofs):
            producer.publish_submission(key, body)
    state_path = tmp / f"state-{workers}.sqlite"
    failures: list[BaseException] = []
    instances = []

    def work(relayer: LocalAccount) -> None:
        try:
            with RabbitMQTransport(rabbitmq_url) as transport:
                aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), transport,
                                        state=AggregatorState(state_path), relayer=relayer)
                instances.append(aggregator)
                aggregator.run()
                # The round is published once everyone is decided; drain what is left.
                while (delivery := transport.receive_submission(key, timeout=1.0)) is not None:
                    aggregator.handle(delivery)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(relayers[i],), daemon=True) for i in range(workers)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not failures, failures
    state = AggregatorState(state_path)
    decisions = state.decisions(0)
    return {
        "accepted": sorted(d.wallet for d in decisions if d.status == "accepted"),
        "rejected": sorted(d.wallet for d in decisions if d.status == "rejected"),
        "on_chain_accepted": fed.round(posted.task_id, 0).accepted,
        "slashed": sorted(str(e["args"]["participant"]).lower() for e in fed.events("Slashed", posted.task_id)),
        "refusals": len(state.refusals()),
        "published": fed.round(posted.task_id, 1).global_commitment,
        "statuses": sorted(fed.submission_status(posted.task_id, 0, c.address)[0] for c in clients),
        "seconds": time.monotonic() - start,
    }


def test_one_worker_and_three_workers_reach_the_same_state(anvil: AnvilProcess, w3: Web3, rabbitmq_url: str,
                                                          tmp_path: Path, population) -> None:  # type: ignore[no-untyped-def]
    one = run_task(anvil, w3, rabbitmq_url, 1, tmp_path, population)
    three = run_task(anvil, w3, rabbitmq_url, 3, tmp_path, population)
    clients = population[0]
    honest = sorted(c.address.lower() for c in clients[CHEATERS:])
    cheaters = sorted(c.address.lower() for c in clients[:CHEATERS])
    for result in (one, three):
        assert result["accepted"] == honest
        assert result["rejected"] == cheaters == result["slashed"]
        assert result["on_chain_accepted"] == CLIENTS - CHEATERS
        assert result["refusals"] == CLIENTS * GARBAGE  # every garbage message, dead-lettered once
        assert result["statuses"] == sorted([Status.ACCEPTED] * (CLIENTS - CHEATERS) + [Status.REJECTED] * CHEATERS)
    # Same inputs, same FedAvg: the two tasks publish the same global model.
    assert one["published"] == three["published"]
