"""VLM-judge services: judge a version's samples, judge new arena battles, judge–human agreement.

Single-sample verdicts are `JudgeResult` rows (one per sample, judge and mode) summarised as a
`MetricResult` per version (metric "vqascore" or "viescore", backbone = judge name), so the
leaderboard shows them beside the other metrics. Pairwise verdicts are arena `Vote`s by a judge
`Rater` (rater_kind="judge") on the judge's own `Battle` rows: they never mix with human votes, and
the ratings refresh fits them into their own Bradley–Terry column.
"""

from __future__ import annotations

import math
import secrets
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from scipy import stats

from arena.models import Battle, Outcome, Rater, RaterKind, Vote
from evaluation.judges import pairwise, rubric, vqascore
from evaluation.judges.agreement import AgreementItem, agreement_stats
from evaluation.judges.cache import cache_key
from evaluation.judges.chat_judge import SINGLE_MODES, ChatJudge, JudgeSample
from evaluation.judges.media import MediaError, png_bytes, video_frames
from evaluation.judges.openai_client import OpenAIChatClient
from evaluation.judges.verdicts import Verdict
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
from models_registry.models import ModelVersion, Task

BACKENDS = ("api", "local")
METRIC_FOR_MODE = {JudgeMode.VQASCORE: "vqascore", JudgeMode.RUBRIC: "viescore"}
OUTCOME_FOR_PREFERENCE = {
    pairwise.Preference.A: Outcome.MODEL_A,
    pairwise.Preference.B: Outcome.MODEL_B,
    pairwise.Preference.TIE: Outcome.TIE,
}
Progress = Callable[[int], None]


class JudgeNotConfigured(RuntimeError):
    """The requested judge backend has no settings (the message names what to set)."""


# --- configuration -----------------------------------------------------------------------------
def resolve_backend(backend: str | None = None) -> str:
    """The backend to use: the argument, JUDGE_BACKEND, or whichever of local / API is configured."""
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
                "Hugging Face VLM directory)"
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


def build_judge(*, backend: str | None = None, use_cache: bool = True) -> ChatJudge:
    """A `ChatJudge` over the configured backend, with the database response cache."""
    backend = resolve_backend(backend)
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


def _flush(judge: ChatJudge) -> None:
    if isinstance(judge.cache, DatabaseJudgeCache):
        judge.cache.flush()


