"""VLM-judge services: build the configured judge and judge a version's samples.

Single-sample verdicts are `JudgeResult` rows (one per sample, judge and mode) summarised as a
`MetricResult` per version (metric "vqascore" or "viescore", backbone = judge name), so the
leaderboard shows them beside the other metrics. Pairwise judging of battles, whose verdicts are
arena votes, is `arena.judging`.

Backends: "api" (an OpenAI-compatible server), "local" (a Hugging Face VLM) and "checker" (the
synthetic domain's own checker, evaluation.judges.checker: no VLM, no settings, pairwise only;
it is never picked unless asked for, since it knows only the synthetic captions).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from scipy import stats

from evaluation.judges import rubric, vqascore
from evaluation.judges.cache import cache_key
from evaluation.judges.chat_judge import SINGLE_MODES, ChatJudge, JudgeSample
from evaluation.judges.checker import CheckerJudge
from evaluation.judges.media import MediaError, png_bytes, video_frames
from evaluation.judges.openai_client import OpenAIChatClient
from evaluation.judges.verdicts import Verdict
from evaluation.metrics.catalogue import metric_for_judge_mode
from evaluation.models import (
    JudgeCacheEntry,
    JudgeMode,
    JudgeResult,
    JudgeStatus,
    MediaKind,
    MetricResult,
    MetricStatus,
    Sample,
)
from models_registry.generators.tasks import task_spec
from models_registry.models import ModelVersion

VLM_BACKENDS = ("api", "local")
CHECKER_BACKEND = "checker"
BACKENDS = (*VLM_BACKENDS, CHECKER_BACKEND)
# The MetricResult each single-sample mode is summarised as (the catalogue's judge entries).
METRIC_FOR_MODE = {mode: metric_for_judge_mode(mode) for mode in JudgeMode}
Progress = Callable[[int], None]
CHECKER_SINGLE_SAMPLES = (
    "the checker judge compares the two samples of arena battles (judge --mode pairwise); "
    "its per-sample score is the prompt_agreement metric, computed by the metrics stage "
    "(or manage.py compute_metric prompt_agreement)"
)


class JudgeNotConfigured(RuntimeError):
    """The requested judge backend has no settings (the message names what to set)."""


class JudgeUnsupported(JudgeNotConfigured):
    """The requested backend cannot do what was asked (the checker judges no single samples)."""


# --- configuration -----------------------------------------------------------------------------
def resolve_backend(backend: str | None = None) -> str:
    """The backend to use: the argument, JUDGE_BACKEND, or whichever of local / API is configured
    (the checker only when named: it needs no settings)."""
    chosen = backend or settings.JUDGE_BACKEND
    if not chosen:
        if settings.JUDGE_LOCAL_VLM_PATH:
            chosen = "local"
        elif settings.JUDGE_API_BASE_URL:
            chosen = "api"
        else:
            raise JudgeNotConfigured(
                "no VLM judge configured: set JUDGE_API_BASE_URL and JUDGE_API_MODEL (an "
                "OpenAI-compatible server such as vLLM or Ollama) or JUDGE_LOCAL_VLM_PATH (a local "
                "Hugging Face VLM directory); battles of the synthetic domain can also be judged by "
                "backend 'checker', which needs neither"
            )
    if chosen not in BACKENDS:
        raise JudgeNotConfigured(f"unknown judge backend {chosen!r}; expected one of {BACKENDS}")
    if chosen == "api" and not (settings.JUDGE_API_BASE_URL and settings.JUDGE_API_MODEL):
        raise JudgeNotConfigured(
            "the API judge needs JUDGE_API_BASE_URL (e.g. http://127.0.0.1:8000/v1) and "
            "JUDGE_API_MODEL (the served model name); JUDGE_API_KEY if the server wants one"
        )
    if chosen == "local" and not settings.JUDGE_LOCAL_VLM_PATH:
        raise JudgeNotConfigured(
            "the local judge needs JUDGE_LOCAL_VLM_PATH (a directory with config.json, "
            "*.safetensors and the processor / tokenizer files)"
        )
    return chosen


def default_mode(backend: str) -> str:
    """VQAScore for a local VLM (logits are free), the rubric for an API judge."""
    return JudgeMode.VQASCORE if backend == "local" else JudgeMode.RUBRIC


def judge_name_for(backend: str) -> str:
    """The judge's name on results and the leaderboard: JUDGE_NAME, or the model / folder name."""
    if settings.JUDGE_NAME:
        name = settings.JUDGE_NAME
    elif backend == "api":
        name = settings.JUDGE_API_MODEL
    else:
        name = Path(settings.JUDGE_LOCAL_VLM_PATH).name
    return name[:80]  # MetricResult.backbone length


