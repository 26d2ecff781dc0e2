"""The infra files are well-formed and carry what docs/deploy.md promises (Docker and Kubernetes do not run here:
these are checked as data; the loopback stack is started for real in test_fleet_stack.py)."""

from __future__ import annotations

import json

import yaml
from conftest import ROOT

INFRA = ROOT / "infra"


def test_compose_has_the_production_stack():
    compose = yaml.safe_load((INFRA / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "minio", "prefect-server", "mlflow", "setup", "gpu-worker-0", "gpu-worker-1", "cpu-worker",
            "dashboard"} <= set(services)
    mlflow = services["mlflow"]["command"]
    assert "--backend-store-uri postgresql+psycopg://" in mlflow and "s3://mlflow" in mlflow
    assert services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith(
        "postgresql+asyncpg://")
    for i in (0, 1):
        gpu = services[f"gpu-worker-{i}"]
        assert "--pool gpu" in gpu["command"] and gpu["environment"]["WANFLOW_GPU_SLOT"] == f"wanflow-gpu-{i}"
        device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["capabilities"] == ["gpu"] and device["device_ids"] == [str(i)]
    assert "--pool cpu" in services["cpu-worker"]["command"] and "devices" not in json.dumps(services["cpu-worker"])
    setup = services["setup"]["command"]
    assert "wanflow db upgrade" in setup and "fleet slots" in setup and "prefect --no-prompt deploy --all" in setup


def test_kubernetes_gpu_job_template_requests_gpus():
    template = json.loads((INFRA / "k8s" / "gpu-base-job-template.json").read_text())
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "{{ gpu_count }}"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"
    variables = template["variables"]["properties"]
    assert variables["gpu_count"]["default"] == 1 and "WANFLOW_GPU_SLOT" in variables["env"]["default"]
    # every {{ placeholder }} of the job configuration is a declared variable
    import re

    used = set(re.findall(r"{{ (\w+) }}", json.dumps(template["job_configuration"])))
    assert used <= set(variables), used - set(variables)
    docs = list(yaml.safe_load_all((INFRA / "k8s" / "workers.yaml").read_text()))
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Role", "ServiceAccount", "PersistentVolumeClaim"} <= kinds
