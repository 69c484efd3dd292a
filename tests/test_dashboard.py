from __future__ import annotations

from fastapi.testclient import TestClient

from tests.test_federation_contract import new_task
from zkfl.dashboard.app import create_app


def test_dashboard_serves_tasks_from_the_chain(anvil, federation, accounts, verifier_address, initial_model) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model, tuple(accounts[2:5]))
    client = TestClient(create_app(anvil.rpc_url, federation.address))
    tasks = client.get("/api/tasks").json()
    assert any(t["task_id"] == task_id for t in tasks)
    status = client.get(f"/api/tasks/{task_id}").json()
    assert status["rounds"][0]["accepted"] == [] and len(status["participants"]) == 3
    assert client.get("/api/tasks/9999").status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and "zkfl" in page.text
    assert "/api/tasks/{task_id}" in client.get("/openapi.json").json()["paths"]


def test_live_events_and_vendored_charts(anvil, federation, accounts, verifier_address, initial_model) -> None:  # type: ignore[no-untyped-def]
    import json

    task_id = new_task(federation, accounts, verifier_address, initial_model)
    client = TestClient(create_app(anvil.rpc_url, federation.address))
    script = client.get("/vendor/uplot.js")
    assert script.status_code == 200 and "uPlot" in script.text  # served locally: no CDN
    assert client.get("/vendor/uplot.css").status_code == 200
    assert "/vendor/uplot.js" in client.get("/").text
    with client.stream("GET", f"/api/tasks/{task_id}/events?poll=0.2") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: status"
        data = next(lines)
        assert data.startswith("data: ")
        assert json.loads(data[len("data: "):])["task_id"] == task_id
    assert client.get("/api/tasks/9999/events").status_code == 404