@lru_cache(maxsize=1)
def _local_vlm(path: str, device: str) -> vqascore.LocalVLM:
    # One model per worker process: loading a real VLM takes seconds to minutes.
    return vqascore.LocalVLM.load(path, device=device)


def checker_judge() -> CheckerJudge:
    """The synthetic checker as a pairwise judge (weights at PROMPT_CHECKER_WEIGHTS_PATH, fitted
    there when missing); its name, "synthetic-checker", names its arena rater."""
    from evaluation.backbones import backbone_load
    from evaluation.features.weights import WeightsRejected, WeightsUnavailable

    try:
        return CheckerJudge(backbone_load(key="checker", device="cpu"))
    except (WeightsUnavailable, WeightsRejected) as exc:
        raise JudgeNotConfigured(str(exc)) from exc


def build_judge(*, backend: str | None = None, use_cache: bool = True) -> ChatJudge | CheckerJudge:
    """A `ChatJudge` over the configured backend, with the database response cache, or the
    `CheckerJudge` for backend "checker"."""
    backend = resolve_backend(backend)
    if backend == CHECKER_BACKEND:
        return checker_judge()
    if backend == "api":
        engine = OpenAIChatClient(
            base_url=settings.JUDGE_API_BASE_URL,
            model=settings.JUDGE_API_MODEL,
            api_key=settings.JUDGE_API_KEY,
            timeout_s=settings.JUDGE_API_TIMEOUT_SECONDS,
            max_retries=settings.JUDGE_API_MAX_RETRIES,
            backoff_s=settings.JUDGE_API_BACKOFF_SECONDS,
            backoff_max_s=settings.JUDGE_API_BACKOFF_MAX_SECONDS,
            max_concurrency=settings.JUDGE_API_CONCURRENCY,
            max_tokens=settings.JUDGE_API_MAX_TOKENS,
        )
    else:
        try:
            engine = _local_vlm(str(settings.JUDGE_LOCAL_VLM_PATH), settings.JUDGE_LOCAL_DEVICE)
        except vqascore.VLMUnavailable as exc:
            raise JudgeNotConfigured(str(exc)) from exc
    name = judge_name_for(backend)
    return ChatJudge(backend=engine, name=name, cache=DatabaseJudgeCache() if use_cache else None)


