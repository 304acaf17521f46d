"""Leaderboard snapshots: Bradley–Terry fits of stored votes, per (task, category, rater kind).

Services write snapshots; selectors read them. Votes are aggregated by the database
(GROUP BY model_a, model_b, outcome with COUNT), so a refresh never loads per-vote rows, except
the bounded window of the most recent ``RATINGS_ELO_WINDOW`` votes that feeds the online Elo.
Pages read the latest snapshot and never fit on a request.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Cast, Coalesce

from arena.models import (
    Battle,
    Rater,
    RaterFlag,
    RaterKind,
    RatingSnapshot,
    TargetingFlag,
    TargetSubject,
    Vote,
    VoteKind,
)
from arena.ratings import (
    AggregatedVotes,
    BradleyTerryFit,
    BradleyTerryOptions,
    DavidsonFit,
    DavidsonOptions,
    OnlineElo,
    StyleControlFit,
    StyleOptions,
    StyleVotes,
    fit_bradley_terry,
    fit_davidson,
    fit_style_control,
    rank_robustness,
)
from arena.ratings.plackett_luce import (
    PAIR_BOTH_BAD,
    PAIR_TIE,
    TOP1,
    PlackettLuceFit,
    PlackettLuceOptions,
    RankedVotes,
    fit_plackett_luce,
)
from evaluation.models import Sample
from models_registry.models import GenerativeModel, Task

TIE_MODELS = ("half", "davidson")
ROBUSTNESS_REMOVED_SHOWN = 20  # removed-vote rows kept per pair in a snapshot


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


def davidson_options(options: BradleyTerryOptions | None = None) -> DavidsonOptions:
    """Davidson tie-model options matching the plain ones (scale, base, both_bad, ...).

    Bootstrap intervals are not offered by the tie model: it uses the sandwich."""
    options = options or ratings_options()
    return DavidsonOptions(
        scale=options.scale,
        base=options.base,
        init_rating=options.init_rating,
        both_bad=options.both_bad,
        significance=options.significance,
        anchor=options.anchor,
        prior_sd=options.prior_sd,
    )


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
    """AggregatedVotes named by slug from GROUP BY rows keyed by model id."""
    if len(a_ids) == 0:
        return AggregatedVotes.empty()
    votes = AggregatedVotes.from_rows(
        np.asarray(a_ids, dtype=np.int64), np.asarray(b_ids, dtype=np.int64), outcomes, counts
    )
    return votes.renamed({str(pk): slug for pk, (slug, _) in names.items()})


def _grouped(queryset) -> list[tuple]:
    """Evaluate a GROUP BY; on PostgreSQL with enough work_mem to aggregate in memory."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Without this a million votes spill the sort to disk (several times slower).
                cursor.execute(
                    "SELECT set_config('work_mem', %s, true)", [settings.RATINGS_AGGREGATE_WORK_MEM]
                )
        return list(queryset)


def counted_votes(task: str):
    """The votes of `task` that ratings count: every vote but those of raters excluded by the
    outlier test (RaterFlag.excluded), of raters and addresses flagged by the targeted-voting
    test (TargetingFlag), and of raters the vote-count rules leave out (vote rate, minimum
    votes: vote_count_excluded_raters); those votes are kept and exported, not fitted."""
    return Vote.objects.filter(task=task).exclude(excluded_votes_rule())


def vote_count_excluded_raters():
    """Human raters whose votes the vote-count rules leave out, as {"selective": queryset of
    rater ids, "few_votes": ...}: served at least ARENA_VOTE_RATE_MIN_BATTLES battles but voted
    on fewer than ARENA_MIN_VOTE_RATE of them (a rater who skips every battle but its target's
    makes fake accounts cheap), or fewer than ARENA_RATER_MIN_VOTES votes in all."""
    served = (
        Battle.objects.filter(served_to=OuterRef("pk"))
        .order_by()
        .values("served_to")
        .annotate(n=Count("*"))
        .values("n")
    )
    voted = (
        Vote.objects.filter(rater=OuterRef("pk"))
        .order_by()
        .values("rater")
        .annotate(n=Count("*"))
        .values("n")
    )
    raters = Rater.objects.filter(kind=RaterKind.HUMAN).annotate(
        served=Coalesce(Subquery(served), 0), voted=Coalesce(Subquery(voted), 0)
    )
    return {
        "selective": raters.filter(
            served__gte=settings.ARENA_VOTE_RATE_MIN_BATTLES,
            voted__lt=settings.ARENA_MIN_VOTE_RATE * F("served"),
        ).values("pk"),
        "few_votes": raters.filter(voted__lt=settings.ARENA_RATER_MIN_VOTES).values("pk"),
    }


