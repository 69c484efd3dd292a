"""Proving benchmark: per model and batch, circuit size and setup/prove/verify costs.

Writes bench/results/prove.json and prints a table. Medians over --repeats runs.
Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from zkfl.circuits.cache import build_circuit
from zkfl.circuits.registry import family
from zkfl.circuits.spec import ModelSpec
from zkfl.prover.binding import binding_chunks
from zkfl.prover.ezkl_backend import ensure_keys, prove_step, verify_step
from zkfl.prover.quantize import Quantizer

RESULTS = Path(__file__).resolve().parent / "results" / "prove.json"
CASES = [("logreg", 30, 16), ("logreg", 30, 32)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_case(model: str, features: int, batch: int, repeats: int) -> dict[str, object]:
    spec = ModelSpec(model, features, batch, 12, 0.5)
    q = Quantizer(spec.scale)
    start = time.perf_counter()
    artifacts = build_circuit(spec)
    build_s = time.perf_counter() - start
    setup_cached = artifacts.pk.exists()
    start = time.perf_counter()
    ensure_keys(artifacts)
    setup_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    theta = q.to_int(rng.normal(0, 0.3, spec.param_count))
    x = q.to_int(rng.uniform(-3, 3, (batch, features)))
    y = q.to_int(rng.integers(0, 2, batch))
    binding = binding_chunks(bytes(range(32)))
    prove_times, verify_times, float_times = [], [], []
    proof_bytes = 0
    for _ in range(repeats):
        proof = prove_step(artifacts, theta, x, y, binding)
        prove_times.append(proof.prove_seconds)
        proof_bytes = len(proof.proof_bytes)
        start = time.perf_counter()
        ok, _ = verify_step(artifacts, proof.proof)
        verify_times.append((time.perf_counter() - start) * 1000)
        assert ok
        start = time.perf_counter()
        family(model).float_step(spec, q.to_float(theta), q.to_float(x), q.to_float(y))
        float_times.append((time.perf_counter() - start) * 1000)
    settings = artifacts.settings_json()
    return {
        "model": model, "features": features, "batch": batch, "params": spec.param_count,
        "rows": settings["num_rows"], "logrows": settings["run_args"]["logrows"],
        "build_s": round(build_s, 2), "setup_s": round(setup_s, 2), "setup_cached": setup_cached,
        "prove_s": round(statistics.median(prove_times), 2), "verify_ms": round(statistics.median(verify_times), 1),
        "proof_bytes": proof_bytes, "peak_rss_mb": round(peak_rss_mb()),
        "float_step_ms": round(statistics.median(float_times), 3),
        "repeats": repeats,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = [bench_case(m, f, b, args.repeats) for m, f, b in CASES]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": "2-core CPU", "ezkl": "23.0.5", "results": rows}, indent=2))
    header = ["model", "features", "batch", "params", "rows", "logrows", "setup_s", "prove_s", "verify_ms",
              "proof_bytes", "peak_rss_mb", "float_step_ms"]
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
