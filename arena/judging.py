"""Judge verdicts that enter the arena: pairwise judging of battles and agreement with humans.

Pairwise verdicts are arena `Vote`s by a judge `Rater` (rater_kind="judge") on the judge's own
`Battle` rows, so they never mix with human votes; the judge itself (backends, cache, media) is
evaluation's. Backend "checker" (the synthetic domain's checker, rater "synthetic-checker") needs
no VLM: the sample with the higher checker score wins, equal scores tie, both at 0 are "both bad".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from arena.models import Battle, Outcome, Rater, RaterKind, Vote
from evaluation.judges import pairwise
from evaluation.judges.agreement import AgreementItem, agreement_stats
from evaluation.judges.cache import cache_key
from evaluation.judges.chat_judge import ChatJudge
from evaluation.judges.checker import BOTH_BAD, CheckerJudge
from evaluation.judges.media import MediaError
from evaluation.judges.verdicts import Verdict
from evaluation.judging import (
    Progress,
    build_judge,
    judge_cache_flush,
    judge_cache_preload,
    judge_sample_of,
)
from models_registry.models import ModelVersion, Task

OUTCOME_FOR_PREFERENCE = {
    pairwise.Preference.A: Outcome.MODEL_A,
    pairwise.Preference.B: Outcome.MODEL_B,
    pairwise.Preference.TIE: Outcome.TIE,
}


def outcome_for_verdict(label: str) -> Outcome:
    """The vote outcome of a pairwise verdict: "A", "B", "tie", or the checker's "both_bad"."""
    if label == BOTH_BAD:
        return Outcome.BOTH_BAD
    return OUTCOME_FOR_PREFERENCE[pairwise.Preference(label)]


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
    unjudgeable: int = 0  # pairs whose prompt this judge cannot read (the checker: free text)
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


def judged_text(judge, prompt) -> str:
    """The text a judge reads a sample against: an edit's target caption for the checker (it
    reads an edited image as the scene it should show), the prompt's text otherwise."""
    if isinstance(judge, CheckerJudge) and prompt.target_text:
        return prompt.target_text
    return prompt.text


def _pair_key(prompt_id: int, sample_a_id: int, sample_b_id: int) -> tuple[int, int, int]:
    return (prompt_id, min(sample_a_id, sample_b_id), max(sample_a_id, sample_b_id))


def judge_battles(
    *,
    task: str,
    backend: str | None = None,
    version: ModelVersion | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    judge: ChatJudge | CheckerJudge | None = None,
) -> BattleJudgingSummary:
    """Judge, pairwise in both orders, every sample pair served to human raters in `task` that
    this judge has not judged yet (only pairs involving `version`, if given; at most `limit`).

    Each verdict becomes a judge Battle (served to the judge's rater) and its Vote
    (rater_kind="judge", outcome model_a / model_b / tie, or both_bad from the checker). Failed
    verdicts store nothing and are retried on the next run. Calls `progress(k)` as k more pairs
    are done. backend="checker": the synthetic checker, no VLM settings needed; pairs whose prompt
    it cannot read (outside the synthetic grammar) are left out and counted as `unjudgeable`.
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
    can_judge = getattr(judge, "can_judge", None)  # a judge that knows only some prompts
    todo: dict[tuple[int, int, int], Battle] = {}
    unjudgeable: set[tuple[int, int, int]] = set()
    for battle in human.iterator(chunk_size=1000):
        key = _pair_key(battle.prompt_id, battle.sample_a_id, battle.sample_b_id)
        same_model = battle.sample_a.version.model_id == battle.sample_b.version.model_id
        if key in judged or key in todo or same_model or key in unjudgeable:
            continue
        if can_judge is not None and not can_judge(judged_text(judge, battle.prompt)):
            unjudgeable.add(key)
            continue
        todo[key] = battle
        if limit is not None and len(todo) >= limit:
            break
    battles = list(todo.values())
    summary = BattleJudgingSummary(
        judge=judge.name, task=task, pairs=len(battles), unjudgeable=len(unjudgeable)
    )
    _judge_and_store(judge=judge, rater=rater, battles=battles, summary=summary, progress=progress)
    return summary


def judge_sampled_battles(
    *,
    task: str,
    backend: str | None = None,
    n: int = 200,
    seed: int | None = None,
    progress: Progress | None = None,
    judge: ChatJudge | CheckerJudge | None = None,
) -> BattleJudgingSummary:
    """Judge up to `n` new sample pairs drawn at random from the arena's eligible samples,
    without waiting for human battles (how the demo's board has a judge column at start).

    Pairs are drawn uniformly over (prompt, pair of models, samples) among published,
    arena-approved models sharing a prompt; pairs this judge has already judged, pairs of one
    model and prompts the judge cannot read are left out. Votes are stored as in
    `judge_battles` (judge Battle + Vote, rater_kind="judge").
    """
    from arena.selectors import eligible_samples

    if task not in Task.values:
        raise ValueError(f"unknown task {task!r}; expected one of {Task.values}")
    judge = judge or build_judge(backend=backend)
    rater = judge_rater(judge_name=judge.name)
    judged = {
        _pair_key(*row)
        for row in Battle.objects.filter(served_to=rater, task=task).values_list(
            "prompt_id", "sample_a_id", "sample_b_id"
        )
    }
    samples = list(eligible_samples(task=task).select_related("prompt", "version").order_by("id"))
    can_judge = getattr(judge, "can_judge", None)
    by_prompt: dict[int, dict[int, list]] = {}
    unjudgeable = 0
    for sample in samples:
        if can_judge is not None and not can_judge(judged_text(judge, sample.prompt)):
            unjudgeable += 1
            continue
        by_prompt.setdefault(sample.prompt_id, {}).setdefault(sample.version.model_id, []).append(
            sample
        )
    candidates = [
        (a, b)
        for models in by_prompt.values()
        for i, ma in enumerate(sorted(models))
        for mb in sorted(models)[i + 1 :]
        for a in models[ma]
        for b in models[mb]
        if _pair_key(a.prompt_id, a.id, b.id) not in judged
    ]
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(candidates))[:n] if candidates else []
    battles = []
    for k in chosen:
        a, b = candidates[int(k)]
        if rng.random() < 0.5:  # either side first, as a human would be shown them
            a, b = b, a
        battles.append(
            Battle(task=task, prompt=a.prompt, prompt_id=a.prompt_id, sample_a=a, sample_b=b)
        )
    summary = BattleJudgingSummary(
        judge=judge.name, task=task, pairs=len(battles), unjudgeable=unjudgeable
    )
    _judge_and_store(judge=judge, rater=rater, battles=battles, summary=summary, progress=progress)
    return summary


def _judge_and_store(*, judge, rater: Rater, battles: list[Battle], summary, progress) -> None:
    """Judge each pair (both orders, cached) and store the judge's votes into `summary`."""
    judge_cache_preload(
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
        if battle.prompt.source_image and not isinstance(judge, CheckerJudge):
            return Verdict.failed(
                "pairwise VLM verdicts on edits are not supported (the pairwise prompt shows no "
                "source image); the checker judges edit pairs, the rubric judges single edits"
            )
        try:
            a, b = judge_sample_of(battle.sample_a), judge_sample_of(battle.sample_b)
        except MediaError as exc:
            return Verdict.failed(f"cannot read a sample: {exc}")
        return judge.pairwise(prompt=judged_text(judge, battle.prompt), a=a, b=b)

    for battle, verdict in zip(battles, judge.map(verdict_for, battles), strict=True):
        judge_cache_flush(judge)
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
            outcome=outcome_for_verdict(verdict.outcome),
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