def excluded_votes_rule() -> Q:
    """The votes that ratings leave out (see counted_votes), as a filter on Vote."""
    by_count = vote_count_excluded_raters()
    outliers = RaterFlag.objects.filter(excluded=True).values("rater_id")
    # Subqueries, so that fitting a board costs no extra round trip.
    targeted = (
        TargetingFlag.objects.filter(subject=TargetSubject.RATER)
        .annotate(rater_id=Cast("key", BigIntegerField()))
        .values("rater_id")
    )
    addresses = TargetingFlag.objects.filter(subject=TargetSubject.ADDRESS).values("key")
    return (
        Q(rater_id__in=outliers)
        | Q(rater_id__in=by_count["selective"])
        | Q(rater_id__in=by_count["few_votes"])
        | Q(rater_id__in=targeted)
        | (Q(ip_hash__in=addresses) & ~Q(ip_hash=""))
    )


def stored_votes(
    *, task: str, category: str = "", rater_kind: str | None = RaterKind.HUMAN
) -> AggregatedVotes:
    """Votes of a task aggregated in SQL into unique (model_a, model_b, outcome) rows with counts.

    category '' means all categories; rater_kind None means humans and judges together.
    Model names are GenerativeModel slugs. Pairwise votes only (K-wise ones: kwise_votes), and
    none of raters excluded by the outlier test.
    """
    _check_task(task)
    votes = counted_votes(task).filter(kind=VoteKind.PAIR)
    if category:
        votes = votes.filter(category=category)
    if rater_kind is not None:
        _check_rater_kind(rater_kind)
        votes = votes.filter(rater_kind=rater_kind)
    grouped = _grouped(
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
    votes = counted_votes(task).filter(rater_kind=rater_kind, kind=VoteKind.PAIR)
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


def _board_keys(kinds: np.ndarray, categories: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(rater kind, category, row mask) of every board: '' (all) and each non-empty category."""
    keys = []
    for kind in sorted(set(kinds)):
        of_kind = kinds == kind
        keys.append((kind, "", of_kind))
        for category in sorted(set(categories[of_kind]) - {""}):
            keys.append((kind, category, of_kind & (categories == category)))
    return keys


def _boards(task: str) -> list[_Board]:
    """Every board of a task with its vote count and newest vote id (a cheap GROUP BY)."""
    grouped = _grouped(
        counted_votes(task)
        .values("rater_kind", "category")
        .annotate(n=Count("id"), last=Max("id"))
        .values_list("rater_kind", "category", "n", "last")
        .order_by()
    )
    if not grouped:
        return []
    kinds, categories, counts, lasts = (
        np.asarray(c, dtype=object) for c in zip(*grouped, strict=True)
    )
    return [
        _Board(task, category, kind, int(counts[mask].sum()), int(lasts[mask].max()))
        for kind, category, mask in _board_keys(kinds, categories)
    ]


def _board_votes(task: str) -> dict[tuple[str, str], AggregatedVotes]:
    """Aggregated votes of every board of a task, keyed by (rater kind, category), from one
    GROUP BY rater_kind, category, model_a, model_b, outcome."""
    grouped = _grouped(
        counted_votes(task)
        .filter(kind=VoteKind.PAIR)
        .values("rater_kind", "category", "model_a", "model_b", "outcome")
        .annotate(n=Count("id"))
        .values_list("rater_kind", "category", "model_a", "model_b", "outcome", "n")
        .order_by()
    )
    if not grouped:  # a board of K-wise votes only has no pairwise votes
        return defaultdict(AggregatedVotes.empty)
    frame = pd.DataFrame.from_records(
        grouped, columns=["kind", "category", "a", "b", "outcome", "n"]
    )
    names = _model_names(np.union1d(frame["a"], frame["b"]).tolist())
    kinds, categories = frame["kind"].to_numpy(), frame["category"].to_numpy()
    a_ids, b_ids = frame["a"].to_numpy(np.int64), frame["b"].to_numpy(np.int64)
    outcomes, counts = frame["outcome"], frame["n"].to_numpy(np.int64)
    return defaultdict(
        AggregatedVotes.empty,
        {
            (kind, category): _as_votes(a_ids[m], b_ids[m], outcomes[m], counts[m], names)
            for kind, category, m in _board_keys(kinds, categories)
        },
    )


# --- style control, ties and rank robustness -------------------------------------------------


@dataclass(frozen=True)
class BoardStyleVotes:
    """Per-vote rows of a board with the covariates of both samples, and what was left out."""

    votes: StyleVotes
    total: int  # votes of the board
    skipped: int  # votes where a sample lacks one of the covariates (or it is not a number)
    missing: dict[str, int]  # covariate -> votes skipped because of it
    available: tuple[str, ...] = ()  # every covariate key the samples of these votes record


def style_votes(
    *,
    task: str,
    covariates: list[str] | tuple[str, ...],
    category: str = "",
    rater_kind: str | None = RaterKind.HUMAN,
) -> BoardStyleVotes:
    """Votes of a board with each side's ``Sample.covariates`` (the named keys), for style
    control. Two queries whatever the number of votes: a GROUP BY (model_a, model_b, outcome,
    sample_a, sample_b) with counts and the covariates of the samples involved. A vote whose
    samples lack a named covariate (or hold a non-number) is skipped and counted. The votes
    are those of ``stored_votes``: pairwise, none of raters excluded by the outlier test."""
    _check_task(task)
    names = tuple(covariates)
    votes = counted_votes(task).filter(kind=VoteKind.PAIR)  # as stored_votes
    if category:
        votes = votes.filter(category=category)
    if rater_kind is not None:
        _check_rater_kind(rater_kind)
        votes = votes.filter(rater_kind=rater_kind)
    grouped = _grouped(
        votes.values("model_a", "model_b", "outcome", "battle__sample_a", "battle__sample_b")
        .annotate(n=Count("id"))
        .values_list("model_a", "model_b", "outcome", "battle__sample_a", "battle__sample_b", "n")
        .order_by()
    )
    none = np.zeros(0, dtype=np.int64)
    empty = StyleVotes(
        (),
        names,
        none,
        none,
        none.astype(np.int8),
        np.zeros((0, len(names))),
        np.zeros((0, len(names))),
    )
    if not grouped:
        return BoardStyleVotes(empty, 0, 0, {})
    sample_ids = {row[3] for row in grouped} | {row[4] for row in grouped}
    values: dict[int, np.ndarray] = {}
    available: set[str] = set()
    for pk, stored in Sample.objects.filter(id__in=sample_ids).values_list("id", "covariates"):
        stored = stored if isinstance(stored, dict) else {}
        available.update(stored)
        values[pk] = np.array([_number(stored.get(name)) for name in names], dtype=np.float64)
    nan = np.full(len(names), np.nan)
    a_ids, b_ids, outcomes, sa, sb, counts = zip(*grouped, strict=True)
    xa = np.array([values.get(pk, nan) for pk in sa]).reshape(len(grouped), len(names))
    xb = np.array([values.get(pk, nan) for pk in sb]).reshape(len(grouped), len(names))
    counts = np.asarray(counts, dtype=np.int64)
    bad = ~np.isfinite(xa) | ~np.isfinite(xb)
    ok = ~bad.any(axis=1)
    missing = {
        name: int(counts[bad[:, k]].sum()) for k, name in enumerate(names) if bad[:, k].any()
    }
    total, kept = int(counts.sum()), int(counts[ok].sum())
    available_keys = tuple(sorted(available))
    if kept == 0:
        return BoardStyleVotes(empty, total, total, missing, available_keys)
    repeat = counts[ok]
    slugs = _model_names(set(a_ids) | set(b_ids))
    a_slugs = np.array([slugs[pk][0] for pk in a_ids], dtype=object)[ok]
    b_slugs = np.array([slugs[pk][0] for pk in b_ids], dtype=object)[ok]
    result = StyleVotes.from_columns(
        np.repeat(a_slugs, repeat),
        np.repeat(b_slugs, repeat),
        np.repeat(np.asarray(outcomes, dtype=object)[ok], repeat),
        np.repeat(xa[ok], repeat, axis=0),
        np.repeat(xb[ok], repeat, axis=0),
        names,
    )
    return BoardStyleVotes(result, total, total - kept, missing, available_keys)


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value)


def style_options_for(votes: StyleVotes) -> StyleOptions:
    """Covariates that are never negative enter as ratios (x_a - x_b) / (x_a + x_b), as LMArena
    does for lengths; others as plain differences. Both are z-scored."""
    both = np.concatenate([votes.covariates_a, votes.covariates_b])
    relative = tuple(
        name for k, name in enumerate(votes.covariate_names) if (both[:, k] >= 0).all()
    )
    return StyleOptions(relative=relative)


def style_payload(
    fit: StyleControlFit, *, total: int, skipped: int, missing: dict[str, int]
) -> dict:
    """JSON of a style-controlled board: rows (style-controlled rating, CI, rank, rank_ub) by
    model and the coefficient table (logits per sd of the normalised difference, CI, points)."""
    return {
        "status": "ok",
        "covariates": list(fit.covariates),
        "rows": [
            {
                k: row[k]
                for k in ("model", "rating", "lower", "upper", "variance", "rank", "rank_ub")
            }
            for row in fit.table()
        ],
        "coefficients": fit.coefficient_table(),
        "n_votes": fit.n_votes,
        "total_votes": total,
        "skipped_votes": skipped,
        "missing": missing,
        "flags": list(fit.flags),
    }


def board_style(*, task: str, options: BradleyTerryOptions, covariates: list[str]) -> dict:
    """Fit style control on the human all-prompts board, or say why not (``status``)."""
    found = style_votes(task=task, covariates=covariates)
    base = {
        "covariates": list(covariates),
        "total_votes": found.total,
        "skipped_votes": found.skipped,
        "missing": found.missing,
        "min_votes": settings.RATINGS_STYLE_MIN_VOTES,
    }
    usable = found.votes
    if usable.n_votes < max(settings.RATINGS_STYLE_MIN_VOTES, 1) or len(usable.models) < 2:
        return {**base, "status": "too_few_votes", "n_votes": usable.n_votes}
    fit = fit_style_control(usable, options, style_options_for(usable))
    return {
        **base,
        **style_payload(fit, total=found.total, skipped=found.skipped, missing=found.missing),
    }


def ties_payload(fit: DavidsonFit) -> dict:
    return {
        "model": "davidson",
        "nu": fit.nu,
        "nu_lower": fit.nu_lower,
        "nu_upper": fit.nu_upper,
        "tie_probability_equal": fit.tie_probability_equal,
        "flags": list(fit.flags),
    }


def apply_davidson(rows: list[dict], fit: DavidsonFit) -> list[dict]:
    """Snapshot rows with the tie model's rating, CI, variance and ranks, re-sorted by them
    (counts, win rate, Elo and flags stay those of the plain rows)."""
    by_model = {row["model"]: row for row in fit.table()}
    out = []
    for row in rows:
        tied = by_model.get(row["model"])
        if tied is not None:
            row = {
                **row,
                **{k: tied[k] for k in ("rating", "lower", "upper", "variance", "rank", "rank_ub")},
            }
        out.append(row)
    out.sort(key=lambda r: (-r["rating"], r["model"]))
    return out


def robustness_payload(
    votes: AggregatedVotes, options: BradleyTerryOptions, fit: BradleyTerryFit | None = None
) -> dict:
    """Rank robustness of adjacent pairs (plain Bradley–Terry, ``rank_robustness``), capped at
    RATINGS_ROBUSTNESS_MAX_REMOVALS removed votes per pair and boards of at most
    RATINGS_ROBUSTNESS_MAX_MODELS models."""
    cap, max_models = (
        settings.RATINGS_ROBUSTNESS_MAX_REMOVALS,
        settings.RATINGS_ROBUSTNESS_MAX_MODELS,
    )
    base = {"max_removals": cap, "max_models": max_models}
    if max_models <= 0 or cap <= 0:
        return {**base, "status": "off", "pairs": []}
    if votes.n_models > max_models:
        return {**base, "status": "too_many_models", "pairs": []}
    pairs = []
    for flip in rank_robustness(votes, options, max_removals=cap, fit=fit):
        entry = flip.as_dict()
        entry["removed_total_rows"] = len(entry["removed"])
        entry["removed"] = entry["removed"][:ROBUSTNESS_REMOVED_SHOWN]
        pairs.append(entry)
    return {**base, "status": "ok", "pairs": pairs}


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
        "tie_model": settings.RATINGS_TIE_MODEL,
        "style_covariates": list(settings.RATINGS_STYLE_COVARIATES or []),
        "style_min_votes": settings.RATINGS_STYLE_MIN_VOTES,
        "robustness_max_removals": settings.RATINGS_ROBUSTNESS_MAX_REMOVALS,
        "robustness_max_models": settings.RATINGS_ROBUSTNESS_MAX_MODELS,
    }


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
            stale = []
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
                else:
                    stale.append(board)
            # The heavy per-pair aggregation runs only when some board has new votes.
            votes = _board_votes(name) if stale else {}
            for board in stale:
                current.append(
                    _store(board, votes[board.rater_kind, board.category], options, method)
                )
                _prune(board)
    return current


def _store(
    board: _Board, votes: AggregatedVotes, options: BradleyTerryOptions, method: dict
) -> RatingSnapshot:
    # K-wise votes on this board: one Plackett–Luce fit of them and the pairwise votes.
    ranked = kwise_votes(task=board.task, category=board.category, rater_kind=board.rater_kind)
    if ranked.n_battles:
        return _store_plackett_luce(board, votes, ranked, options, method)
    fit = fit_bradley_terry(votes, options)
    elo = recent_elo(
        task=board.task, category=board.category, rater_kind=board.rater_kind, options=options
    )
    display = {
        slug: name
        for slug, name in GenerativeModel.objects.filter(slug__in=votes.models).values_list(
            "slug", "display_name"
        )
    }
    rows, extra = snapshot_payload(fit, display_names=display, elo=elo)
    extra["last_vote_id"] = board.last_vote_id
    extra["elo_votes"] = elo.n_votes
    _extend(rows, extra, board, votes, options, fit)
    return RatingSnapshot.objects.create(
        task=board.task,
        category=board.category,
        rater_kind=board.rater_kind,
        n_votes=board.n_votes,
        method=method,
        rows=rows,
        extra=extra,
    )


def _extend(
    rows: list[dict],
    extra: dict,
    board: _Board,
    votes: AggregatedVotes,
    options: BradleyTerryOptions,
    fit: BradleyTerryFit,
) -> None:
    """The tie model (every board), style control (human all-prompts board) and rank
    robustness (human boards) of a snapshot, in place."""
    if settings.RATINGS_TIE_MODEL == "davidson" and votes.n_votes:
        tied = fit_davidson(votes, davidson_options(options))
        rows[:] = apply_davidson(rows, tied)
        extra["ties"] = ties_payload(tied)
    else:
        extra["ties"] = {"model": "half", "tie_weight": options.tie_weight}
    extra["ties"]["both_bad"] = options.both_bad
    if board.rater_kind != RaterKind.HUMAN:
        return
    covariates = list(settings.RATINGS_STYLE_COVARIATES or [])
    if board.category == "" and covariates:
        extra["style"] = board_style(task=board.task, options=options, covariates=covariates)
    extra["robustness"] = robustness_payload(votes, options, fit)


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


# --- K-wise votes: gathered apart from pairwise ones, fitted by Plackett–Luce ---------------


def kwise_votes(
    *, task: str, category: str = "", rater_kind: str | None = RaterKind.HUMAN
) -> RankedVotes:
    """K-wise votes (rankings and best-of-K picks) of a board as RankedVotes named by slug,
    grouped in SQL by (kind, ranking); raters excluded by the outlier test left out."""
    _check_task(task)
    votes = counted_votes(task).exclude(kind=VoteKind.PAIR)
    if category:
        votes = votes.filter(category=category)
    if rater_kind is not None:
        _check_rater_kind(rater_kind)
        votes = votes.filter(rater_kind=rater_kind)
    grouped = _grouped(
        votes.values("kind", "ranking")
        .annotate(n=Count("id"))
        .values_list("kind", "ranking", "n")
        .order_by()
    )
    if not grouped:
        return RankedVotes.empty()
    names = _model_names({pk for _, ranking, _ in grouped for pk in ranking})
    return RankedVotes.from_battles(
        [[names[pk][0] for pk in ranking] for _, ranking, _ in grouped],
        [kind for kind, _, _ in grouped],
        [n for _, _, n in grouped],
    )


def plackett_luce_options(options: BradleyTerryOptions) -> PlackettLuceOptions:
    """The Plackett–Luce options matching the board's Bradley–Terry options (same scale, ties)."""
    return PlackettLuceOptions(
        scale=options.scale,
        base=options.base,
        init_rating=options.init_rating,
        tie_weight=options.tie_weight,
        both_bad=options.both_bad,
        significance=options.significance,
        prior_sd=options.prior_sd,
    )


def board_plackett_luce(
    pairwise: AggregatedVotes, ranked: RankedVotes, options: BradleyTerryOptions
) -> PlackettLuceFit:
    """One Plackett–Luce likelihood over a board's pairwise votes and K-wise battles."""
    return fit_plackett_luce(RankedVotes.concat(pairwise, ranked), plackett_luce_options(options))


def plackett_luce_payload(
    fit: PlackettLuceFit, votes: RankedVotes, *, display_names: dict[str, str]
) -> tuple[list[dict], dict]:
    """(rows, extra) of a snapshot from a Plackett–Luce fit, in the Bradley–Terry rows' schema:
    votes = battles a model was shown in, wins = ranked (or picked) first. Matrices count the
    pairwise preferences the battles imply (a ranking: each model over every later one; a
    best-of-K pick: the winner over each other model)."""
    rows = []
    for row in fit.table():
        battles, wins, ties = row.pop("battles"), row["wins"], row["ties"]
        rows.append(
            {
                **row,
                "votes": battles,
                "losses": battles - wins - ties,
                "win_rate": (wins + 0.5 * ties) / battles if battles else None,
                "display_name": display_names.get(row["model"], row["model"]),
                "elo": None,
            }
        )
    n = len(fit.models)
    index = np.array([fit.models.index(m) for m in votes.models] + [-1], dtype=np.int64)
    won, tied = np.zeros((n, n)), np.zeros((n, n))
    rows_of = zip(votes.order, votes.size, votes.kind, votes.count, strict=True)
    for order, size, kind, count in rows_of:
        shown = index[order[:size]]
        if kind in (PAIR_TIE, PAIR_BOTH_BAD):
            tied[shown[0], shown[1]] += count
            tied[shown[1], shown[0]] += count
            continue
        for i in range(1 if kind == TOP1 else size - 1):
            for j in range(i + 1, size):
                won[shown[i], shown[j]] += count
    count = won + won.T + tied
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (won + 0.5 * tied) / count
    predicted = 1.0 / (1.0 + np.exp(-(fit.theta[:, None] - fit.theta[None, :])))
    np.fill_diagonal(predicted, np.nan)
    idx = np.array([fit.models.index(row["model"]) for row in rows], dtype=np.int64)

    def as_json(matrix: np.ndarray) -> list[list[float | None]]:
        sub = matrix[np.ix_(idx, idx)]
        out = np.round(sub, 6).astype(object)
        out[np.isnan(sub)] = None
        return out.tolist()

    extra: dict = {
        "models": [row["model"] for row in rows],
        "win_rate_matrix": as_json(rate),
        "count_matrix": count[np.ix_(idx, idx)].astype(np.int64).tolist(),
        "predicted_matrix": as_json(predicted),
        "flags": list(fit.flags),
        "fit": "plackett_luce",
        "fit_method": fit.method,
        "kwise_battles": int(votes.count[votes.size > 2].sum()),
    }
    if fit.components:
        extra["components"] = fit.components
    return rows, extra


def _store_plackett_luce(
    board: _Board,
    pairwise: AggregatedVotes,
    ranked: RankedVotes,
    options: BradleyTerryOptions,
    method: dict,
) -> RatingSnapshot:
    """A board with K-wise votes: its snapshot from board_plackett_luce. `method` (the board's
    Bradley–Terry options, so the unchanged-board check holds) is stored as is; the fit's own
    method is in extra["fit_method"]."""
    fit = board_plackett_luce(pairwise, ranked, options)
    merged = RankedVotes.concat(pairwise, ranked)
    display = dict(
        GenerativeModel.objects.filter(slug__in=fit.models).values_list("slug", "display_name")
    )
    rows, extra = plackett_luce_payload(fit, merged, display_names=display)
    extra["last_vote_id"] = board.last_vote_id
    extra["elo_votes"] = 0
    return RatingSnapshot.objects.create(
        task=board.task,
        category=board.category,
        rater_kind=board.rater_kind,
        n_votes=board.n_votes,
        method=method,
        rows=rows,
        extra=extra,
    )
