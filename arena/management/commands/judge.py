"""`python manage.py judge`: run the VLM judge on a version's samples or on new arena battles, or
the synthetic checker (--backend checker, no VLM) on new battles."""

from __future__ import annotations

import json

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from arena.judging import judge_battles, judge_human_agreement
from evaluation.judging import (
    BACKENDS,
    CHECKER_BACKEND,
    CHECKER_SINGLE_SAMPLES,
    JudgeNotConfigured,
    judge_version_samples,
)
from models_registry.management.version_command import ModelVersionCommand
from models_registry.models import ModelVersion, Task

MODES = ("vqascore", "rubric", "pairwise")


class Command(ModelVersionCommand):
    help = (
        "Judge a version's samples (--mode vqascore|rubric) or new arena battles (--mode pairwise) "
        "with the configured VLM judge, or new battles with the synthetic checker (--backend "
        "checker: no VLM settings); --agreement prints judge–human agreement as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--version", help="<model-slug>@<tag>")
        parser.add_argument("--task", choices=Task.values, help="for pairwise / --agreement")
        parser.add_argument("--mode", choices=MODES, help="default: vqascore (local), rubric (api)")
        parser.add_argument(
            "--backend",
            choices=BACKENDS,
            help="default: JUDGE_BACKEND or configured; checker: the synthetic checker (pairwise)",
        )
        parser.add_argument("--force", action="store_true", help="re-judge samples already judged")
        parser.add_argument("--limit", type=int, help="pairwise: at most this many new pairs")
        parser.add_argument("--agreement", action="store_true", help="print judge–human agreement")
        parser.add_argument("--judge", help="--agreement: judge name (default: most votes)")
        parser.add_argument("--category", help="--agreement: one prompt category")

    def handle(self, *args, **options) -> None:
        if options["agreement"]:
            if not options["task"]:
                raise CommandError(f"--agreement needs --task (one of {', '.join(Task.values)})")
            result = judge_human_agreement(
                task=options["task"], judge_name=options["judge"], category=options["category"]
            )
            self.stdout.write(json.dumps(result, indent=2))
            return
        version = self.model_version(options["version"]) if options["version"] else None
        mode = options["mode"]
        if options["backend"] == CHECKER_BACKEND:
            if mode not in (None, "pairwise"):
                raise CommandError(
                    f"--mode {mode} with --backend checker: {CHECKER_SINGLE_SAMPLES}"
                )
            mode = "pairwise"
        try:
            if mode == "pairwise" or (mode is None and version is None and options["task"]):
                self._pairwise(version=version, options=options)
            elif version is None:
                raise CommandError(
                    "give --version <model-slug>@<tag> (or --task with --mode pairwise)"
                )
            else:
                self._single(version=version, mode=mode, options=options)
        except JudgeNotConfigured as exc:
            raise CommandError(str(exc)) from exc

    def _single(self, *, version: ModelVersion, mode: str | None, options: dict) -> None:
        total = version.samples.count()
        if total == 0:
            raise CommandError(f"{version} has no samples to judge; generate them first")
        with tqdm(total=total, unit="sample", desc=f"judging {version}") as bar:
            summary = judge_version_samples(
                version=version,
                mode=mode,
                backend=options["backend"],
                force=options["force"],
                progress=bar.update,
            )
        metric = summary.metric
        value = "n/a" if metric is None or metric.value is None else f"{metric.value:.4f}"
        self.stdout.write(
            f"{summary.judge} [{summary.mode}] on {version}: {summary.ok} ok, {summary.failed} failed, "
            f"{summary.skipped} already judged, {summary.cached} from cache; "
            f"tokens {summary.prompt_tokens} in / {summary.completion_tokens} out; "
            f"{metric.metric if metric else summary.mode} = {value}"
        )
        for error in summary.errors:
            self.stderr.write(f"failed: {error}")

    def _pairwise(self, *, version: ModelVersion | None, options: dict) -> None:
        task = options["task"] or (version.model.task if version else None)
        if task is None:
            raise CommandError("--mode pairwise needs --task or --version")
        bar = tqdm(unit="pair", desc=f"judging {task} battles")
        with bar:

            def advance(k: int) -> None:
                bar.update(k)

            summary = judge_battles(
                task=task,
                backend=options["backend"],
                version=version,
                limit=options["limit"],
                progress=advance,
            )
        self.stdout.write(
            f"{summary.judge} [pairwise] on {task}: {summary.pairs} new pairs, {summary.ok} judged "
            f"{dict(sorted(summary.votes.items()))}, {summary.failed} failed, {summary.cached} from "
            f"cache; tokens {summary.prompt_tokens} in / {summary.completion_tokens} out"
            + (
                f"; {summary.unjudgeable} pairs with prompts this judge cannot read"
                if summary.unjudgeable
                else ""
            )
        )
        for error in summary.errors:
            self.stderr.write(f"failed: {error}")
