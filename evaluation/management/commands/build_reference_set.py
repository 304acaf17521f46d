"""build_reference_set: cache real-media statistics (mu, sigma, feature sample) for a backbone."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evaluation.backbones import backbone_load
from evaluation.reference_sets import reference_set_build, reference_slug_for_task
from models_registry.models import Task


class Command(BaseCommand):
    help = (
        "Build (or verify) a ReferenceSet: statistics of real media through one backbone, from "
        "a folder or from synthetic benchmark renders. Defaults to the task's configured source."
    )

    def add_arguments(self, parser):
        parser.add_argument("--task", choices=Task.values, required=True)
        parser.add_argument("--backbone", choices=["inception", "clip", "i3d"], required=True)
        parser.add_argument(
            "--slug", help="reference set slug (default: the task's configured one)"
        )
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--dir", type=Path, help="folder of real PNG/JPEG or MP4 files")
        source.add_argument("--synthetic", type=int, help="number of synthetic renders")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--weights", type=Path)
        parser.add_argument("--allow-custom", action="store_true")
        parser.add_argument(
            "--export", type=Path, help="also copy the .npz here (for compute_metric --real)"
        )

    def handle(self, *args, **options):
        from django.conf import settings

        from evaluation.features.media import MediaError
        from evaluation.features.weights import WeightsRejected, WeightsUnavailable

        task = options["task"]
        folder, synthetic = options["dir"], options["synthetic"]
        if folder is None and synthetic is None:
            folder = settings.METRICS_REFERENCE_DIRS.get(task)
            synthetic = None if folder else settings.METRICS_SYNTHETIC_REFERENCE_SIZE
        try:
            backbone = backbone_load(
                key=options["backbone"],
                weights_path=options["weights"],
                allow_custom=True if options["allow_custom"] else None,
            )
            row = reference_set_build(
                task=task,
                backbone=backbone,
                slug=options["slug"] or reference_slug_for_task(task),
                folder=folder,
                synthetic=synthetic,
                seed=options["seed"],
            )
        except (WeightsUnavailable, WeightsRejected, MediaError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if options["export"]:
            with row.stats_file.open("rb") as handle:
                options["export"].write_bytes(handle.read())
        self.stdout.write(
            f"reference set {row.slug} [{row.backbone}] n={row.n} stats sha256={row.stats_sha256} "
            f"weights sha256={row.weights_sha256}"
        )
