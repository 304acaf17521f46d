"""steps_sweep --version SLUG@TAG [--metric M] [--nfe 1,2,4,8,16,32] [--sampler NAME]: quality
of a version's samples at each NFE budget (evaluation.steps_sweep), printed as a table and stored
(idempotent; --force recomputes). --queue sends it to a gpu worker instead."""

from __future__ import annotations

import json

from django.core.management.base import CommandError

from evaluation.sample_store import GenerationFailed
from evaluation.steps_sweep import DEFAULT_NFE_BUDGETS, SweepRequestError, steps_sweep_run
from models_registry.management.version_command import ModelVersionCommand


def _int_list(raw: str, option: str) -> list[int]:
    try:
        return [int(item) for item in raw.split(",") if item.strip()]
    except ValueError:
        raise CommandError(f"{option}: expected comma-separated integers, got {raw!r}") from None


class Command(ModelVersionCommand):
    help = "Sweep a version's sampler over NFE budgets and score each point with one metric."

    def add_arguments(self, parser):
        parser.add_argument("--version", required=True, help="<model-slug>@<tag>")
        parser.add_argument("--metric", default="prompt_agreement")
        parser.add_argument(
            "--nfe",
            default=",".join(map(str, DEFAULT_NFE_BUDGETS)),
            help="NFE budgets (network evaluations per sample), comma-separated",
        )
        parser.add_argument(
            "--sampler", default=None, help="another sampler / diffusers scheduler class"
        )
        parser.add_argument("--seeds", default="0", help="seeds per prompt, comma-separated")
        parser.add_argument("--prompt-set", default=None, help="default: the task's benchmark")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="local runs; --queue uses the worker's"
        )
        parser.add_argument(
            "--device",
            default=None,
            help="torch device of a local run (default GENERATOR_DEVICE; --queue: the worker's)",
        )
        parser.add_argument("--force", action="store_true", help="recompute existing points")
        parser.add_argument("--queue", action="store_true", help="run on a gpu worker (Celery)")
        parser.add_argument("--json", action="store_true", help="print the points as JSON")

    def handle(self, *args, **options):
        version = self.model_version(options["version"])
        budgets = _int_list(options["nfe"], "--nfe")
        seeds = _int_list(options["seeds"], "--seeds")
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be >= 1")
        if options["queue"]:
            from workers.tasks import gpu_steps_sweep

            result = gpu_steps_sweep.delay(
                version.pk,
                metric=options["metric"],
                nfe_budgets=budgets,
                sampler=options["sampler"],
                seeds=seeds,
                force=options["force"],
                prompt_set_slug=options["prompt_set"],
            )
            self.stdout.write(f"queued steps sweep of {options['version']}: task {result.id}")
            return
        try:
            points = steps_sweep_run(
                version_id=version.pk,
                metric=options["metric"],
                nfe_budgets=budgets,
                sampler=options["sampler"],
                prompt_set_slug=options["prompt_set"],
                seeds=seeds,
                batch_size=options["batch_size"],
                device=options["device"],
                force=options["force"],
                progress=lambda done, total: self.stderr.write(f"points {done}/{total}"),
            )
        except (SweepRequestError, GenerationFailed) as exc:
            raise CommandError(str(exc)) from exc
        rows = [
            {
                "sampler": p.sampler,
                "steps": p.steps,
                "nfe": p.nfe,
                "status": p.status,
                "value": p.value,
                "lower": p.lower,
                "upper": p.upper,
                "n": p.n,
                "seconds_per_sample": p.seconds_per_sample,
                "message": p.message,
            }
            for p in points
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows))
            return
        self.stdout.write(f"{options['version']} · {options['metric']}")
        self.stdout.write(f"{'sampler':<12} {'steps':>5} {'NFE':>5} {'value':>24} {'s/sample':>9}")
        for r in rows:
            if r["status"] == "ok":
                value = f"{r['value']:.3f}"
                if r["lower"] is not None:
                    value += f" [{r['lower']:.3f}, {r['upper']:.3f}]"
            else:
                value = f"{r['status']}: {r['message'][:60]}"
            secs = "" if r["seconds_per_sample"] is None else f"{r['seconds_per_sample']:.4f}"
            self.stdout.write(
                f"{r['sampler']:<12} {r['steps']:>5} {r['nfe']:>5} {value:>24} {secs:>9}"
            )
