"""prefect.yaml declares the deployments, and each entrypoint resolves to the real flow."""

from __future__ import annotations

import yaml
from conftest import ROOT
from prefect.flows import load_flow_from_entrypoint


def test_prefect_yaml_deployments_point_at_real_flows(monkeypatch):
    monkeypatch.chdir(ROOT)
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert {"campaign", "publish", "revisions", "rollout-evaluate"} <= set(deployments)
    assert deployments["rollout-evaluate"]["work_pool"]["name"] == "gpu"
    assert deployments["campaign"]["schedules"][0]["cron"]
    assert deployments["campaign"]["work_pool"]["name"] == "gpu"
    assert deployments["publish"]["work_pool"]["name"] == "cpu"
    for name, d in deployments.items():
        flow = load_flow_from_entrypoint(d["entrypoint"])
        assert flow.name == name
        assert set(d["parameters"]) <= set(flow.parameters.properties)
