"""Create or update the benchmark prompt sets (idempotent): t2i-benchmark and t2v-benchmark."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from evaluation.models import Prompt, PromptSet
from models_registry.generators.synthetic import benchmark_prompts
from models_registry.models import Task

PROMPT_SETS = (
    {
        "slug": "t2i-benchmark",
        "name": "Text-to-image benchmark",
        "task": Task.TEXT_TO_IMAGE,
        "size": 48,
        "description": "Captions of the synthetic shapes grammar; categories colour, shape, "
        "position and size each cycle through every value of their attribute.",
    },
    {
        "slug": "t2v-benchmark",
        "name": "Text-to-video benchmark",
        "task": Task.TEXT_TO_VIDEO,
        "size": 24,
        "description": "Captions of moving shapes; categories colour, shape and motion "
        "(direction) each cycle through every value of their attribute.",
    },
)


def load_prompt_set(
    *, slug: str, name: str, task: str, description: str, prompts: list[tuple[str, str]]
) -> tuple[PromptSet, int]:
    """Create or update a prompt set with (text, category) prompts in order; returns the set
    and how many prompts were created. Prompts already present keep their ids (samples point
    at them)."""
    with transaction.atomic():
        prompt_set, _ = PromptSet.objects.update_or_create(
            slug=slug, defaults={"name": name, "task": task, "description": description}
        )
        created = 0
        for position, (text, category) in enumerate(prompts):
            _, was_created = Prompt.objects.update_or_create(
                prompt_set=prompt_set,
                text=text,
                defaults={"category": category, "position": position},
            )
            created += was_created
    return prompt_set, created


class Command(BaseCommand):
    help = "Create or update the t2i-benchmark and t2v-benchmark prompt sets (idempotent)."

    def handle(self, *args, **options) -> None:
        for spec in PROMPT_SETS:
            prompts = benchmark_prompts(spec["task"], spec["size"])
            prompt_set, created = load_prompt_set(
                slug=spec["slug"],
                name=spec["name"],
                task=spec["task"],
                description=spec["description"],
                prompts=prompts,
            )
            self.stdout.write(
                f"{prompt_set.slug}: {prompt_set.prompts.count()} prompts ({created} new)"
            )
