"""train_demo_clip: train (or reuse) the small demo CLIP on synthetic renders."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Train the demo CLIP (open_clip config demo-clip-tiny) on the synthetic dataset and save "
        "weights + config; an existing checkpoint is reused unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--out",
            type=Path,
            default=settings.VAR_DIR / "weights" / "demo-clip-tiny.safetensors",
            help="weights file; the config JSON is written next to it",
        )
        parser.add_argument("--steps", type=int, default=400)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force", action="store_true")

    def handle(self, *args, **options):
        from evaluation.features.demo_clip import train_demo_clip
        from evaluation.features.weights import sha256_file

        ckpt = train_demo_clip(
            options["out"], steps=options["steps"], seed=options["seed"], force=options["force"]
        )
        what = "trained" if ckpt.trained else "reused"
        accuracy = (
            f", held-out caption->image top-1 {ckpt.retrieval_accuracy:.2f}"
            if ckpt.retrieval_accuracy is not None
            else ""
        )
        self.stdout.write(f"demo CLIP {what}: {ckpt.weights_path}{accuracy}")
        self.stdout.write(
            f"use: CLIP_MODEL_NAME={ckpt.model_name} CLIP_WEIGHTS_PATH={ckpt.weights_path} "
            f"CLIP_WEIGHTS_CUSTOM=1  (sha256 {sha256_file(ckpt.weights_path)})"
        )
