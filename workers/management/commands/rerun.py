"""`manage.py rerun --version SLUG@TAG --stage STAGE`: re-run a (failed) stage and what follows."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from models_registry.models import ModelVersion
from workers.pipeline import RERUNNABLE_STAGES, PipelineError, pipeline_rerun


class Command(BaseCommand):
    help = "Re-run one pipeline stage of a model version, then the stages after it."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        # Our --version names a model version, replacing Django's "print the Django version".
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--version", required=True, help="model-slug@version-tag")
        parser.add_argument("--stage", required=True, choices=[str(s) for s in RERUNNABLE_STAGES])

    def handle(self, *args, version: str, stage: str, **options):
        slug, sep, tag = version.partition("@")
        if not sep or not slug or not tag:
            raise CommandError(f"--version must look like model-slug@tag, got {version!r}")
        found = (
            ModelVersion.objects.select_related("model").filter(model__slug=slug, tag=tag).first()
        )
        if found is None:
            raise CommandError(f"no version {version!r}: check the model slug and tag")
        try:
            pipeline_rerun(version=found, stage=stage)
        except PipelineError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Queued stage {stage!r} (and the stages after it) for {found}.")
        )
