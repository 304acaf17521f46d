"""Measure the style covariates of samples stored before they were recorded at generation."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from evaluation.models import Sample
from evaluation.sample_store import backfill_covariates


class Command(BaseCommand):
    help = (
        "Fill Sample.covariates (width, height, aspect_ratio, frames, generation_seconds, "
        "brightness, saturation) from the stored media of samples that have none."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--overwrite", action="store_true", help="re-measure samples that have covariates"
        )
        parser.add_argument("--model-version", type=int, default=None, help="only this version id")

    def handle(self, *args, **opts) -> None:
        samples = Sample.objects.order_by("id")
        if opts["model_version"] is not None:
            samples = samples.filter(version_id=opts["model_version"])
        if not opts["overwrite"]:
            samples = samples.filter(covariates={})
        updated, failed = backfill_covariates(samples.iterator(chunk_size=500), overwrite=True)
        self.stdout.write(f"{updated} samples measured, {failed} unreadable")
