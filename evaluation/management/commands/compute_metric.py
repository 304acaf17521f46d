"""compute_metric METRIC --real DIR --fake DIR [...]: one media metric of the catalogue
(evaluation.metrics.catalogue.SUITE_METRIC_NAMES) over a folder of generated images/videos, with
a progress bar; --json prints one JSON object."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evaluation.folder_metrics import folder_metric_compute
from evaluation.metrics.catalogue import METRICS, PROMPT, SUITE_METRIC_NAMES

PROMPT_METRICS = ", ".join(n for n in SUITE_METRIC_NAMES if METRICS[n].kind == PROMPT)


class Command(BaseCommand):
    help = (
        "Compute one metric ("
        + ", ".join(METRICS[n].label for n in SUITE_METRIC_NAMES)
        + ") over media folders."
    )

    def add_arguments(self, parser):
        parser.add_argument("metric", choices=SUITE_METRIC_NAMES)
        parser.add_argument("--real", type=Path, help="folder of real media, or a reference .npz")
        parser.add_argument("--fake", type=Path, required=True, help="folder of generated media")
        parser.add_argument(
            "--prompts",
            type=Path,
            help=f"{PROMPT_METRICS}: .txt (one line per file) or .json map",
        )
        parser.add_argument(
            "--weights", type=Path, help="backbone weights file (overrides settings)"
        )
        parser.add_argument(
            "--allow-custom",
            action="store_true",
            help="accept weights whose sha256 is not the published one",
        )
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--device", default=None, help="torch device (default METRICS_DEVICE)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        from tqdm import tqdm

        from evaluation.features.media import MediaError
        from evaluation.features.weights import WeightsRejected, WeightsUnavailable
        from evaluation.metrics.reference import ReferenceMismatch

        bars = []

        def progress(label: str, total: int):
            bar = tqdm(total=total, desc=label, unit="item", disable=None)
            bars.append(bar)
            return bar.update

        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be >= 1, got {options['batch_size']}")
        try:
            result = folder_metric_compute(
                metric=options["metric"],
                fake=options["fake"],
                real=options["real"],
                prompts_file=options["prompts"],
                weights_path=options["weights"],
                allow_custom=True if options["allow_custom"] else None,
                batch_size=options["batch_size"],
                device=options["device"],
                progress=progress,
            )
        except WeightsUnavailable as exc:
            raise CommandError(
                f"{options['metric']} unavailable: {exc} (or pass --weights)"
            ) from exc
        except (WeightsRejected, MediaError, ReferenceMismatch, ValueError) as exc:
            raise CommandError(f"{options['metric']}: {exc}") from exc
        finally:
            for bar in bars:
                bar.close()
        if options["json"]:
            self.stdout.write(json.dumps(result.as_json()))
            return
        interval = (
            f" [{result.lower:.6g}, {result.upper:.6g}] ({METRICS[result.metric].interval_note})"
            if result.lower is not None
            else ""
        )
        self.stdout.write(
            f"{result.metric} = {result.value:.6g}{interval}  n={result.n}  "
            f"backbone={result.backbone}  weights sha256={result.weights_sha256}"
        )
