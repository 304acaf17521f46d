"""Running the judge modes on a backend (HTTP API or local VLM), with the response cache.

Every failure a judge can cause (HTTP errors after retries, malformed answers, unreadable media)
becomes a failed `Verdict` with the reason; only successfully parsed answers are cached, so a
re-run retries the failures and costs nothing for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from evaluation.judges import pairwise, rubric, vqascore
from evaluation.judges.cache import JudgeCache, cache_key
from evaluation.judges.media import MediaError, open_image
from evaluation.judges.openai_client import ChatResponse, JudgeAPIError, image_part, text_part
from evaluation.judges.verdicts import Verdict, VerdictParseError

T = TypeVar("T")
R = TypeVar("R")

SINGLE_MODES = ("vqascore", "rubric")
MODES = (*SINGLE_MODES, "pairwise")
# Failures a judge or a sample can cause; anything else is our bug and propagates.
JUDGE_FAILURES = (JudgeAPIError, VerdictParseError, MediaError)


class ChatBackend(Protocol):
    def complete(
        self,
        messages: Sequence[dict],
        *,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
    ) -> ChatResponse: ...


@dataclass(frozen=True)
class JudgeSample:
    """What a judge sees of one sample: its prompt and encoded images (one, or a video's frames)."""

    prompt: str
    sha256: str
    images: Sequence[bytes]
    video: bool = False
    source: bytes | None = None  # an edit's source image (PNG bytes); `prompt` the instruction


class ChatJudge:
    """One named judge (the name keys the cache and the stored results) over one backend."""

    def __init__(self, *, backend: ChatBackend, name: str, cache: JudgeCache | None = None) -> None:
        self.backend = backend
        self.name = name
        self.cache = cache

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterable[R]:
        """Apply `fn` with the backend's concurrency (API) or one at a time (local VLM)."""
        backend_map = getattr(self.backend, "map", None)
        return backend_map(fn, items) if backend_map else map(fn, items)

    def judge(self, mode: str, sample: Callable[[], JudgeSample] | JudgeSample) -> Verdict:
        """Single-sample verdict in `mode` ("vqascore" or "rubric"); `sample` may be a loader."""
        try:
            loaded = sample() if callable(sample) else sample
        except MediaError as exc:
            return Verdict.failed(f"cannot read the sample: {exc}")
        if mode == "vqascore":
            if loaded.source is not None:
                return Verdict.failed(
                    "VQAScore asks whether an image shows its prompt, and an edit's instruction "
                    "describes a change, not an image: judge edits with the rubric"
                )
            return self.vqascore(loaded)
        if mode == "rubric":
            return self.rubric(loaded)
        raise ValueError(f"unknown single-sample mode {mode!r}; expected one of {SINGLE_MODES}")

    # --- the cached question --------------------------------------------------------------
    def _ask(
        self,
        *,
        mode: str,
        prompt: str,
        sample_sha256s: Sequence[str],
        ask: Callable[[], dict],
        parse: Callable[[dict], T],
    ) -> tuple[T, dict, bool]:
        key = cache_key(judge=self.name, mode=mode, prompt=prompt, sample_sha256s=sample_sha256s)
        answer = self.cache.get(key) if self.cache is not None else None
        cached = answer is not None
        if answer is None:
            answer = ask()
        try:
            parsed = parse(answer)
        except VerdictParseError as exc:
            exc.answer = answer  # type: ignore[attr-defined]  # kept on the failed verdict
            raise
        if not cached and self.cache is not None:
            self.cache.put(key, judge=self.name, mode=mode, response=answer)
        return parsed, answer, cached

    def _chat(self, messages: list[dict], **options: int) -> Callable[[], dict]:
        def ask() -> dict:
            response = self.backend.complete(messages, **options)
            return {
                "text": response.text,
                "prompt_tokens": response.prompt_tokens,
                "completion_tokens": response.completion_tokens,
                "top_logprobs": response.top_logprobs,
            }

        return ask

    # --- modes ----------------------------------------------------------------------------
    def rubric(self, sample: JudgeSample) -> Verdict:
        """VIEScore-style rubric; score = sqrt(SC · PQ) on 0–10. An edit (a sample with a
        source) gets the editing rubric: source, edit and instruction."""
        try:
            if sample.source is not None:
                messages = rubric.build_edit_rubric_messages(
                    instruction=sample.prompt, source=sample.source, edited=sample.images[0]
                )
                mode, parse = rubric.EDIT_MODE, rubric.parse_edit_rubric
            else:
                messages = rubric.build_rubric_messages(
                    prompt=sample.prompt, images=sample.images, video=sample.video
                )
                mode, parse = rubric.MODE, rubric.parse_rubric
            scores, answer, cached = self._ask(
                mode=mode,
                prompt=sample.prompt,
                sample_sha256s=[sample.sha256],
                ask=self._chat(messages),
                parse=lambda answer: parse(answer["text"]),
            )
        except JUDGE_FAILURES as exc:
            return _failed(exc)
        return Verdict(
            status="ok",
            score=scores.overall,
            rationale=scores.rationale,
            raw={
                "semantic_consistency": scores.semantic_consistency,
                "perceptual_quality": scores.perceptual_quality,
                "answer": answer["text"],
            },
            prompt_tokens=answer["prompt_tokens"],
            completion_tokens=answer["completion_tokens"],
            cached=cached,
        )

    def vqascore(self, sample: JudgeSample) -> Verdict:
        """VQAScore in [0, 1]: the local VLM's logits, or an API's first-token log-probabilities;
        a video scores the mean over its frames."""
        local = isinstance(self.backend, vqascore.LocalVLM)
        try:
            frames, answer, cached = self._ask(
                mode=vqascore.MODE,
                prompt=sample.prompt,
                sample_sha256s=[sample.sha256],
                ask=(lambda: self._vqascore_local(sample))
                if local
                else (lambda: self._vqascore_api(sample)),
                parse=_vqascore_frames,
            )
        except JUDGE_FAILURES as exc:
            return _failed(exc)
        return Verdict(
            status="ok",
            score=sum(frames) / len(frames),
            rationale=f"P(Yes) to {vqascore.vqascore_question(sample.prompt)!r}",
            raw=answer,
            prompt_tokens=answer["prompt_tokens"],
            completion_tokens=answer["completion_tokens"],
            cached=cached,
        )

    def _vqascore_local(self, sample: JudgeSample) -> dict:
        backend: vqascore.LocalVLM = self.backend  # type: ignore[assignment]
        frames, tokens = [], 0
        for data in sample.images:
            answer = backend.yes_no(image=open_image(data), prompt=sample.prompt)
            frames.append(
                {
                    "p_yes": answer.probability,
                    "logit_yes": answer.logit_yes,
                    "logit_no": answer.logit_no,
                }
            )
            tokens += answer.prompt_tokens
        return {"frames": frames, "prompt_tokens": tokens, "completion_tokens": 0}

    def _vqascore_api(self, sample: JudgeSample) -> dict:
        frames, prompt_tokens, completion_tokens = [], 0, 0
        question = vqascore.vqascore_question(sample.prompt)
        for data in sample.images:
            messages = [{"role": "user", "content": [image_part(data), text_part(question)]}]
            response = self.backend.complete(messages, max_tokens=1, top_logprobs=20)
            if not response.top_logprobs:
                raise VerdictParseError(
                    "the judge API returned no log-probabilities; VQAScore over HTTP needs a server "
                    "that supports `logprobs` (vLLM, SGLang, OpenAI), or use the local backend"
                )
            try:
                p_yes = vqascore.yes_probability_from_top_logprobs(response.top_logprobs)
            except ValueError as exc:
                raise VerdictParseError(str(exc)) from exc
            frames.append({"p_yes": p_yes, "answer": response.text})
            prompt_tokens += response.prompt_tokens
            completion_tokens += response.completion_tokens
        return {
            "frames": frames,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        }

    def pairwise(self, *, prompt: str, a: JudgeSample, b: JudgeSample) -> Verdict:
        """A / B / tie for samples (a, b) of one prompt, asked in both orders (see pairwise.py)."""
        answers, preferences, cached = [], [], True
        try:
            for first, second in ((a, b), (b, a)):
                messages = pairwise.build_pairwise_messages(
                    prompt=prompt, images_a=first.images, images_b=second.images, video=first.video
                )
                preference, answer, hit = self._ask(
                    mode=pairwise.MODE,
                    prompt=prompt,
                    sample_sha256s=[first.sha256, second.sha256],
                    ask=self._chat(messages),
                    parse=lambda answer: pairwise.parse_preference(answer["text"]),
                )
                preferences.append(preference)
                answers.append(answer)
                cached = cached and hit
        except JUDGE_FAILURES as exc:
            return _failed(exc, earlier=answers)
        outcome = pairwise.combine_orders(preferences[0], preferences[1])
        consistent = preferences[0] == pairwise.swapped(preferences[1])
        return Verdict(
            status="ok",
            outcome=str(outcome),
            rationale="" if consistent else "the two orders disagree (position bias): tie",
            raw={
                "a_first": {"preference": str(preferences[0]), "answer": answers[0]["text"]},
                "b_first": {"preference": str(preferences[1]), "answer": answers[1]["text"]},
                "consistent": consistent,
            },
            prompt_tokens=sum(answer["prompt_tokens"] for answer in answers),
            completion_tokens=sum(answer["completion_tokens"] for answer in answers),
            cached=cached,
        )


def _vqascore_frames(answer: dict) -> list[float]:
    frames = [float(frame["p_yes"]) for frame in answer.get("frames", [])]
    if not frames:
        raise VerdictParseError("no frames were scored")
    return frames


def _failed(exc: Exception, earlier: Sequence[dict] = ()) -> Verdict:
    answers = [*earlier, *([exc.answer] if hasattr(exc, "answer") else [])]
    return Verdict.failed(
        f"{type(exc).__name__}: {exc}",
        raw={"answers": [answer.get("text", "") for answer in answers]} if answers else {},
        prompt_tokens=sum(answer.get("prompt_tokens", 0) for answer in answers),
        completion_tokens=sum(answer.get("completion_tokens", 0) for answer in answers),
    )
