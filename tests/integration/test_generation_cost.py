"""Generation cost and the steps sweep through the real stack: generation records the facts of
every sample; the version API, leaderboard page / JSON / CSV and model page show cost, NFE and
the Pareto frontier; the steps sweep is idempotent and plotted. Tiny random native generators."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings

from evaluation.models import MetricStatus, Sample, StepsSweepPoint
from evaluation.sample_store import generate_samples
from evaluation.services import metric_result_store
from evaluation.steps_sweep import SweepRequestError, steps_sweep_run
from models_registry.generators.measurement import cpu_model_name
from models_registry.models import VersionStatus
from tests.integration.registry_support import (
    create_model,
    create_version,
    make_user,
    token_client,
)
from tests.integration.test_generation_task import register_tiny, tiny_prompt_set
from tests.unit.test_generators_native import tiny

pytestmark = pytest.mark.django_db

PRICES = {"cpu": 0.36, "cuda": 2.0, "H100": 2.5}  # $0.36/h: $0.0001 per CPU-second


def _published(version):
    version.status = VersionStatus.PUBLISHED
    version.save(update_fields=["status"])
    return version


def test_generation_records_device_dtype_batch_steps_nfe_and_memory_per_sample(tmp_path):
    version = register_tiny(tmp_path, "tiny-flow")  # Euler 2 steps, CFG 2: NFE 4
    tiny_prompt_set()
    report = generate_samples(
        version_id=version.id, prompt_set_slug="tiny-t2i", seeds=[0, 1], batch_size=4
    )
    assert report.created == 6
    samples = list(Sample.objects.filter(version=version).order_by("id"))
    assert sorted(s.batch_size for s in samples) == [2, 2, 4, 4, 4, 4]  # batches of 4 then 2
    for s in samples:
        assert (s.device_kind, s.dtype, s.steps, s.nfe) == ("cpu", "float32", 2, 4)
        assert s.device_name == cpu_model_name()
        assert s.peak_memory_kind == "process_max_rss" and s.peak_memory_bytes > 10_000_000
        assert s.generation_seconds > 0


@override_settings(GENERATION_PRICES=PRICES)
def test_version_api_body_reports_generation_cost_and_steps_sweep(tmp_path):
    version = register_tiny(tmp_path, "tiny-flow")
    tiny_prompt_set()
    generate_samples(version_id=version.id, prompt_set_slug="tiny-t2i", seeds=[0], batch_size=2)
    client = token_client(make_user("reader"))
    body = client.get(f"/api/v1/versions/{version.id}/").json()
    g = body["generation"]
    seconds = sorted(
        Sample.objects.filter(version=version).values_list("generation_seconds", flat=True)
    )
    assert g["n"] == g["n_priced"] == 3
    assert g["seconds_median"] == pytest.approx(seconds[1])
    assert g["cost_per_sample_median"] == pytest.approx(seconds[1] * 0.36 / 3600)
    # 16 × 16 pixels = 0.000256 MP per image.
    assert g["cost_per_megapixel_median"] == pytest.approx(seconds[1] * 0.0001 / 0.000256)
    assert g["cost_per_video_second_median"] is None
    assert (g["price_key"], g["price_per_hour"], g["nfe"], g["steps"]) == ("cpu", 0.36, 4, 2)
    assert g["mixed"] == ["batch_size"]  # batches of 2 and 1
    assert body["steps_sweep"] == []
    steps_sweep_run(version_id=version.id, nfe_budgets=[4], prompt_set_slug="tiny-t2i")
    body = client.get(f"/api/v1/versions/{version.id}/").json()
    [point] = body["steps_sweep"]
    assert (point["metric"], point["sampler"], point["steps"], point["nfe"]) == (
        "prompt_agreement",
        "euler",
        2,
        4,
    )
    assert point["status"] == "ok" and 0 <= point["value"] <= 1 and point["n"] == 3


@override_settings(GENERATION_PRICES=PRICES)
def test_leaderboard_shows_cost_columns_json_csv_and_the_pareto_plot(tmp_path):
    tiny_prompt_set()
    cheap = _published(register_tiny(tmp_path, "tiny-cheap"))
    dear = _published(
        register_tiny(
            tmp_path,
            "tiny-dear",
            config=tiny("flow", {"name": "heun", "steps": 6, "guidance_scale": 2.0}),
        )
    )
    for version, seconds in ((cheap, 0.01), (dear, 0.06)):
        generate_samples(version_id=version.id, prompt_set_slug="tiny-t2i", seeds=[0, 1])
        # Fixed times (the measured ones vary with the shared CPU): $ per MP known exactly.
        Sample.objects.filter(version=version).update(generation_seconds=seconds)
    # The cheap model also scores better: it alone is Pareto-optimal.
    for version, value in ((cheap, 0.9), (dear, 0.5)):
        metric_result_store(
            version=version, metric="prompt_agreement", backbone="checker", value=value, n=6
        )
    client = Client()
    board = client.get("/leaderboard/text-to-image.json").json()
    rows = {r["model"]: r for r in board["rows"]}
    assert rows["tiny-cheap"]["generation"]["nfe"] == 4
    assert rows["tiny-dear"]["generation"]["nfe"] == 24  # Heun 6 steps × 2 calls × CFG
    assert rows["tiny-dear"]["generation"]["version"] == "v1"
    cost = board["quality_cost"]
    assert cost["quality"] == "prompt_agreement" and cost["direction"] == "higher"
    # 0.01 s × $0.36/h = $1e-6 per 16 × 16 image = $1e-6 / 0.000256 MP.
    assert rows["tiny-cheap"]["generation"]["cost_per_megapixel_median"] == pytest.approx(
        1e-6 / 0.000256
    )
    assert cost["frontier"] == ["tiny-cheap"]
    assert {p["model"]: p["pareto"] for p in cost["points"]} == {
        "tiny-cheap": True,
        "tiny-dear": False,
    }

    text = client.get("/leaderboard/text-to-image.csv").content.decode()
    table = list(csv.DictReader(io.StringIO(text)))
    by_model = {r["model"]: r for r in table}
    assert by_model["tiny-dear"]["generation_nfe"] == "24"
    assert float(by_model["tiny-cheap"]["generation_cost_per_megapixel_median"]) > 0
    assert by_model["tiny-cheap"]["generation_device_name"] == cpu_model_name()

    html = client.get("/leaderboard/text-to-image/").content.decode()
    assert "$ / MP" in html and 'id="quality-cost-plot"' in html
    assert "Pareto frontier" in html and "tiny-cheap ★" in html


@override_settings(GENERATION_PRICES=PRICES)
def test_steps_sweep_is_idempotent_per_version_metric_sampler_and_steps(tmp_path):
    version = register_tiny(tmp_path, "tiny-flow")  # Euler with CFG: NFE = 2 × steps
    tiny_prompt_set()
    points = steps_sweep_run(
        version_id=version.id, nfe_budgets=[1, 2, 4, 8], prompt_set_slug="tiny-t2i", seeds=[0, 1]
    )
    # Budget 1 cannot hold one guided step; 2, 4, 8 give 1, 2, 4 steps.
    assert [(p.nfe_budget, p.steps, p.nfe) for p in points] == [(2, 1, 2), (4, 2, 4), (8, 4, 8)]
    for p in points:
        assert p.status == MetricStatus.OK and p.n == 6 and 0 <= p.value <= 1
        assert p.lower <= p.value <= p.upper and p.seconds_per_sample > 0
        assert p.guidance_scale == 2.0 and p.details["planned_nfe"] == p.nfe
    stamps = {p.id: p.updated_at for p in points}
    again = steps_sweep_run(
        version_id=version.id, nfe_budgets=[1, 2, 4, 8], prompt_set_slug="tiny-t2i", seeds=[0, 1]
    )
    assert {p.id: p.updated_at for p in again} == stamps  # nothing regenerated
    assert StepsSweepPoint.objects.filter(version=version).count() == 3
    forced = steps_sweep_run(
        version_id=version.id, nfe_budgets=[2], prompt_set_slug="tiny-t2i", seeds=[0, 1], force=True
    )
    assert forced[0].updated_at > stamps[forced[0].id]
    # Same samples (same seeds, deterministic sampler): the forced value is the same.
    assert forced[0].value == points[0].value
    # Another sampler is another series: Heun with CFG takes 4 evaluations per step.
    heun = steps_sweep_run(
        version_id=version.id,
        nfe_budgets=[4, 8],
        sampler="heun",
        prompt_set_slug="tiny-t2i",
        seeds=[0],
    )
    assert [(p.sampler, p.steps, p.nfe) for p in heun] == [("heun", 1, 4), ("heun", 2, 8)]
    assert StepsSweepPoint.objects.filter(version=version).count() == 5


def test_steps_sweep_refuses_bad_requests_naming_the_field(tmp_path):
    version = register_tiny(tmp_path, "tiny-flow")
    tiny_prompt_set()
    with pytest.raises(SweepRequestError, match="^metric: .*no-such"):
        steps_sweep_run(version_id=version.id, metric="no-such", prompt_set_slug="tiny-t2i")
    with pytest.raises(SweepRequestError, match="^metric: .*fvd"):
        steps_sweep_run(version_id=version.id, metric="fvd", prompt_set_slug="tiny-t2i")
    with pytest.raises(SweepRequestError, match="^nfe_budgets: .*>= 1"):
        steps_sweep_run(version_id=version.id, nfe_budgets=[0, 2], prompt_set_slug="tiny-t2i")
    with pytest.raises(SweepRequestError, match="^nfe_budgets: no budget in \\[1\\] fits"):
        steps_sweep_run(version_id=version.id, nfe_budgets=[1], prompt_set_slug="tiny-t2i")
    with pytest.raises(SweepRequestError, match="^sampler: .*ddim"):
        steps_sweep_run(version_id=version.id, sampler="ddim", prompt_set_slug="tiny-t2i")
    with pytest.raises(SweepRequestError, match="^prompt_set: 'nope'"):
        steps_sweep_run(version_id=version.id, prompt_set_slug="nope")
    assert not StepsSweepPoint.objects.exists()


def test_steps_sweep_command_task_and_model_page_plot(tmp_path, capsys):
    from workers.tasks import gpu_steps_sweep

    version = register_tiny(tmp_path, "tiny-flow")
    tiny_prompt_set()
    spec = f"{version.model.slug}@{version.tag}"
    call_command(
        "steps_sweep", "--version", spec, "--nfe", "2,4", "--prompt-set", "tiny-t2i", "--json"
    )
    rows = json.loads(capsys.readouterr().out)
    assert [(r["steps"], r["nfe"], r["status"]) for r in rows] == [(1, 2, "ok"), (2, 4, "ok")]
    # The task finds both points stored (same version, metric, sampler, steps) and returns them.
    result = gpu_steps_sweep(version.id, nfe_budgets=[2, 4], seeds=[0], prompt_set_slug="tiny-t2i")
    assert [(r["steps"], r["nfe"]) for r in result] == [(1, 2), (2, 4)]
    html = Client().get(f"/models/{version.model.slug}/").content.decode()
    assert 'class="steps-sweep"' in html and "NFE: network evaluations per sample" in html
    assert f"{version.tag} · euler" in html
    assert "per sample (median" not in html  # no samples generated: no generation facts
    generate_samples(version_id=version.id, prompt_set_slug="tiny-t2i", seeds=[0])
    html = Client().get(f"/models/{version.model.slug}/").content.decode()
    assert "per sample (median" in html and "NFE 4 per sample" in html


def test_publishing_queues_the_versions_steps_sweep_when_configured(
    tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    import workers.tasks  # noqa: F401 (registers gpu_steps_sweep with the app)
    from config.celery import app
    from pipeline.services import version_join_arena

    settings.ARENA_AUTO_APPROVE = True
    version = register_tiny(tmp_path, "tiny-flow")  # Euler with CFG: NFE = 2 × steps
    tiny_prompt_set(n=2, slug="t2i-benchmark")
    settings.STEPS_SWEEP_ON_PUBLISH = False
    with django_capture_on_commit_callbacks() as callbacks:
        version_join_arena(version_id=version.id)
    assert callbacks == [] and not StepsSweepPoint.objects.exists()

    settings.STEPS_SWEEP_ON_PUBLISH = True
    monkeypatch.setattr(app.conf, "task_always_eager", True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        version_join_arena(version_id=version.id)
    assert len(callbacks) == 1
    points = StepsSweepPoint.objects.filter(version=version).order_by("steps")
    assert [(p.metric, p.steps, p.nfe) for p in points] == [
        ("prompt_agreement", s, 2 * s) for s in (1, 2, 4, 8, 16)
    ]
    version.refresh_from_db()
    assert version.status == VersionStatus.PUBLISHED
    # An edit model is not swept: prompt agreement cannot score an edit.
    from models_registry.models import ModelVersion
    from pipeline.services import steps_sweep_on_publish

    client = token_client(make_user("editor"))
    create_model(client, "tiny-editor", task="image-edit")
    edit = ModelVersion.objects.get(pk=create_version(client, "tiny-editor")["id"])
    with django_capture_on_commit_callbacks() as callbacks:
        assert steps_sweep_on_publish(version=edit) is False
    assert callbacks == []
