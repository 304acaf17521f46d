"""Management commands: train_reference_models (--quick) and load_prompt_sets."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from evaluation.models import Prompt, PromptSet
from models_registry.generators import load_generator
from models_registry.generators.reference import REFERENCE_SPECS
from models_registry.models import GenerativeModel, ModelVersion


@pytest.mark.django_db
def test_load_prompt_sets_is_idempotent_and_has_categories():
    out = io.StringIO()
    call_command("load_prompt_sets", stdout=out)
    first = {ps.slug: list(ps.prompts.values_list("id", "text")) for ps in PromptSet.objects.all()}
    call_command("load_prompt_sets", stdout=out)
    assert first == {
        ps.slug: list(ps.prompts.values_list("id", "text")) for ps in PromptSet.objects.all()
    }
    t2i = PromptSet.objects.get(slug="t2i-benchmark")
    t2v = PromptSet.objects.get(slug="t2v-benchmark")
    assert (t2i.task, t2v.task) == ("text-to-image", "text-to-video")
    assert set(t2i.prompts.values_list("category", flat=True)) == {
        "colour",
        "shape",
        "position",
        "size",
    }
    assert set(t2v.prompts.values_list("category", flat=True)) == {"colour", "shape", "motion"}
    assert (
        Prompt.objects.filter(prompt_set=t2v, text__contains="moving").count()
        == t2v.prompts.count()
    )
    assert "(0 new)" in out.getvalue().splitlines()[-1]


@pytest.mark.django_db
def test_quick_training_saves_registers_and_reuses_every_reference_model(tmp_path):
    out = io.StringIO()
    call_command(
        "train_reference_models",
        "--quick",
        "--output-dir",
        str(tmp_path),
        "--evaluate",
        "4",
        stdout=out,
        stderr=io.StringIO(),
    )
    for spec in REFERENCE_SPECS:
        assert (tmp_path / spec.slug / "model.safetensors").is_file()
        config = json.loads((tmp_path / spec.slug / "config.json").read_text())
        assert config["training"]["quick"] is True
        model = GenerativeModel.objects.get(slug=spec.slug)
        assert model.visibility == "public" and model.owner.username == "reference-models"
        version = model.versions.get()
        assert version.status == "ready" and version.arena_approved
        assert version.checkpoint.format == "native" and len(version.checkpoint.sha256) == 64
    video = load_generator(tmp_path / "ref-video-flow", device="cpu")
    assert video.task == "text-to-video" and video.frames == 16  # what FVD reads
    quality = json.loads((tmp_path / "quality.json").read_text())
    assert set(quality) == {spec.slug for spec in REFERENCE_SPECS}

    again = io.StringIO()
    call_command(
        "train_reference_models",
        "--quick",
        "--output-dir",
        str(tmp_path),
        "--evaluate",
        "4",
        stdout=again,
        stderr=io.StringIO(),
    )
    assert again.getvalue().count("already trained") == len(REFERENCE_SPECS)
    assert again.getvalue().count("already registered") == len(REFERENCE_SPECS)
    assert ModelVersion.objects.filter(model__slug__startswith="ref-").count() == len(
        REFERENCE_SPECS
    )


def test_unknown_slug_is_a_clear_error(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown reference slugs"):
        call_command(
            "train_reference_models",
            "--only",
            "nope",
            "--output-dir",
            str(tmp_path),
            "--no-register",
        )
