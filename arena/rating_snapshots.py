"""Leaderboard snapshots: Bradley–Terry fits of stored votes, per (task, category, rater kind).

Services write snapshots; selectors read them. Votes are aggregated by the database
(GROUP BY model_a, model_b, outcome with COUNT), so a refresh never loads per-vote rows, except
the bounded window of the most recent ``RATINGS_ELO_WINDOW`` votes that feeds the online Elo.
Pages read the latest snapshot and never fit on a request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max

from arena.models import RaterKind, RatingSnapshot, Vote
from arena.ratings import (
    AggregatedVotes,
    BradleyTerryFit,
    BradleyTerryOptions,
    OnlineElo,
    fit_bradley_terry,
)
from models_registry.models import GenerativeModel, Task


def ratings_options(**overrides) -> BradleyTerryOptions:
    """Bradley–Terry options from the RATINGS_* settings, with keyword overrides."""
    values = {
        "ci": settings.RATINGS_CI,
        "bootstrap_rounds": settings.RATINGS_BOOTSTRAP_ROUNDS,
        "significance": settings.RATINGS_SIGNIFICANCE,
        "scale": settings.RATINGS_SCALE,
        "base": settings.RATINGS_BASE,
        "init_rating": settings.RATINGS_INIT_RATING,
        "tie_weight": settings.RATINGS_TIE_WEIGHT,
        "both_bad": settings.RATINGS_BOTH_BAD,
        "reweight": settings.RATINGS_REWEIGHT,
        "prior_sd": settings.RATINGS_PRIOR_SD,
    }
    values.update(overrides)
    return BradleyTerryOptions(**values)


def _check_task(task: str) -> None:
    if task not in Task.values:
        raise ValueError(f"task {task!r} is not one of {', '.join(Task.values)}")


def _check_rater_kind(rater_kind: str) -> None:
    if rater_kind not in RaterKind.values:
        raise ValueError(f"rater_kind {rater_kind!r} is not one of {', '.join(RaterKind.values)}")


def _model_names(model_ids) -> dict[int, tuple[str, str]]:
    rows = GenerativeModel.objects.filter(id__in=set(model_ids)).values_list(
        "id", "slug", "display_name"
    )
    return {pk: (slug, name) for pk, slug, name in rows}


def _as_votes(a_ids, b_ids, outcomes, counts, names: dict[int, tuple[str, str]]):
    slug = np.vectorize(lambda pk: names[pk][0], otypes=[object])
    if len(a_ids) == 0:
        return AggregatedVotes.empty()
    return AggregatedVotes.from_rows(
        slug(np.asarray(a_ids)), slug(np.asarray(b_ids)), np.asarray(outcomes, dtype=object), counts
    )


def stored_votes(
    *, task: str, category: str = "", rater_kind: str | None = RaterKind.HUMAN
) -> AggregatedVotes:
    """Votes of a task aggregated in SQL into unique (model_a, model_b, outcome) rows with counts.

    category '' means all categories; rater_kind None means humans and judges together.
    Model names are GenerativeModel slugs.
    """
    _check_task(task)
    votes = Vote.objects.filter(task=task)
    if category:
        votes = votes.filter(category=category)
    if rater_kind is not None:
        _check_rater_kind(rater_kind)
        votes = votes.filter(rater_kind=rater_kind)
    grouped = list(
        votes.values("model_a", "model_b", "outcome")
        .annotate(n=Count("id"))
        .values_list("model_a", "model_b", "outcome", "n")
        .order_by()
    )
    if not grouped:
        return AggregatedVotes.empty()
    a_ids, b_ids, outcomes, counts = zip(*grouped, strict=True)
    return _as_votes(a_ids, b_ids, outcomes, counts, _model_names(a_ids + b_ids))


def recent_elo(
    *,
    task: str,
    category: str = "",
    rater_kind: str = RaterKind.HUMAN,
    window: int | None = None,
    options: BradleyTerryOptions | None = None,
    k: float | None = None,
) -> OnlineElo:
    """Online Elo over the most recent ``window`` votes (default RATINGS_ELO_WINDOW), in vote order.

    Bounded work per refresh (one indexed query of at most ``window`` rows); ratings of models
    without votes in the window stay at the initial rating.
    """
    options = options or ratings_options()
    window = settings.RATINGS_ELO_WINDOW if window is None else window
    elo = OnlineElo(
        k=settings.RATINGS_ELO_K if k is None else k,
        scale=options.scale,
        base=options.base,
        init_rating=options.init_rating,
        both_bad=options.both_bad,
        tie_score=options.tie_weight,
    )
    if window <= 0:
        return elo
    votes = Vote.objects.filter(task=task, rater_kind=rater_kind)
    if category:
        votes = votes.filter(category=category)
    recent = list(votes.order_by("-id").values_list("model_a", "model_b", "outcome")[:window])
    names = _model_names([pk for row in recent for pk in row[:2]])
    elo.update_many((names[a][0], names[b][0], outcome) for a, b, outcome in reversed(recent))
    return elo


@dataclass(frozen=True)
class _Board:
    task: str
    category: str
    rater_kind: str
    n_votes: int
    last_vote_id: int
    votes: AggregatedVotes


def snapshot_payload(
    fit: BradleyTerryFit, *, display_names: dict[str, str], elo: OnlineElo | None = None
) -> tuple[list[dict], dict]:
    """(rows, extra) of a RatingSnapshot from a fit; JSON-safe (None where there is no data)."""
    rows = fit.table()
    for row in rows:
        row["display_name"] = display_names.get(row["model"], row["model"])
        row["elo"] = elo.rating(row["model"]) if elo is not None else None
    extra: dict = {"models": [row["model"] for row in rows], **fit.matrices()}
    extra["flags"] = list(fit.flags)
    if fit.components:
        extra["components"] = fit.components
    return rows, extra


def _method(options: BradleyTerryOptions) -> dict:
    return {
        **options.method(),
        "elo_k": settings.RATINGS_ELO_K,
        "elo_window": settings.RATINGS_ELO_WINDOW,
    }


def _boards(task: str) -> list[_Board]:
    """Every (category, rater kind) of a task that has votes, from one GROUP BY query."""
    grouped = list(
        Vote.objects.filter(task=task)
        .values("rater_kind", "category", "model_a", "model_b", "outcome")
        .annotate(n=Count("id"), last=Max("id"))
        .values_list("rater_kind", "category", "model_a", "model_b", "outcome", "n", "last")
        .order_by()
    )
    if not grouped:
        return []
    kinds, categories, a_ids, b_ids, outcomes, counts, lasts = (
        np.asarray(column, dtype=object) for column in zip(*grouped, strict=True)
    )
    counts = counts.astype(np.int64)
    lasts = lasts.astype(np.int64)
    names = _model_names(list(a_ids) + list(b_ids))
    boards = []
    for kind in sorted(set(kinds)):
        of_kind = kinds == kind
        selections = [("", of_kind)] + [
            (category, of_kind & (categories == category))
            for category in sorted(set(categories[of_kind]) - {""})
        ]
        for category, mask in selections:
            boards.append(
                _Board(
                    task=task,
                    category=category,
                    rater_kind=kind,
                    n_votes=int(counts[mask].sum()),
                    last_vote_id=int(lasts[mask].max()),
                    votes=_as_votes(a_ids[mask], b_ids[mask], outcomes[mask], counts[mask], names),
                )
            )
    return boards


def refresh_rating_snapshots(
    *, task: str | None = None, force: bool = False
) -> list[RatingSnapshot]:
    """Fit and store a RatingSnapshot for every (task, category, rater kind) that has votes.

    category '' is the all-prompts board. A board whose votes and method are unchanged since
    its latest snapshot keeps that snapshot (no new row) unless ``force``. Returns the current
    snapshot of every board, new or kept. Old snapshots beyond RATINGS_SNAPSHOT_KEEP per board
    are deleted. All writes happen in one transaction.
    """
    if task is not None:
        _check_task(task)
    tasks = [task] if task else list(Task.values)
    options = ratings_options()
    method = _method(options)
    current: list[RatingSnapshot] = []
    with transaction.atomic():
        for name in tasks:
            for board in _boards(name):
                previous = latest_snapshot(
                    task=board.task, category=board.category, rater_kind=board.rater_kind
                )
                unchanged = (
                    previous is not None
                    and previous.n_votes == board.n_votes
                    and previous.extra.get("last_vote_id") == board.last_vote_id
                    and previous.method == method
                )
                if unchanged and not force:
                    current.append(previous)
                    continue
                current.append(_store(board, options, method))
                _prune(board)
    return current


def _store(board: _Board, options: BradleyTerryOptions, method: dict) -> RatingSnapshot:
    fit = fit_bradley_terry(board.votes, options)
    elo = recent_elo(
        task=board.task, category=board.category, rater_kind=board.rater_kind, options=options
    )
    display = {
        slug: name
        for slug, name in GenerativeModel.objects.filter(slug__in=board.votes.models).values_list(
            "slug", "display_name"
        )
    }
    rows, extra = snapshot_payload(fit, display_names=display, elo=elo)
    extra["last_vote_id"] = board.last_vote_id
    extra["elo_votes"] = elo.n_votes
    return RatingSnapshot.objects.create(
        task=board.task,
        category=board.category,
        rater_kind=board.rater_kind,
        n_votes=board.n_votes,
        method=method,
        rows=rows,
        extra=extra,
    )


def _prune(board: _Board) -> None:
    keep = settings.RATINGS_SNAPSHOT_KEEP
    if keep <= 0:
        return
    stale = list(
        RatingSnapshot.objects.filter(
            task=board.task, category=board.category, rater_kind=board.rater_kind
        )
        .order_by("-computed_at", "-id")
        .values_list("id", flat=True)[keep:]
    )
    if stale:
        RatingSnapshot.objects.filter(id__in=stale).delete()


def latest_snapshot(
    *, task: str, category: str = "", rater_kind: str = RaterKind.HUMAN
) -> RatingSnapshot | None:
    """The newest snapshot of a board, or None if it was never computed."""
    return (
        RatingSnapshot.objects.filter(task=task, category=category, rater_kind=rater_kind)
        .order_by("-computed_at", "-id")
        .first()
    )


def snapshot_history(
    *, task: str, category: str = "", rater_kind: str = RaterKind.HUMAN, limit: int = 200
) -> list[RatingSnapshot]:
    """The latest ``limit`` snapshots of a board, oldest first (for a rating-over-time chart)."""
    newest = RatingSnapshot.objects.filter(
        task=task, category=category, rater_kind=rater_kind
    ).order_by("-computed_at", "-id")[:limit]
    return list(reversed(newest))
