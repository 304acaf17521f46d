"""Seed the demo for `make run`: prompt sets, reference generators, demo CLIP, samples, metrics.

Everything is trained offline on the synthetic dataset and reused when already under `var/`,
so a second run takes seconds. Reference versions go through the same pipeline chain as uploaded
ones, applied eagerly in this process so that the arena has samples when the server starts.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from models_registry.models import ModelVersion, VersionStatus
from models_registry.reference_models import reference_owner
from workers import tasks as _registered_tasks  # noqa: F401 - registers the chain's tasks
from workers.pipeline import pipeline_chain


class Command(BaseCommand):
    help = "Seed demo data for `make run` (idempotent: a second run reuses what exists)."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="few training steps (smoke runs)")
        parser.add_argument("--skip-training", action="store_true", help="only load prompt sets")

    def step(self, message: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"==> {message}"))

    def handle(self, *args, quick: bool = False, skip_training: bool = False, **options):
        started = time.monotonic()
        if settings.DEBUG:
            User = get_user_model()
            if not User.objects.filter(username="admin").exists():
                User.objects.create_superuser("admin", "admin@example.com", "admin")
                self.stdout.write("Created demo maintainer 'admin' (password 'admin') for /admin/.")

        self.step("Benchmark prompt sets")
        call_command("load_prompt_sets", stdout=self.stdout)
        if skip_training:
            return
        self.step("Reference generators (trained once on the synthetic dataset, then reused)")
        call_command("train_reference_models", quick=quick, stdout=self.stdout)
        if settings.CLIP_WEIGHTS_PATH:
            self.step(
                f"Demo CLIP for CLIP score, CMMD and FD-on-CLIP ({settings.CLIP_WEIGHTS_PATH})"
            )
            options = {"out": settings.CLIP_WEIGHTS_PATH, "stdout": self.stdout}
            if quick:
                options["steps"] = 20
            call_command("train_demo_clip", **options)

        self.step("Samples and metrics of the reference models (the evaluation pipeline)")
        pending = ModelVersion.objects.select_related("model").filter(
            model__owner=reference_owner()
        )
        pending = pending.exclude(status=VersionStatus.PUBLISHED).order_by("model__slug", "tag")
        for version in pending:
            begun = time.monotonic()
            self.stdout.write(f"  {version} ...", ending="")
            self.stdout.flush()
            result = pipeline_chain(version_id=version.pk).apply()
            version.refresh_from_db()
            if result.failed() or version.status != VersionStatus.PUBLISHED:
                self.stdout.write(self.style.ERROR(f" {version.status}: {version.status_reason}"))
            else:
                count = version.samples.count()
                self.stdout.write(f" {count} samples, {time.monotonic() - begun:.0f} s")

        self.step("Leaderboard snapshots")
        from arena.rating_snapshots import refresh_rating_snapshots

        refresh_rating_snapshots()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready in {time.monotonic() - started:.0f} s: http://127.0.0.1:8000/ "
                "(arena: /arena/text-to-image/, leaderboard: /leaderboard/text-to-image/)"
            )
        )
