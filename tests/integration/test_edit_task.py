"""The image-edit task end to end on the database: the edit benchmark with its stored sources, the
generation stage feeding each source to an editor, the metrics stage against the oracle, and
battles that show the source beside two edits, votes and the edit leaderboard."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command

from evaluation.models import MetricResult, MetricStatus, PromptSet, Sample
from evaluation.sample_store import generate_samples, prompt_source_image, store_sample
from evaluation.services import version_metrics_compute
from models_registry.generators.synthetic import (
    EDIT_CATEGORIES,
    benchmark_edits,
    render_scene,
    scene_of_caption,
)
from models_registry.reference_models import register_reference_model
from tests.integration.arena_support import age_battle, configure_arena
from tests.integration.test_metrics_services import clip_settings  # noqa: F401 (fixture)
from tests.unit.test_generators_edit import save_trained_editor

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PROMPT_CHECKER_WEIGHTS_PATH = tmp_path / "checker.safetensors"
    settings.METRICS_DEVICE = "cpu"
    settings.CLIP_WEIGHTS_PATH = None
    return settings


def _edit_set() -> PromptSet:
    call_command("load_prompt_sets", stdout=io.StringIO())
    return PromptSet.objects.get(slug="edit-benchmark")


def test_the_edit_benchmark_stores_each_source_and_its_oracle_captions(media):
    prompt_set = _edit_set()
    assert prompt_set.task == "image-edit"
    prompts = list(prompt_set.prompts.order_by("position"))
    assert len(prompts) == 48
    assert {c: sum(p.category == c for p in prompts) for c in EDIT_CATEGORIES} == dict.fromkeys(
        EDIT_CATEGORIES, 8
    )
    for prompt, edit in zip(prompts, benchmark_edits(48), strict=True):
        assert (prompt.text, prompt.source_text, prompt.target_text) == (
            edit.instruction,
            edit.source_caption,
            edit.target_caption,
        )
        # The stored PNG is the exact render of the source scene.
        assert np.array_equal(prompt_source_image(prompt), render_scene(edit.source))
    files = {p.source_image.name for p in prompts}
    out = io.StringIO()
    call_command("load_prompt_sets", stdout=out)  # idempotent: no new prompt, no new file
    assert "edit-benchmark: 48 prompts (0 new)" in out.getvalue()
    assert {p.source_image.name for p in prompt_set.prompts.all()} == files


def _register_editor(tmp_path, slug: str = "tiny-editor", seed: int = 0):
    directory = save_trained_editor(tmp_path / slug, seed=seed)
    version, _ = register_reference_model(
        directory=directory, slug=slug, display_name=slug, description="test"
    )
    return version


def test_generation_feeds_each_source_to_the_editor_and_metrics_read_the_oracle(media, tmp_path):
    prompt_set = _edit_set()
    version = _register_editor(tmp_path)
    assert version.model.task == "image-edit"
    chosen = list(prompt_set.prompts.order_by("position")[:6])
    report = generate_samples(
        version_id=version.pk,
        prompt_set_slug="edit-benchmark",
        seeds=[0],
        prompt_ids=[p.pk for p in chosen],
        device="cpu",
    )
    assert report.created == 6
    samples = list(Sample.objects.filter(version=version).select_related("prompt"))
    assert len(samples) == 6 and all(s.width == s.height == 32 for s in samples)
    # The same seed and instruction on another source gives another edit: the source is read.
    from evaluation.sample_store import checkpoint_directory, decode_media
    from models_registry.generators import load_generator

    generator = load_generator(checkpoint_directory(version), device="cpu")
    first = samples[0]
    again = generator.generate(
        [first.prompt.text], [0], images=prompt_source_image(first.prompt)[None]
    )
    assert np.array_equal(again[0], decode_media(first))
    other = generator.generate(
        [first.prompt.text], [0], images=255 - prompt_source_image(first.prompt)[None]
    )
    assert not np.array_equal(other[0], again[0])

    rows = {r.metric: r for r in version_metrics_compute(version_id=version.pk)}
    assert set(rows) == {"edit_accuracy", "clip_direction", "preservation_l1", "preservation_clip"}
    assert rows["edit_accuracy"].status == MetricStatus.OK and rows["edit_accuracy"].n == 6
    assert rows["preservation_l1"].status == MetricStatus.OK
    assert 0 <= rows["preservation_l1"].value <= 1 and rows["preservation_l1"].backbone == "pixels"
    for name in ("clip_direction", "preservation_clip"):
        assert rows[name].status == MetricStatus.UNAVAILABLE
        assert "CLIP_WEIGHTS_PATH" in rows[name].message


def _version_with_edits(tmp_path, outputs, slug: str = "tiny-editor"):
    """A registered editor whose samples are `outputs(prompt)` for the first 12 prompts."""
    prompt_set = _edit_set()
    version = _register_editor(tmp_path, slug=slug, seed=len(slug))
    for prompt in prompt_set.prompts.order_by("position")[:12]:
        store_sample(
            version=version, prompt=prompt, seed=0, pixels=outputs(prompt), generation_seconds=0.1
        )
    return version


def test_the_exact_targets_score_a_perfect_edit_and_the_untouched_sources_do_not(
    media,
    tmp_path,
    clip_settings,  # noqa: F811
):
    exact = _version_with_edits(
        tmp_path, lambda prompt: render_scene(scene_of_caption(prompt.target_text))
    )
    rows = {r.metric: r for r in version_metrics_compute(version_id=exact.pk)}
    assert all(r.status == MetricStatus.OK for r in rows.values()), rows
    assert rows["edit_accuracy"].value == pytest.approx(1.0)
    assert rows["preservation_l1"].value == 0.0
    # Outside the edit region target and source are the same pixels: the same embedding.
    assert rows["preservation_clip"].value == pytest.approx(0.0, abs=1e-6)
    assert -1.0 <= rows["clip_direction"].value <= 1.0
    assert rows["clip_direction"].weights_custom

    MetricResult.objects.all().delete()
    unedited = _version_with_edits(tmp_path / "b", prompt_source_image, slug="unedited")
    rows = {r.metric: r for r in version_metrics_compute(version_id=unedited.pk)}
    assert rows["edit_accuracy"].value == 0.0  # every edit leaves its one change undone
    assert rows["preservation_l1"].value == 0.0
    assert rows["clip_direction"].value == pytest.approx(0.0, abs=1e-9)  # no image change


def test_an_edit_battle_shows_the_source_and_two_edits_and_votes_reach_the_leaderboard(
    settings, tmp_path, client
):
    import csv

    from arena.models import Battle
    from arena.rating_snapshots import refresh_rating_snapshots

    configure_arena(settings, tmp_path)
    settings.PROMPT_CHECKER_WEIGHTS_PATH = tmp_path / "checker.safetensors"
    prompt_set = _edit_set()
    prompts = list(prompt_set.prompts.order_by("position")[:2])
    versions = []
    for k in range(2):
        version = _register_editor(tmp_path, slug=f"editor-{k}", seed=k)
        for prompt in prompts:
            target = render_scene(scene_of_caption(prompt.target_text))
            pixels = prompt_source_image(prompt) if k else target
            store_sample(
                version=version, prompt=prompt, seed=0, pixels=pixels, generation_seconds=0.1
            )
        versions.append(version)
    version_metrics_compute(version_id=versions[0].pk)

    page = client.get("/arena/image-edit/")
    assert page.status_code == 200
    html = page.content.decode()
    battle = Battle.objects.get()
    assert battle.task == "image-edit" and battle.prompt.text in html
    assert "Instruction:" in html and "Which edit follows the instruction better" in html
    source_url = f"/arena/battles/{battle.token}/source"
    assert source_url in html
    assert f"/arena/media/{battle.media_token_a}" in html
    assert f"/arena/media/{battle.media_token_b}" in html
    served = client.get(source_url)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    with battle.prompt.source_image.open("rb") as handle:
        assert b"".join(served.streaming_content) == handle.read()
    assert type(client)().get(source_url).status_code == 404  # only for its rater
    # The JSON of a new battle carries the source too.
    token = client.cookies["csrftoken"].value
    fresh = client.post(
        "/arena/image-edit/battles", HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=token
    ).json()
    assert fresh["source"]["url"] == f"/arena/battles/{fresh['token']}/source"
    assert fresh["media_kind"] == "image" and len(fresh["media"]) == 2

    age_battle(battle, 5)
    exact_side = "model_a" if battle.sample_a.version_id == versions[0].pk else "model_b"
    vote = client.post(
        f"/arena/battles/{battle.token}/vote",
        {"outcome": exact_side},
        HTTP_ACCEPT="application/json",
    )
    assert vote.status_code == 201
    refresh_rating_snapshots(task="image-edit")
    board = client.get("/leaderboard/image-edit/")
    assert board.status_code == 200
    assert "Edit accuracy" in board.content.decode()
    rows = client.get("/leaderboard/image-edit.json").json()["rows"]
    assert {r["model"] for r in rows} == {"editor-0", "editor-1"}
    winner = next(r for r in rows if r["votes"])
    assert winner["metrics"]["edit_accuracy"]["value"] == pytest.approx(1.0)
    path = tmp_path / "votes.csv"
    call_command(
        "export_votes", "--task", "image-edit", "--output", str(path), stderr=io.StringIO()
    )
    exported = list(csv.DictReader(path.open()))
    assert len(exported) == 1 and exported[0]["winner"] == exact_side


def test_an_edit_samples_page_shows_the_source_it_edited(media, tmp_path):
    from django.test import Client
    from PIL import Image

    from evaluation.pools import retire_samples

    media.C2PA_DEMO_SIGNER = True
    media.C2PA_DEMO_DIR = tmp_path / "c2pa"
    media.C2PA_SIGNING_CERT = media.C2PA_SIGNING_KEY = None
    version = _version_with_edits(tmp_path, lambda p: render_scene(scene_of_caption(p.target_text)))
    sample = Sample.objects.filter(version=version).select_related("prompt").first()
    client = Client()
    assert client.get(f"/samples/{sample.public_id}/source").status_code == 404  # in battles
    # The version leaves the arena: its battle samples retire and are public from now on.
    retire_samples(
        sample_ids=list(Sample.objects.filter(version=version).values_list("pk", flat=True)),
        reason="left_arena",
    )
    source = client.get(f"/samples/{sample.public_id}/source")
    assert source.status_code == 200 and source["Content-Type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(b"".join(source.streaming_content))).convert("RGB"))
    assert np.array_equal(pixels, prompt_source_image(sample.prompt))
    page = client.get(f"/samples/{sample.public_id}/").content.decode()
    assert f"/samples/{sample.public_id}/source" in page and sample.prompt.source_text in page


def test_the_checker_judges_edit_pairs_against_the_target_preferring_the_exact_edit(
    media, tmp_path
):
    from arena.judging import judge_sampled_battles
    from arena.models import Vote

    media.JUDGE_BACKEND = ""
    exact = _version_with_edits(
        tmp_path, lambda prompt: render_scene(scene_of_caption(prompt.target_text)), slug="exact"
    )
    unedited = _version_with_edits(tmp_path, prompt_source_image, slug="unedited")
    summary = judge_sampled_battles(task="image-edit", backend="checker", n=12, seed=0)
    assert summary.pairs == 12 and summary.ok == 12 and summary.unjudgeable == 0
    votes = list(Vote.objects.filter(task="image-edit").select_related("battle"))
    assert len(votes) == 12
    for vote in votes:
        battle = vote.battle
        exact_side = "model_a" if battle.sample_a.version_id == exact.pk else "model_b"
        assert battle.sample_b.version_id in (exact.pk, unedited.pk)
        assert vote.outcome == exact_side


def test_the_registry_api_takes_image_edit_models_and_names_a_bad_task():
    from tests.integration.registry_support import create_model, make_user, token_client

    client = token_client(make_user("edit-author"))
    body = create_model(client, slug="my-editor", task="image-edit")
    assert body["task"] == "image-edit"
    refused = client.post(
        "/api/v1/models/",
        {"slug": "x", "display_name": "X", "task": "image-to-3d", "paradigm": "flow"},
        format="json",
    )
    assert refused.status_code == 400 and "task" in refused.json()
    assert client.get("/leaderboard/image-edit.json").status_code == 200