class DatabaseJudgeCache:
    """The response cache in `JudgeCacheEntry`.

    Judge threads only touch memory; the calling thread `preload`s the keys it will ask for and
    `flush`es new answers, so database access stays on one connection.
    """

    def __init__(self) -> None:
        self._known: dict[str, dict] = {}
        self._pending: dict[str, JudgeCacheEntry] = {}

    def preload(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for start in range(0, len(keys), 500):
            for key, response in JudgeCacheEntry.objects.filter(
                key__in=keys[start : start + 500]
            ).values_list("key", "response"):
                self._known[key] = response

    def get(self, key: str) -> dict | None:
        return self._known.get(key)

    def put(self, key: str, *, judge: str, mode: str, response: dict) -> None:
        self._known[key] = response
        self._pending[key] = JudgeCacheEntry(key=key, judge=judge, mode=mode, response=response)

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = list(self._pending.values()), {}
            JudgeCacheEntry.objects.bulk_create(pending, ignore_conflicts=True)


def judge_cache_flush(judge: ChatJudge) -> None:
    if isinstance(judge.cache, DatabaseJudgeCache):
        judge.cache.flush()


def judge_cache_preload(judge: ChatJudge, keys: Iterable[str]) -> None:
    if isinstance(judge.cache, DatabaseJudgeCache):
        judge.cache.preload(keys)


# --- media ------------------------------------------------------------------------------------
def judge_sample_of(sample: Sample) -> JudgeSample:
    """What the judge sees of a sample: the stored image bytes, or N evenly sampled video frames.

    Reads storage only (no database), so judge threads may call it. Raises MediaError.
    """
    try:
        with sample.media.storage.open(sample.media.name, "rb") as handle:
            if sample.media_kind == MediaKind.VIDEO:
                frames = video_frames(handle, settings.JUDGE_VIDEO_FRAMES)
                images = [png_bytes(frame) for frame in frames]
            else:
                images = [handle.read()]
        source = None
        if sample.prompt.source_image:  # an edit: the judge sees what it edits
            with sample.prompt.source_image.open("rb") as handle:
                source = handle.read()
    except OSError as exc:
        raise MediaError(f"cannot open {sample.media.name}: {exc}") from exc
    return JudgeSample(
        prompt=sample.prompt.text,
        sha256=sample.sha256,
        images=images,
        video=sample.media_kind == MediaKind.VIDEO,
        source=source,
    )


# --- single-sample judging --------------------------------------------------------------------
@dataclass
class JudgeRunSummary:
    judge: str
    mode: str
    total: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: list[str] = field(default_factory=list)
    metric: MetricResult | None = None


def judge_version_samples(
    *,
    version: ModelVersion,
    mode: str | None = None,
    backend: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    judge: ChatJudge | None = None,
) -> JudgeRunSummary:
    """Judge every sample of `version` in `mode` ("vqascore" or "rubric") and store the results.

    Samples that already have an ok result from this judge are skipped unless `force`; answers
    already in the cache cost no request. Calls `progress(k)` as k more samples are done.
    Returns counts, token usage and the version's refreshed MetricResult.
    """
    if mode is not None and mode not in SINGLE_MODES:
        raise ValueError(
            f"mode {mode!r} does not judge single samples; expected one of {SINGLE_MODES}"
        )
    if backend == CHECKER_BACKEND or isinstance(judge, CheckerJudge):
        raise JudgeUnsupported(CHECKER_SINGLE_SAMPLES)
    judge = judge or build_judge(backend=backend)
    local = isinstance(judge.backend, vqascore.LocalVLM)
    edits = task_spec(version.model.task).source_image
    if mode is None and edits:
        mode = JudgeMode.RUBRIC  # VQAScore needs a prompt that describes the image
    mode = mode or default_mode("local" if local else "api")
    samples = list(Sample.objects.filter(version=version).select_related("prompt").order_by("id"))
    done = set()
    if not force:
        done = set(
            JudgeResult.objects.filter(
                sample__version=version, judge=judge.name, mode=mode, status=JudgeStatus.OK
            ).values_list("sample_id", flat=True)
        )
    todo = [sample for sample in samples if sample.id not in done]
    summary = JudgeRunSummary(
        judge=judge.name, mode=mode, total=len(samples), skipped=len(samples) - len(todo)
    )
    if progress and summary.skipped:
        progress(summary.skipped)
    cache_mode = vqascore.MODE if mode == JudgeMode.VQASCORE else rubric.MODE
    if mode == JudgeMode.RUBRIC and edits:
        cache_mode = rubric.EDIT_MODE
    judge_cache_preload(
        judge,
        (
            cache_key(
                judge=judge.name, mode=cache_mode, prompt=s.prompt.text, sample_sha256s=[s.sha256]
            )
            for s in todo
        ),
    )
    verdicts = judge.map(lambda sample: judge.judge(mode, lambda: judge_sample_of(sample)), todo)
    for sample, verdict in zip(todo, verdicts, strict=True):
        judge_cache_flush(judge)
        _store_judge_result(sample=sample, judge=judge.name, mode=mode, verdict=verdict)
        _count(summary, verdict)
        if progress:
            progress(1)
    # VQAScore from local weights records their hash; an API judge's weights are unknown.
    weights = judge.backend.weights_sha256 if local and mode == JudgeMode.VQASCORE else ""
    summary.metric = refresh_judge_metric(
        version=version, judge_name=judge.name, mode=mode, weights_sha256=weights
    )
    return summary


def _count(summary: JudgeRunSummary, verdict: Verdict) -> None:
    if verdict.ok:
        summary.ok += 1
    else:
        summary.failed += 1
        if len(summary.errors) < 5:
            summary.errors.append(verdict.error)
    summary.cached += verdict.cached
    if not verdict.cached:
        summary.prompt_tokens += verdict.prompt_tokens
        summary.completion_tokens += verdict.completion_tokens


def _store_judge_result(*, sample: Sample, judge: str, mode: str, verdict: Verdict) -> JudgeResult:
    result, _ = JudgeResult.objects.update_or_create(
        sample=sample,
        judge=judge,
        mode=mode,
        defaults={
            "status": JudgeStatus.OK if verdict.ok else JudgeStatus.FAILED,
            "score": verdict.score if verdict.ok else None,
            "rationale": verdict.rationale,
            "raw": verdict.raw,
            "error": verdict.error,
            "prompt_tokens": verdict.prompt_tokens,
            "completion_tokens": verdict.completion_tokens,
        },
    )
    return result


def mean_interval(
    values: Sequence[float], *, confidence: float = 0.95
) -> tuple[float, float | None, float | None]:
    """Mean and Student-t confidence interval of the mean (bounds None for fewer than 2 values)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None, None
    sem = statistics.stdev(values) / math.sqrt(len(values))
    if sem == 0.0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def refresh_judge_metric(
    *, version: ModelVersion, judge_name: str, mode: str, weights_sha256: str = ""
) -> MetricResult:
    """Summarise a version's JudgeResults of one judge and mode as one MetricResult row.

    value = mean score over ok samples (VQAScore 0–1, VIEScore 0–10), lower/upper = 95% t-interval
    of the mean, n = ok samples; status failed (with the first error) when no sample succeeded.
    """
    rows = JudgeResult.objects.filter(sample__version=version, judge=judge_name, mode=mode)
    scores = list(rows.filter(status=JudgeStatus.OK).values_list("score", flat=True))
    n_failed = rows.filter(status=JudgeStatus.FAILED).count()
    first_error = rows.filter(status=JudgeStatus.FAILED).values_list("error", flat=True).first()
    defaults: dict = {"weights_sha256": weights_sha256, "n": len(scores)}
    if scores:
        value, lower, upper = mean_interval(scores)
        message = (
            f"{n_failed} of {n_failed + len(scores)} samples failed: {first_error}"
            if n_failed
            else ""
        )
        defaults.update(
            status=MetricStatus.OK, value=value, lower=lower, upper=upper, message=message
        )
    else:
        defaults.update(
            status=MetricStatus.FAILED,
            value=None,
            lower=None,
            upper=None,
            message=f"no sample was judged successfully ({n_failed} failed): {first_error or 'no samples'}",
        )
    result, _ = MetricResult.objects.update_or_create(
        version=version,
        metric=METRIC_FOR_MODE[JudgeMode(mode)],
        backbone=judge_name,
        reference="",
        defaults=defaults,
    )
    return result
