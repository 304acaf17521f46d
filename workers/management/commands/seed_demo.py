"""Seed the demo for `make run`: prompt sets at once, the demo's own models in the background.

The foreground part takes seconds (the demo maintainer, the prompt sets, leaderboard snapshots),
so the server starts at once. Training the reference generators and the demo CLIP, and running
each trained generator through the evaluation pipeline, are queued as Celery work
(pipeline.seeding); `manage.py seed_progress` and the home page show one bar per model.
`--wait` runs that work in this process instead (a one-off seed, e.g. before a screenshot).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from workers import tasks as _registered_tasks  # noqa: F401 - registers the tasks it sends


class Command(BaseCommand):
    help = (
        "Seed demo data for `make run`: prompt sets now; training and evaluation of the demo's "
        "models queued in the background (idempotent: a second run reuses what exists)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="few training steps (smoke runs)")
        parser.add_argument("--skip-training", action="store_true", help="only load prompt sets")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="train and evaluate in this process, then return (no worker needed)",
        )
        parser.add_argument(
            "--only", nargs="+", metavar="SLUG", help="seed only these models (e.g. demo-clip)"
        )

    def step(self, message: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"==> {message}"))

    def handle(self, *args, quick=False, skip_training=False, wait=False, only=None, **options):
        from arena.rating_snapshots import refresh_rating_snapshots
        from pipeline.seeding import demo_seed_start

        started = time.monotonic()
        if settings.DEBUG:
            User = get_user_model()
            if not User.objects.filter(username="admin").exists():
                User.objects.create_superuser("admin", "admin@example.com", "admin")
                self.stdout.write("Created demo maintainer 'admin' (password 'admin') for /admin/.")

        self.step("Benchmark prompt sets")
        call_command("load_prompt_sets", stdout=self.stdout, verbosity=0)
        if not skip_training:
            if wait:
                self._seed_here(quick=quick, only=only)
            else:
                try:
                    pending = demo_seed_start(quick=quick, only=only)
                except ValueError as exc:
                    raise CommandError(str(exc)) from None
                if pending:
                    self.step(f"Queued {len(pending)} models to train in the background")
                    self.stdout.write(
                        "  " + ", ".join(pending) + "\n  Progress: the home page, or "
                        "`manage.py seed_progress`; pages fill in as models publish."
                    )
                else:
                    self.step("The demo's models are trained and published")
        refresh_rating_snapshots()
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded in {time.monotonic() - started:.0f} s: http://127.0.0.1:8000/ "
                "(arena: /arena/text-to-image/, leaderboard: /leaderboard/text-to-image/)"
            )
        )

    def _seed_here(self, *, quick: bool, only: list[str] | None) -> None:
        """Train every pending model and run its pipeline in this process (Celery eager)."""
        from config.celery import app
        from models_registry.models import TrainingJob, TrainingState
        from pipeline.seeding import demo_seed_start

        app.conf.task_always_eager = True
        try:
            self.step("Training and evaluating the demo's models in this process")
            from django.db import transaction

            with transaction.atomic():
                demo_seed_start(quick=quick, only=only)  # the chain runs eagerly on commit
            for job in TrainingJob.objects.all():
                line = f"  {job.slug}: {job.get_state_display().lower()}"
                if job.state == TrainingState.FAILED:
                    line += f" ({job.message})"
                elif job.version_id:
                    line += f", {job.version.get_status_display().lower()}"
                self.stdout.write(line)
        finally:
            app.conf.task_always_eager = False
