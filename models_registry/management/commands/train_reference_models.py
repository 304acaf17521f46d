"""Train the reference generators on the synthetic data (CPU), save them in the native format,
score them with the prompt-agreement classifier, and register them as public models."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from models_registry.generators.reference import (
    REFERENCE_SPECS,
    TrainingData,
    is_trained,
    train_reference,
)


class Command(BaseCommand):
    help = (
        "Train all reference generators (diffusion, score, flow, reflow, video, under-trained) "
        "on CPU, save them under REFERENCE_MODELS_DIR and register them. Trained ones are reused."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--output-dir",
            type=Path,
            default=None,
            help="where to save (default: settings.REFERENCE_MODELS_DIR)",
        )
        parser.add_argument(
            "--only",
            nargs="*",
            default=None,
            metavar="SLUG",
            help="train only these reference slugs",
        )
        parser.add_argument(
            "--quick",
            action="store_true",
            help="a few training steps per model (tests and smoke runs)",
        )
        parser.add_argument("--force", action="store_true", help="retrain even when present")
        parser.add_argument("--device", default="cpu", help="torch device for training")
        parser.add_argument(
            "--threads",
            type=int,
            default=0,
            help="torch CPU threads (0: torch's default; 1 is fastest on a machine busy "
            "with other work)",
        )
        parser.add_argument(
            "--no-register",
            action="store_true",
            help="only train and save; do not touch the database",
        )
        parser.add_argument(
            "--evaluate",
            type=int,
            default=64,
            metavar="N",
            help="score each image model on N benchmark prompts (0: skip)",
        )

    def handle(self, *args, **options) -> None:
        import torch

        if options["threads"]:
            torch.set_num_threads(options["threads"])
        root: Path = options["output_dir"] or settings.REFERENCE_MODELS_DIR
        root.mkdir(parents=True, exist_ok=True)
        specs = list(REFERENCE_SPECS)
        if options["only"]:
            unknown = set(options["only"]) - {s.slug for s in specs}
            if unknown:
                raise CommandError(
                    f"unknown reference slugs {sorted(unknown)}; known: {[s.slug for s in specs]}"
                )
            specs = [s for s in specs if s.slug in options["only"]]
        data = TrainingData(
            images=2000 if options["quick"] else 20000, videos=200 if options["quick"] else 3000
        )
        started = time.monotonic()
        directories = {}
        for spec in specs:
            directory = root / spec.slug
            if spec.teacher and not is_trained(root / spec.teacher):
                raise CommandError(f"{spec.slug} needs its teacher {spec.teacher} trained first")
            if is_trained(directory) and not options["force"]:
                self.stdout.write(f"{spec.slug}: already trained in {directory}, reused")
            else:
                steps = min(spec.steps, 3) if options["quick"] else spec.steps
                with tqdm(total=steps, desc=spec.slug, unit="step", leave=True) as bar:

                    def progress(step: int, loss: float, bar=bar) -> None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

                    train_reference(
                        spec,
                        root,
                        data,
                        quick=options["quick"],
                        device=options["device"],
                        progress=progress,
                    )
                self.stdout.write(f"{spec.slug}: trained and saved to {directory}")
            directories[spec.slug] = directory
        if options["evaluate"]:
            self._evaluate(root, specs, options["evaluate"])
        if not options["no_register"]:
            from models_registry.reference_models import register_reference_model

            for spec in specs:
                version, created = register_reference_model(
                    directory=directories[spec.slug],
                    slug=spec.slug,
                    display_name=spec.display_name,
                    description=spec.description,
                )
                state = "registered" if created else "already registered"
                self.stdout.write(f"{spec.slug}: {state} as {version}")
        self.stdout.write(f"done in {time.monotonic() - started:.1f} s")

    def _evaluate(self, root: Path, specs, n: int) -> None:
        """Prompt agreement (colour and shape read by the classifier) of each model, saved as
        root/quality.json and printed."""
        import numpy as np

        from models_registry.generators import load_generator
        from models_registry.generators.quality import load_or_train_classifier, prompt_agreement
        from models_registry.generators.synthetic import (
            benchmark_edits,
            benchmark_prompts,
            render_scene,
        )

        classifier = load_or_train_classifier(root / "quality-classifier.safetensors")
        path = root / "quality.json"
        scores = json.loads(path.read_text()) if path.is_file() else {}
        for spec in specs:
            directory = root / spec.slug
            sha = (directory / "model.safetensors").stat().st_mtime_ns
            if scores.get(spec.slug, {}).get("mtime_ns") == sha:
                continue
            generator = load_generator(directory, device="cpu")
            count = min(n, 24) if spec.task == "text-to-video" else n
            if spec.edits:  # an edit is read against its target scene
                edits = benchmark_edits(count)
                sources = np.stack([render_scene(e.source) for e in edits])
                samples = generator.generate(
                    [e.instruction for e in edits], list(range(count)), images=sources
                )
                prompts = [e.target_caption for e in edits]
            else:
                prompts = [p for p, _ in benchmark_prompts(spec.task, count)]
                samples = generator.generate(prompts, list(range(count)))
            scores[spec.slug] = {**prompt_agreement(classifier, samples, prompts), "mtime_ns": sha}
        path.write_text(json.dumps(scores, indent=2))
        for spec in specs:
            score = scores[spec.slug]
            self.stdout.write(
                f"{spec.slug}: prompt agreement colour {score['colour']:.2f} "
                f"shape {score['shape']:.2f} both {score['both']:.2f} (n={score['n']})"
            )
