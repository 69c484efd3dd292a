"""Cold and warm `client train`: what a participant waits for, end to end.

`--all` adds softmax (minutes per proof). Cold: no local keys. The client fetches the
package's circuit and SRS, rebuilds the proving key (setup), regenerates the verifier
and checks it against the chain, then proves. Warm: the keys are cached, so it only
proves. Runs on its own anvil; writes bench/results/client.json.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

from web3 import Web3

RESULTS = Path(__file__).resolve().parent / "results" / "client.json"


def main() -> int:
    from zkfl.contracts.chain import account_from_key, connect, dev_keys, start_anvil
    from zkfl.datasets import load, shard
    from zkfl.middleware.client import Client
    from zkfl.organisation import post_task
    from zkfl.prover.ezkl.circuit import build_circuit
    from zkfl.prover.ezkl.keys import drop_cached_keys

    keys = dev_keys()
    rows = []
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        for model in ("logreg", "softmax") if "--all" in sys.argv else ("logreg",):
            dataset = "breast_cancer" if model == "logreg" else "digits"
            posted = post_task(w3, account_from_key(keys[0]), model=model, dataset=dataset, rounds=1,
                               reward_wei=Web3.to_wei(1, "ether"), min_stake_wei=Web3.to_wei(0.1, "ether"),
                               deadline_seconds=3600)
            client = Client(anvil.rpc_url, posted.task_id, keys[2], federation=posted.federation,
                            show_progress=False)
            client.join()
            x, y = shard(load(dataset), 1, 4)
            cold_times = []
            for _ in range(3):
                # Cold as on a participant's own machine: no keys, and not the organisation's build of
                # the spec's circuit either (a participant compiles it from the spec itself); a fresh
                # client, as a new process would be (a loaded one holds its circuit).
                drop_cached_keys(client.package)
                shutil.rmtree(build_circuit(client.package.spec).root)
                client = Client(anvil.rpc_url, posted.task_id, keys[2], federation=posted.federation,
                                show_progress=False)
                start = time.perf_counter()
                client.train(x, y)
                cold_times.append(time.perf_counter() - start)
            warm_times = []
            for _ in range(2):
                start = time.perf_counter()
                client.train(x, y)
                warm_times.append(time.perf_counter() - start)
            rows.append({"model": model, "dataset": dataset, "cold_s": round(statistics.median(cold_times), 2),
                         "warm_s": round(statistics.median(warm_times), 2)})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"results": rows}, indent=2))
    print("model | cold client train s | warm client train s")
    for row in rows:
        print(f"{row['model']} | {row['cold_s']} | {row['warm_s']}")
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
