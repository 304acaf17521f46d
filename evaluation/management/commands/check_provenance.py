"""check_provenance [--version-id ID ...] [--samples N] [--publish]: the provenance column.

For each version (default: every version with image samples) checks up to N of its own outputs
for C2PA and known public watermarks, and measures whether our watermark survives JPEG q75 and
a resize on them; --publish also signs every sample of those versions now (otherwise renditions
are made on first view)."""

from __future__ import annotations

import json

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from evaluation.models import MediaKind, Sample
from evaluation.publication import publish_samples, version_provenance_check


class Command(BaseCommand):
    help = "Check the provenance of versions' outputs (C2PA, known watermarks, survival)."

    def add_arguments(self, parser):
        parser.add_argument("--version-id", type=int, action="append", dest="versions", default=[])
        parser.add_argument("--samples", type=int, default=None, help="outputs per version")
        parser.add_argument("--publish", action="store_true", help="sign every sample now")

    def handle(self, *args, versions, samples, publish, **options):
        if samples is not None and samples < 1:
            raise CommandError(f"--samples must be at least 1, got {samples}")
        if not versions:
            versions = sorted(
                set(
                    Sample.objects.filter(media_kind=MediaKind.IMAGE).values_list(
                        "version_id", flat=True
                    )
                )
            )
        try:
            for version_id in versions:
                if not Sample.objects.filter(version_id=version_id).exists():
                    raise CommandError(f"version {version_id} has no samples")
                if publish:
                    made, already = publish_samples(
                        Sample.objects.filter(version_id=version_id).order_by("pk")
                    )
                    self.stdout.write(f"version {version_id}: published {made} ({already} were)")
                row = version_provenance_check(version_id=version_id, samples=samples)
                summary = {
                    "version": version_id,
                    "samples_checked": row.samples_checked,
                    "raw_c2pa": row.raw_c2pa,
                    "raw_watermark": row.raw_watermark,
                    "clean": row.clean_bit_accuracy,
                    "jpeg75": row.jpeg75_bit_accuracy,
                    "resize": row.resize_bit_accuracy,
                    "survives_jpeg75": row.survives_jpeg75,
                    "survives_resize": row.survives_resize,
                }
                self.stdout.write(json.dumps(summary))
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
