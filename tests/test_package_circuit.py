"""A package's ezkl circuit must be its spec's: a participant, an aggregator and an auditor
compile the spec's graph themselves, and refuse a package whose settings or keys are not
that graph's (zkfl.prover.ezkl.keys). The attack: an organisation ships a step whose update
carries a row of the participant's data, under public values that look right."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.conftest import aggregation_verifier_for, task_params
from zkfl.artifacts import TaskPackage
from zkfl.audit import Check, audit_task
from zkfl.circuits.registry import family
from zkfl.errors import ZkflError
from zkfl.field.ezkl_api import ezkl
from zkfl.prover.ezkl.circuit import CircuitArtifacts, example_inputs, quiet_stdout, run_args
from zkfl.prover.ezkl.keys import artifacts_from_package, package_root
from zkfl.prover.ezkl.prove import ensure_keys
from zkfl.store import LocalStore


class LeakyStep(torch.nn.Module):
    """The spec's step, except that its update carries the batch's first row in its first weights."""

    def __init__(self, honest: torch.nn.Module, update_output: int) -> None:
        super().__init__()
        self.honest, self.update_output = honest, update_output

    def forward(self, theta, x, y, binding):  # type: ignore[no-untyped-def]
        outputs = list(self.honest(theta, x, y, binding))
        update = outputs[self.update_output]
        row = x[:1].reshape(1, -1)
        leak = torch.cat([row, torch.zeros(1, update.numel() - row.shape[1])], dim=1)
        outputs[self.update_output] = update + leak.reshape(update.shape)
        return tuple(outputs)


def _leaky_circuit(artifacts: CircuitArtifacts, root: Path, settings: Path | None) -> CircuitArtifacts:
    """The leaky step compiled with its own settings, or with ``settings`` (the honest ones), and set up
    on the task's SRS."""
    spec = artifacts.spec
    leaky = CircuitArtifacts(spec, root, srs_file=artifacts.srs)
    root.mkdir(parents=True)
    module = LeakyStep(family(spec.family).step_module(spec), spec.update_output)
    inputs = example_inputs(spec)
    torch.onnx.export(module, inputs, str(leaky.onnx), input_names=["theta", "x", "y", "binding"],
                      output_names=list(spec.step_outputs), dynamo=False, opset_version=17)
    with quiet_stdout():
        if settings is None:
            data = root / "calibration.json"
            data.write_text(json.dumps({"input_data": [t.flatten().tolist() for t in inputs]}))
            ezkl.gen_settings(str(leaky.onnx), str(leaky.settings), py_run_args=run_args(spec))
            ezkl.calibrate_settings(str(data), str(leaky.onnx), str(leaky.settings), target="resources",
                                    scales=[spec.scale])
        else:
            shutil.copy(settings, leaky.settings)
        ezkl.compile_circuit(str(leaky.onnx), str(leaky.compiled), str(leaky.settings))
    ensure_keys(leaky)
    return leaky


def _package(store: LocalStore, artifacts: CircuitArtifacts, shipped: CircuitArtifacts) -> TaskPackage:
    cids = {"settings": store.put_file(shipped.settings), "compiled": store.put_file(shipped.compiled),
            "vk": store.put_file(shipped.vk), "srs": store.put_file(artifacts.srs)}
    return TaskPackage(artifacts.spec, "breast_cancer", "ezkl", artifacts.update_scale, cids)


def test_a_package_whose_step_leaks_the_data_is_refused_before_any_proof(  # type: ignore[no-untyped-def]
        artifacts, federation, accounts, verifier_address, initial_model, tmp_path) -> None:
    store = LocalStore(tmp_path / "store")
    # The organisation's own settings for its leaky graph: not those the spec derives.
    own = _leaky_circuit(artifacts, tmp_path / "own", None)
    with pytest.raises(ZkflError, match="step circuit settings are not the ones zkfl derives from its spec"):
        artifacts_from_package(_package(store, artifacts, own), store)
    # The spec's settings, the leaky graph compiled with them and its keys: the keys are not the spec's.
    disguised = _leaky_circuit(artifacts, tmp_path / "disguised", artifacts.settings)
    assert disguised.vk.read_bytes() != artifacts.vk.read_bytes()
    with pytest.raises(ZkflError, match="verifying key of the step circuit built from the package's spec differs"):
        artifacts_from_package(_package(store, artifacts, disguised), store)
    # An auditor of a task posted with such a package says why, and checks nothing it would prove.
    params = replace(task_params(accounts[1].address, verifier_address, initial_model,
                                 aggregation_verifier=aggregation_verifier_for(federation)),
                     package_cid=_package(store, artifacts, own).put(store))
    findings = audit_task(federation, federation.create_task(accounts[0], params, 10**18), store).findings
    assert [(f.check, f.ok) for f in findings] == [(Check.STEP_CIRCUIT, False)]
    assert "step circuit settings are not the ones zkfl derives from its spec" in findings[0].detail
    # The honest package loads, and what it proves with is compiled here, not the shipped bytes.
    honest = artifacts_from_package(_package(store, artifacts, artifacts), store)
    assert honest.vk.read_bytes() == artifacts.vk.read_bytes()
    assert honest.compiled.read_bytes() != disguised.compiled.read_bytes()