def _preload(judge: ChatJudge, keys: Iterable[str]) -> None:
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
    except OSError as exc:
        raise MediaError(f"cannot open {sample.media.name}: {exc}") from exc
    return JudgeSample(
        prompt=sample.prompt.text,
        sha256=sample.sha256,
        images=images,
        video=sample.media_kind == MediaKind.VIDEO,
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
    judge = judge or build_judge(backend=backend)
    local = isinstance(judge.backend, vqascore.LocalVLM)
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
    _preload(
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
        _flush(judge)
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
    defaults: dict = {"weights_sha256": weights_sha256, "n": len(scores), "eval_run": None}
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


# --- pairwise judging of battles --------------------------------------------------------------
@dataclass
class BattleJudgingSummary:
    judge: str
    task: str
    pairs: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    cached: int = 0
    votes: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: list[str] = field(default_factory=list)


def judge_rater(*, judge_name: str) -> Rater:
    """The arena rater that holds one judge's votes (created on first use)."""
    rater, _ = Rater.objects.get_or_create(
        judge_name=judge_name, defaults={"kind": RaterKind.JUDGE}
    )
    if rater.kind != RaterKind.JUDGE:
        raise ValueError(f"rater {rater.pk} named {judge_name!r} is not a judge rater")
    return rater


def _pair_key(prompt_id: int, sample_a_id: int, sample_b_id: int) -> tuple[int, int, int]:
    return (prompt_id, min(sample_a_id, sample_b_id), max(sample_a_id, sample_b_id))


def judge_battles(
    *,
    task: str,
    backend: str | None = None,
    version: ModelVersion | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    judge: ChatJudge | None = None,
) -> BattleJudgingSummary:
    """Judge, pairwise in both orders, every sample pair served to human raters in `task` that
    this judge has not judged yet (only pairs involving `version`, if given; at most `limit`).

    Each verdict becomes a judge Battle (served to the judge's rater) and its Vote
    (rater_kind="judge", outcome model_a / model_b / tie). Failed verdicts store nothing and are
    retried on the next run. Calls `progress(k)` as k more pairs are done.
    """
    if task not in Task.values:
        raise ValueError(f"unknown task {task!r}; expected one of {Task.values}")
    judge = judge or build_judge(backend=backend)
    rater = judge_rater(judge_name=judge.name)
    human = (
        Battle.objects.filter(task=task, served_to__kind=RaterKind.HUMAN)
        # Everything judge threads read is fetched here: they must not query the database.
        .select_related(
            "prompt",
            "sample_a__version",
            "sample_b__version",
            "sample_a__prompt",
            "sample_b__prompt",
        )
        .order_by("id")
    )
    if version is not None:
        human = human.filter(Q(sample_a__version=version) | Q(sample_b__version=version))
    judged = {
        _pair_key(*row)
        for row in Battle.objects.filter(served_to=rater, task=task).values_list(
            "prompt_id", "sample_a_id", "sample_b_id"
        )
    }
    todo: dict[tuple[int, int, int], Battle] = {}
    for battle in human.iterator(chunk_size=1000):
        key = _pair_key(battle.prompt_id, battle.sample_a_id, battle.sample_b_id)
        same_model = battle.sample_a.version.model_id == battle.sample_b.version.model_id
        if key in judged or key in todo or same_model:
            continue
        todo[key] = battle
        if limit is not None and len(todo) >= limit:
            break
    battles = list(todo.values())
    summary = BattleJudgingSummary(judge=judge.name, task=task, pairs=len(battles))
    _preload(
        judge,
        (
            cache_key(
                judge=judge.name, mode=pairwise.MODE, prompt=b.prompt.text, sample_sha256s=shas
            )
            for b in battles
            for shas in (
                (b.sample_a.sha256, b.sample_b.sha256),
                (b.sample_b.sha256, b.sample_a.sha256),
            )
        ),
    )

    def verdict_for(battle: Battle) -> Verdict:
        try:
            a, b = judge_sample_of(battle.sample_a), judge_sample_of(battle.sample_b)
        except MediaError as exc:
            return Verdict.failed(f"cannot read a sample: {exc}")
        return judge.pairwise(prompt=battle.prompt.text, a=a, b=b)

    for battle, verdict in zip(battles, judge.map(verdict_for, battles), strict=True):
        _flush(judge)
        summary.ok += verdict.ok
        summary.failed += not verdict.ok
        summary.cached += verdict.cached
        if not verdict.cached:
            summary.prompt_tokens += verdict.prompt_tokens
            summary.completion_tokens += verdict.completion_tokens
        if verdict.ok:
            vote = _store_judge_vote(rater=rater, human_battle=battle, verdict=verdict)
            if vote is not None:
                summary.votes[vote.outcome] = summary.votes.get(vote.outcome, 0) + 1
            else:
                summary.skipped += 1
        elif len(summary.errors) < 5:
            summary.errors.append(verdict.error)
        if progress:
            progress(1)
    return summary


def _store_judge_vote(*, rater: Rater, human_battle: Battle, verdict: Verdict) -> Vote | None:
    """The judge's Battle and Vote for one pair, unless a concurrent run stored it first."""
    now = timezone.now()
    with transaction.atomic():
        Rater.objects.select_for_update().filter(pk=rater.pk).first()  # one writer per judge
        key = (human_battle.sample_a_id, human_battle.sample_b_id)
        if Battle.objects.filter(
            served_to=rater,
            prompt_id=human_battle.prompt_id,
            sample_a_id__in=key,
            sample_b_id__in=key,
        ).exists():
            return None
        battle = Battle.objects.create(
            token=secrets.token_urlsafe(32),
            task=human_battle.task,
            prompt_id=human_battle.prompt_id,
            sample_a_id=human_battle.sample_a_id,
            sample_b_id=human_battle.sample_b_id,
            served_to=rater,
            served_at=now,
            expires_at=now + timedelta(seconds=1),
        )
        return Vote.objects.create(
            battle=battle,
            rater=rater,
            rater_kind=RaterKind.JUDGE,
            outcome=OUTCOME_FOR_PREFERENCE[pairwise.Preference(verdict.outcome)],
            task=human_battle.task,
            category=human_battle.prompt.category,
            model_a_id=human_battle.sample_a.version.model_id,
            model_b_id=human_battle.sample_b.version.model_id,
        )


# --- agreement with humans --------------------------------------------------------------------
_LABEL_FOR_OUTCOME = {
    Outcome.MODEL_A: "A",
    Outcome.MODEL_B: "B",
    Outcome.TIE: "tie",
    Outcome.BOTH_BAD: "tie",
}
_SWAP = {"A": "B", "B": "A", "tie": "tie"}


def _oriented(prompt_id: int, sample_a: int, sample_b: int, outcome: str) -> tuple[tuple, str]:
    """(pair key, label) with the label relative to the pair's (lower id, higher id) order."""
    label = _LABEL_FOR_OUTCOME[Outcome(outcome)]
    return _pair_key(prompt_id, sample_a, sample_b), label if sample_a < sample_b else _SWAP[label]


def judge_human_agreement(
    *,
    task: str,
    judge_name: str | None = None,
    category: str | None = None,
    confidence: float = 0.95,
) -> dict:
    """Accuracy of a judge against the human majority on the battle pairs (same prompt, same two
    samples) that both voted on, with Wilson intervals, with and without human ties.

    `judge_name` None picks the judge with the most votes in `task`. Returns
    {"task", "category", "judge", "items", "no_majority", "confidence",
     "with_ties": {"n", "correct", "accuracy", "lower", "upper"}, "without_ties": {...}}.
    """
    votes = Vote.objects.filter(task=task)
    if category:
        votes = votes.filter(category=category)
    if judge_name is None:
        top = (
            votes.filter(rater_kind=RaterKind.JUDGE)
            .values("rater__judge_name")
            .annotate(n=Count("id"))
            .order_by("-n", "rater__judge_name")
            .first()
        )
        judge_name = top["rater__judge_name"] if top else None
    judge_labels: dict[tuple, str] = {}
    if judge_name is not None:
        for prompt_id, a, b, outcome in (
            votes.filter(rater_kind=RaterKind.JUDGE, rater__judge_name=judge_name)
            .order_by("created_at", "id")
            .values_list(
                "battle__prompt_id", "battle__sample_a_id", "battle__sample_b_id", "outcome"
            )
        ):
            key, label = _oriented(prompt_id, a, b, outcome)
            judge_labels[key] = label  # the latest verdict wins
    human_counts: dict[tuple, dict[str, int]] = {}
    prompt_ids = {key[0] for key in judge_labels}
    # Counted in SQL: one row per (pair, orientation, outcome), never one per vote.
    grouped = (
        votes.filter(rater_kind=RaterKind.HUMAN, battle__prompt_id__in=prompt_ids)
        .values("battle__prompt_id", "battle__sample_a_id", "battle__sample_b_id", "outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in grouped:
        key, label = _oriented(
            row["battle__prompt_id"],
            row["battle__sample_a_id"],
            row["battle__sample_b_id"],
            row["outcome"],
        )
        if key in judge_labels:
            counts = human_counts.setdefault(key, {})
            counts[label] = counts.get(label, 0) + row["n"]
    items = [
        AgreementItem(human_counts=counts, judge=judge_labels[key])
        for key, counts in human_counts.items()
    ]
    return {
        "task": task,
        "category": category or "",
        "judge": judge_name,
        **agreement_stats(items, confidence=confidence),
    }
