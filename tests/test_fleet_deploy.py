"""`prefect deploy` registers the project's deployments against a running Prefect server (the session's test
server): the campaign and publish flows with their typed parameters and schedules, the generate-shard flow on
the `gpu` pool, the publish trigger on approvals; and the campaign flow shards its jobs over GPU workers when
asked to."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def test_prefect_deploy_registers_the_deployments_on_their_pools(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from flows.shard import ensure_pools

    pools = {p["name"]: p for p in ensure_pools()}
    assert {"gpu", "cpu"} <= set(pools) and pools["gpu"]["type"] == "process"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(tmp_path / "prefect")}
    prefect = [sys.executable, "-m", "prefect"]
    done = subprocess.run([*prefect, "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with get_client(sync_client=True) as client:
        deps = {d.name: d for d in client.read_deployments()}
    assert {"campaign", "publish", "generate-shard", "revisions"} <= set(deps)
    camp, shard, pub = deps["campaign"], deps["generate-shard"], deps["publish"]
    assert (camp.work_pool_name, shard.work_pool_name, pub.work_pool_name) == ("gpu", "gpu", "cpu")
    props = camp.parameter_openapi_schema["properties"]
    assert props["brief_path"]["type"] == "string" and props["gpu_workers"]["type"] == "integer"
    assert camp.parameters == {"brief_path": "examples/brief.yaml", "gpu_workers": 0}
    assert camp.schedules[0].schedule.cron == "0 6 * * 1" and camp.schedules[0].active is False
    assert pub.schedules[0].schedule.interval.total_seconds() == 900
    shard_props = shard.parameter_openapi_schema["properties"]
    assert {"campaign", "slot", "shard_size", "lease_seconds", "qc"} <= set(shard_props)
    assert shard_props["qc"]["type"] == "boolean"
    assert pub.global_concurrency_limit is not None and pub.global_concurrency_limit.limit == 1


def test_an_approval_event_runs_the_publish_deployment_for_that_campaign(tmp_path):
    """The `publish` deployment's trigger (prefect.yaml) turns `wanflow.clip.approved` into a publish run of the
    event's campaign; without a Prefect server nothing is sent."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows import events

    with get_client(sync_client=True) as client:
        if not any(d.name == "publish" for d in client.read_deployments()):
            test_prefect_deploy_registers_the_deployments_on_their_pools(tmp_path)
        pub = next(d for d in client.read_deployments() if d.name == "publish")
        automations = [a for a in client.read_automations()
                       if events.CLIP_APPROVED in getattr(a.trigger, "expect", set())]
        assert automations and any(getattr(act, "deployment_id", None) == pub.id
                                   for a in automations for act in a.actions)
        with temporary_settings(updates={PREFECT_API_URL: None}):
            assert events.clip_approved("no-server", 1, "ann") is False
        assert events.clip_approved("trigger-test", 7, "ann")
        of_publish = DeploymentFilter(id=DeploymentFilterId(any_=[pub.id]))
        deadline, runs = time.monotonic() + 90, []
        while time.monotonic() < deadline and not runs:
            time.sleep(1)
            runs = [r for r in client.read_flow_runs(deployment_filter=of_publish)
                    if r.parameters.get("campaign") == "trigger-test"]
    assert len(runs) == 1, "the approval event did not start a publish run for its campaign"


def test_campaign_flow_shards_its_jobs_over_gpu_workers(settings):
    """gpu_workers=2: the flow starts one `generate-shard` run on the gpu pool and works as the other. No Prefect
    worker serves the pool here, so that run never starts: the flow does every job itself, QCs them, and
    cancels the run it started once nothing is left for it."""
    from conftest import EXAMPLES
    from prefect.client.orchestration import get_client
    from prefect.flows import Flow
    from sqlalchemy import func, select

    from catalog.db import open_catalog, session_scope
    from catalog.models import GenerationJob, QcResult, ShardRun
    from flows.campaign import campaign
    from flows.shard import ensure_pools, ensure_slots

    ensure_pools()
    ensure_slots([settings.gpu_slot])
    Flow.from_source(str(ROOT), "flows/shard.py:generate_shard").deploy(name="generate-shard", work_pool_name="gpu",
                                                                         print_next_steps=False)
    out = campaign(str(EXAMPLES / "brief.yaml"), settings, gpu_workers=2)
    assert (out["jobs_planned"], out["clips_generated"]) == (6, 6)
    assert out["qc_outcomes"] == {"pass": 0, "needs_review": 6, "block": 0}  # the shard worker's QC, validated
    with session_scope(open_catalog(settings.catalog_db_url)) as s:
        assert {j.claims for j in s.scalars(select(GenerationJob))} == {1}
        shards = s.scalars(select(ShardRun)).all()
        assert shards and {r.slot for r in shards} == {settings.gpu_slot} and {r.status for r in shards} == {"done"}
        assert s.scalar(select(func.count(func.distinct(QcResult.asset_id)))) == 6
    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs() if r.name == "spring-launch-shard-worker-1"]
    assert runs and all(r.state.is_cancelled() for r in runs[-1:])
