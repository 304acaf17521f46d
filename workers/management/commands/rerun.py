"""`manage.py rerun --version SLUG@TAG --stage STAGE`: re-run a (failed) stage and what follows."""

from __future__ import annotations

from django.core.management.base import CommandError

from models_registry.management.version_command import ModelVersionCommand
from pipeline.chain import RERUNNABLE_STAGES, PipelineError
from pipeline.services import pipeline_rerun


class Command(ModelVersionCommand):
    help = "Re-run one pipeline stage of a model version, then the stages after it."

    def add_arguments(self, parser):
        parser.add_argument("--version", required=True, help="model-slug@version-tag")
        parser.add_argument("--stage", required=True, choices=[str(s) for s in RERUNNABLE_STAGES])

    def handle(self, *args, version: str, stage: str, **options):
        found = self.model_version(version)
        try:
            pipeline_rerun(version=found, stage=stage)
        except PipelineError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Queued stage {stage!r} (and the stages after it) for {found}.")
        )
