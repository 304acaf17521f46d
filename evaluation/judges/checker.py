"""The synthetic checker as a pairwise judge: of two samples of one prompt, the one showing more of
the prompt's attributes (models_registry.generators.quality.check_samples) wins.

No VLM and no settings: the checker reads colour, shape, size, position or motion and background
of captions of the synthetic grammar. Equal scores are a tie, both at 0 "both bad"; a prompt
outside the grammar cannot be judged (a failed verdict, so nothing is stored for the pair).
It follows the part of `ChatJudge` that pairwise judging of battles uses (`name`, `cache`,
`map`, `pairwise`); it judges no single samples (its per-sample score is the prompt_agreement
metric).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from evaluation.judges.chat_judge import JudgeSample
from evaluation.judges.verdicts import Verdict
from models_registry.generators.quality import SampleCheck, parse_prompt

BOTH_BAD = "both_bad"  # a pairwise outcome besides "A", "B" and "tie"
MODE = "checker/v1"

T = TypeVar("T")
R = TypeVar("R")


class Checker(Protocol):
    name: str

    def check(self, media: np.ndarray, prompts: list[str]) -> list[SampleCheck | None]: ...


def pairwise_outcome(score_a: float, score_b: float) -> str:
    """ "A" or "B" for the higher score, "both_bad" when both are 0, else "tie"."""
    if math.isclose(score_a, score_b, abs_tol=1e-9):
        return BOTH_BAD if math.isclose(score_a, 0.0, abs_tol=1e-9) else "tie"
    return "A" if score_a > score_b else "B"


def sample_pixels(sample: JudgeSample) -> np.ndarray:
    """uint8 [H, W, 3] of an image sample, or [T, H, W, 3] of a video's frames."""
    frames = []
    for data in sample.images:
        try:
            with Image.open(io.BytesIO(data)) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"cannot decode an image of the sample: {exc}") from exc
    if not frames:
        raise ValueError("the sample has no image")
    if not sample.video:
        return frames[0]
    if len({frame.shape for frame in frames}) != 1:
        raise ValueError("the video's frames differ in size")
    return np.stack(frames)


class CheckerJudge:
    """Pairwise verdicts by the synthetic checker (see the module docstring)."""

    cache = None  # reading two small samples costs less than a cache lookup

    def __init__(self, checker: Checker, *, name: str | None = None) -> None:
        self.backend = checker
        self.name = name or checker.name

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterable[R]:
        return map(fn, items)

    def can_judge(self, prompt: str) -> bool:
        """Whether `prompt` is a caption of the synthetic grammar (the only ones it can judge)."""
        return parse_prompt(prompt) is not None

    def check(self, prompt: str, sample: JudgeSample) -> SampleCheck:
        pixels = sample_pixels(sample)
        (check,) = self.backend.check(pixels[None], [prompt])
        if check is None:
            raise ValueError(f"prompt outside the synthetic grammar: {prompt!r}")
        return check

    def pairwise(self, *, prompt: str, a: JudgeSample, b: JudgeSample) -> Verdict:
        """A / B / tie / both_bad for samples (a, b) of `prompt` by their checker scores."""
        if not self.can_judge(prompt):
            return Verdict.failed(
                f"the checker judges only prompts of the synthetic domain; {prompt[:120]!r} is not "
                "a caption parse_caption reads"
            )
        try:
            check_a, check_b = self.check(prompt, a), self.check(prompt, b)
        except ValueError as exc:
            return Verdict.failed(f"cannot check a sample: {exc}")
        outcome = pairwise_outcome(check_a.score, check_b.score)
        return Verdict(
            status="ok",
            outcome=outcome,
            rationale=f"checker score A {check_a.score:.2f}, B {check_b.score:.2f}",
            raw={
                "mode": MODE,
                "a": {"score": check_a.score, "attributes": check_a.attributes},
                "b": {"score": check_b.score, "attributes": check_b.attributes},
            },
        )