def test_a_package_whose_fedavg_circuit_is_another_is_refused(  # type: ignore[no-untyped-def]
        artifacts, aggregation, federation, accounts, verifier_address, initial_model, tmp_path) -> None:
    """The FedAvg circuit shipped for K slots must be the spec's FedAvg over K: the step's circuit
    (or one over other slots) under the aggregation role is refused by whoever loads it."""
    store = LocalStore(tmp_path / "store")
    step = _package(store, artifacts, artifacts)
    fedavg = aggregation.artifacts
    artifacts_from_package(step, store)  # the step's own folder, checked and cached first
    # The step's four files again, under the FedAvg circuit's role.
    wrong = {**step.artifacts, **{f"aggregation.{role}": cid for role, cid in step.artifacts.items()}}
    package = TaskPackage(artifacts.spec, "breast_cancer", "ezkl", artifacts.update_scale, wrong,
                          aggregation_slots=fedavg.slots)
    with pytest.raises(ZkflError, match="aggregation circuit settings are not the ones zkfl derives from its spec"):
        artifacts_from_package(package, store, "aggregation")
    params = replace(task_params(accounts[1].address, verifier_address, initial_model,
                                 aggregation_verifier=aggregation_verifier_for(federation)),
                     package_cid=package.put(store))
    findings = audit_task(federation, federation.create_task(accounts[0], params, 10**18), store).findings
    failed = {f.check: f.detail for f in findings if not f.ok}
    assert "aggregation circuit settings are not the ones" in failed[Check.AGGREGATION_CIRCUIT]
    assert Check.AGGREGATION_VERIFIER in failed and Check.STEP_CIRCUIT not in failed
    right = {**step.artifacts, **{f"aggregation.{role}": store.put_file(path) for role, path in
                                  {"settings": fedavg.settings, "compiled": fedavg.compiled, "vk": fedavg.vk,
                                   "srs": fedavg.srs}.items()}}
    loaded = artifacts_from_package(TaskPackage(artifacts.spec, "breast_cancer", "ezkl", artifacts.update_scale,
                                                right, aggregation_slots=fedavg.slots), store, "aggregation")
    assert loaded.vk.read_bytes() == fedavg.vk.read_bytes()


def test_a_folder_checked_for_one_package_is_never_reused_for_another(artifacts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Another spec naming the same files (a learning rate of 0.25 under the 0.5 step's settings, keys
    and SRS) is refused though the first package's folder was checked and cached; the refusal is
    remembered, so a second load refuses at once instead of setting up again."""
    store = LocalStore(tmp_path / "store")
    honest = _package(store, artifacts, artifacts)
    artifacts_from_package(honest, store)
    other = replace(honest, spec=replace(artifacts.spec, learning_rate=artifacts.spec.learning_rate / 2))
    assert package_root(other) != package_root(honest)
    for _ in range(2):
        with pytest.raises(ZkflError, match="verifying key of the step circuit built from the package's spec differs"):
            artifacts_from_package(other, store)
    assert (package_root(other) / "refused.txt").exists()
    assert artifacts_from_package(honest, store).vk.read_bytes() == artifacts.vk.read_bytes()


def test_loaders_racing_over_a_corrupt_cached_key_set_up_once(artifacts, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Three loaders of one package at once, over a cached key gone bad: one sets up again, the others
    wait for it, and none reads the key while another deletes or rewrites it."""
    store = LocalStore(tmp_path / "store")
    honest = _package(store, artifacts, artifacts)
    artifacts_from_package(honest, store)
    (package_root(honest) / "vk.key").write_bytes(b"corrupt")
    setups: list[str] = []
    real_setup = ezkl.setup

    def counted_setup(*args, **kwargs):  # type: ignore[no-untyped-def]
        setups.append(args[0])
        return real_setup(*args, **kwargs)

    monkeypatch.setattr(ezkl, "setup", counted_setup)
    with ThreadPoolExecutor(max_workers=3) as pool:
        keys = list(pool.map(lambda _: artifacts_from_package(honest, store).vk.read_bytes(), range(3)))
    assert keys == [artifacts.vk.read_bytes()] * 3
    assert len(setups) == 1
    assert not (package_root(honest) / "refused.txt").exists()
