"""Sampling speed and quality of the reference generators on this machine.

    .venv/bin/python benchmarks/generation.py [--models-dir var/reference_models] [--device cpu]
        [--threads 0] [--quality 64]

Needs the models trained by `manage.py train_reference_models` (pure torch, no database).
Prints, per reference generator: samples/s at its default sampler and steps, NFE per sample,
samples/s against the number of sampler steps, the batch-size scaling (samples/s at batch
1, 4, 16 relative to batch 1), and the prompt agreement of the colour/shape classifier
(the quality evidence: the best image model must reach >= 0.80, the under-trained one less).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rate(generator, prompts: list[str], repeats: int = 1, **params) -> float:
    """Samples per second of one generate() call over `prompts` (best of `repeats`)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        generator.generate(prompts, list(range(len(prompts))), **params)
        best = min(best, time.perf_counter() - started)
    return len(prompts) / best


def nfe(config: dict, steps: int) -> int:
    """Network evaluations per sample (CFG doubles the batch, not the count of calls)."""
    name = config["sampler"]["name"]
    per_step = {"heun": 2, "ve-pc": 1 + config["sampler"].get("corrector_steps", 1)}.get(name, 1)
    return steps * per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "var" / "reference_models")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--quality", type=int, default=64, help="samples per model for agreement")
    args = parser.parse_args()

    import torch

    from models_registry.generators import load_generator
    from models_registry.generators.quality import load_or_train_classifier, prompt_agreement
    from models_registry.generators.reference import REFERENCE_SPECS, is_trained
    from models_registry.generators.synthetic import benchmark_prompts

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device={args.device} torch threads={torch.get_num_threads()} models={args.models_dir}")
    classifier = load_or_train_classifier(args.models_dir / "quality-classifier.safetensors")
    rows = []
    for spec in REFERENCE_SPECS:
        directory = args.models_dir / spec.slug
        if not is_trained(directory):
            print(f"{spec.slug}: not trained, skipped (run manage.py train_reference_models)")
            continue
        if spec.edits:  # editors need source images: measured by the metrics stage instead
            print(f"{spec.slug}: an image editor, skipped")
            continue
        gen = load_generator(directory, device=args.device)
        sampler = gen.sampler
        prompts = [p for p, _ in benchmark_prompts(spec.task, 16)]
        gen.generate(prompts[:2], [0, 1])  # warm-up
        default_rate = _rate(gen, prompts[:8])
        print(
            f"\n{spec.slug} ({spec.paradigm}, {sampler['name']} {sampler['steps']} steps, "
            f"CFG {sampler['guidance_scale']}, NFE/sample {nfe(gen.config, sampler['steps'])}): "
            f"{default_rate:.2f} samples/s at batch 8"
        )
        steps_grid = sorted({1, 2, 4, 8, sampler["steps"]} - {0})
        if spec.paradigm == "score":
            steps_grid = sorted({10, 25, 50, sampler["steps"]})
        line = []
        for steps in steps_grid:
            line.append(f"{steps}: {_rate(gen, prompts[:8], steps=steps):.2f}")
        print("  samples/s by steps (batch 8):  " + "  ".join(line))
        small_steps = min(4, sampler["steps"]) if spec.paradigm != "score" else 10
        base = _rate(gen, prompts[:1], repeats=3, steps=small_steps)
        scaling = [f"1: 1.00 ({base:.2f}/s)"]
        for batch in (4, 16):
            scaling.append(f"{batch}: {_rate(gen, prompts[:batch], steps=small_steps) / base:.2f}")
        print(
            f"  batch scaling at {small_steps} steps (samples/s relative to batch 1):  "
            + "  ".join(scaling)
        )
        if args.quality:
            n = min(args.quality, 24) if spec.task == "text-to-video" else args.quality
            quality_prompts = [p for p, _ in benchmark_prompts(spec.task, n)]
            samples = gen.generate(quality_prompts, list(range(n)))
            score = prompt_agreement(classifier, samples, quality_prompts)
            rows.append((spec.slug, spec.task, score))
            print(
                f"  prompt agreement: colour {score['colour']:.2f} shape {score['shape']:.2f} "
                f"both {score['both']:.2f} (n={n})"
            )
    if rows:
        print("\nprompt agreement (colour and shape both right), best first:")
        for slug, task, score in sorted(rows, key=lambda r: -r[2]["both"]):
            print(f"  {slug:28s} {task:14s} {score['both']:.2f}")


if __name__ == "__main__":
    main()
