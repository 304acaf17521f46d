"""Create or update the benchmark prompt set of every task in the catalogue (idempotent)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand
from django.db import transaction

from evaluation.models import Prompt, PromptSet
from evaluation.sample_store import encode_png
from models_registry.generators.synthetic import benchmark_edits, benchmark_prompts, render_scene
from models_registry.generators.tasks import TASKS

EDIT_SOURCE_RESOLUTION = 32  # pixels: the synthetic domain's side (the reference models')


@dataclass(frozen=True)
class EditSource:
    """What an image-edit prompt edits: the source image (PNG bytes) and, for scenes of the
    synthetic grammar, the source and target captions the oracle reads."""

    png: bytes
    source_text: str = ""
    target_text: str = ""


def _stored_source(png: bytes) -> str:
    """The storage name of a source image, keyed by its content (one file per distinct image)."""
    name = f"prompt_sources/{hashlib.sha256(png).hexdigest()[:24]}.png"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(png))
    return name


def load_prompt_set(
    *,
    slug: str,
    name: str,
    task: str,
    description: str,
    prompts: list[tuple[str, str]],
    sources: list[EditSource] | None = None,
) -> tuple[PromptSet, int]:
    """Create or update a prompt set with (text, category) prompts in order; returns the set
    and how many prompts were created. Prompts already present keep their ids (samples point
    at them). `sources` (image-edit sets) gives each prompt its source image and captions."""
    if sources is not None and len(sources) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(sources)} edit sources")
    with transaction.atomic():
        prompt_set, _ = PromptSet.objects.update_or_create(
            slug=slug, defaults={"name": name, "task": task, "description": description}
        )
        created = 0
        for position, (text, category) in enumerate(prompts):
            defaults: dict = {"category": category, "position": position}
            if sources is not None:
                source = sources[position]
                defaults.update(
                    source_image=_stored_source(source.png),
                    source_text=source.source_text,
                    target_text=source.target_text,
                )
            _, was_created = Prompt.objects.update_or_create(
                prompt_set=prompt_set, text=text, defaults=defaults
            )
            created += was_created
    return prompt_set, created


def benchmark_edit_sources(n: int) -> list[EditSource]:
    """The edit benchmark's sources, aligned with `benchmark_prompts("image-edit", n)`."""
    return [
        EditSource(
            encode_png(render_scene(edit.source, resolution=EDIT_SOURCE_RESOLUTION)),
            edit.source_caption,
            edit.target_caption,
        )
        for edit in benchmark_edits(n)
    ]


class Command(BaseCommand):
    help = "Create or update every task's benchmark prompt set (idempotent)."

    def handle(self, *args, **options) -> None:
        for spec in TASKS.values():
            prompt_set, created = load_prompt_set(
                slug=spec.prompt_set,
                name=spec.prompt_set_name,
                task=spec.name,
                description=spec.prompt_set_description,
                prompts=benchmark_prompts(spec.name, spec.prompt_set_size),
                sources=(
                    benchmark_edit_sources(spec.prompt_set_size) if spec.source_image else None
                ),
            )
            self.stdout.write(
                f"{prompt_set.slug}: {prompt_set.prompts.count()} prompts ({created} new)"
            )
