"""Create or update the benchmark prompt set of every task in the catalogue (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from evaluation.models import Prompt, PromptSet
from models_registry.generators.synthetic import benchmark_prompts
from models_registry.generators.tasks import TASKS


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
    help = "Create or update every task's benchmark prompt set (idempotent)."

    def handle(self, *args, **options) -> None:
        for spec in TASKS.values():
            prompt_set, created = load_prompt_set(
                slug=spec.prompt_set,
                name=spec.prompt_set_name,
                task=spec.name,
                description=spec.prompt_set_description,
                prompts=benchmark_prompts(spec.name, spec.prompt_set_size),
            )
            self.stdout.write(
                f"{prompt_set.slug}: {prompt_set.prompts.count()} prompts ({created} new)"
            )
