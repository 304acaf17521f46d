"""Votes needed to rank 20 simulated models (Kendall tau >= 0.9): active vs uniform pairing.

    .venv/bin/python benchmarks/sampling.py [--repeats 24] [--spread 8] [--models 20]

True skills are evenly spaced over `--spread` logits (8 logits ≈ 1,390 Elo points, the span of a
public image arena from the weakest to the strongest generator). Every vote is drawn from the
Bradley–Terry model with those skills; both samplers see only the ratings refitted every 10
votes. Prints the mean votes each sampler needs and their ratio (target: >= 2).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arena.sampling import SamplingConfig  # noqa: E402
from arena.sampling_simulation import simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=32)
    parser.add_argument("--spread", type=float, nargs="+", default=[4.0, 8.0, 12.0])
    parser.add_argument("--target", type=float, default=0.9)
    args = parser.parse_args()
    config = SamplingConfig(floor=0.05)
    print(f"{args.models} models, Kendall tau >= {args.target}, {args.repeats} runs per cell")
    print(f"{'spread (logits)':>16} {'active':>10} {'uniform':>10} {'ratio':>7} {'seconds':>8}")
    for spread in args.spread:
        skills = np.linspace(-spread / 2, spread / 2, args.models)
        started = time.perf_counter()
        needed = {"active": [], "uniform": []}
        for run in range(args.repeats):
            for sampler, votes in needed.items():
                result = simulate(
                    true_skills=skills,
                    sampler=sampler,
                    rng=np.random.default_rng(run),
                    target_tau=args.target,
                    config=config,
                )
                votes.append(result.votes_to_target)
        active, uniform = np.mean(needed["active"]), np.mean(needed["uniform"])
        print(
            f"{spread:>16.1f} {active:>10.0f} {uniform:>10.0f} {uniform / active:>7.2f} "
            f"{time.perf_counter() - started:>8.1f}"
        )


if __name__ == "__main__":
    main()
