"""Reads for the arena and the leaderboard: eligible samples, sampler state, leaderboards, models.

Visibility rule everywhere: a private model is shown only to its owner and to staff; public and
unlisted models are shown to everyone (unlisted ones are just not advertised). The leaderboard
reads RatingSnapshot rows only; it never fits ratings on a page request.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.urls import reverse

from arena.models import (
    Battle,
    BattleSample,
    Outcome,
    RaterFlag,
    RaterKind,
    RatingSnapshot,
    TargetingFlag,
    TargetSubject,
    Vote,
)
from arena.sampling import ELO_PER_LOGIT, ModelState, SamplingConfig
from evaluation.metrics.catalogue import METRICS, interval_of, metric_heading, ordered_metric_names
from evaluation.models import MetricResult, Prompt, Sample, VersionProvenance
from evaluation.selectors import (
    generation_summaries_by_model,
    generation_summaries_by_version,
    provenance_by_model,
    steps_sweep_points,
)
from models_registry.generators.cost import GenerationSummary, pareto_front
from models_registry.generators.tasks import task_spec
from models_registry.models import (
    GenerativeModel,
    ModelVersion,
    Task,
    VersionStatus,
    Visibility,
)

EXCLUDED_VERSION_STATUSES = (VersionStatus.REJECTED, VersionStatus.FAILED)
LEADERBOARD_COLUMNS = (
    "rank",
    "rank_ub",
    "model",
    "display_name",
    "rating",
    "lower",
    "upper",
    "votes",
    "win_rate",
    "provisional",
    "no_votes",
)


def anonymised_rater_id(rater_id: int) -> str:
    """A stable pseudonym for a rater in exported data (not reversible without SECRET_KEY)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"rater:{rater_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def visible_models(*, user) -> QuerySet[GenerativeModel]:
    """Models this user may see: public and unlisted, plus their own private ones (all for staff)."""
    try:  # the registry's rule when it exists, so both apps apply one definition
        from models_registry.selectors import visible_models as registry_visible_models
    except ImportError:
        registry_visible_models = None
    if registry_visible_models is not None:
        return registry_visible_models(user=user)
    models = GenerativeModel.objects.all()
    if user is not None and user.is_authenticated and user.is_staff:
        return models
    rule = ~Q(visibility=Visibility.PRIVATE)
    if user is not None and user.is_authenticated:
        rule |= Q(owner=user)
    return models.filter(rule)


def is_valid_task(task: str) -> bool:
    return task in Task.values


# --- arena pool and sampler state ------------------------------------------------------------


def eligible_versions(*, task: str) -> QuerySet[ModelVersion]:
    """Versions that may appear in battles: approved, non-private, not rejected or failed."""
    return (
        ModelVersion.objects.filter(arena_approved=True, model__task=task)
        .exclude(model__visibility=Visibility.PRIVATE)
        .exclude(status__in=EXCLUDED_VERSION_STATUSES)
    )


def eligible_samples(*, task: str) -> QuerySet[Sample]:
    """Samples that may appear in battles: the live battle pool (never the showcase, never a
    retired sample) of eligible versions."""
    return Sample.objects.live_battle().filter(
        version__in=eligible_versions(task=task),
        media_kind=task_spec(task).media,
        prompt__prompt_set__task=task,
    )


def _per_process(key: str, build):
    """`build()`, kept in this process's memory for ARENA_POOL_CACHE_SECONDS: the arena pool and
    sampler state are read on every battle, so a shared-cache round trip would cost more than
    the staleness it saves."""
    ttl = settings.ARENA_POOL_CACHE_SECONDS
    if ttl <= 0:
        return build()
    local = caches["local"]
    value = local.get(key)
    if value is None:
        value = build()
        local.set(key, value, ttl)
    return value


def arena_pool(*, task: str) -> tuple[dict[int, dict[int, list[int]]], dict[int, Prompt]]:
    """(pool, prompts): prompt id -> model id -> sample ids of the model's newest eligible
    version for that prompt, and those prompts by id.

    Cached per process (the pool changes when versions are approved).
    """
    return _per_process(f"arena:pool:{task}", lambda: _build_arena_pool(task))


def _build_arena_pool(task: str) -> tuple[dict[int, dict[int, list[int]]], dict[int, Prompt]]:
    rows = eligible_samples(task=task).values_list(
        "id", "prompt_id", "version_id", "version__model_id", "version__created_at"
    )
    newest: dict[int, tuple] = {}
    for _, _, version_id, model_id, created in rows:
        if model_id not in newest or (created, version_id) > newest[model_id]:
            newest[model_id] = (created, version_id)
    pool: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for sample_id, prompt_id, version_id, model_id, _ in rows:
        if newest[model_id][1] == version_id:
            pool[prompt_id][model_id].append(sample_id)
    shared = {p: {m: sorted(s) for m, s in ms.items()} for p, ms in pool.items() if len(ms) >= 2}
    return shared, Prompt.objects.in_bulk(list(shared))


def latest_snapshot(*, task: str, category: str = "", rater_kind: str = RaterKind.HUMAN):
    """The newest RatingSnapshot for (task, category, rater kind), or None."""
    from arena.rating_snapshots import latest_snapshot as ratings_latest_snapshot

    return ratings_latest_snapshot(task=task, category=category, rater_kind=rater_kind)


def points_per_logit() -> float:
    """Rating points per natural log-odds unit of the snapshots (400 / ln 10 by default)."""
    scale = getattr(settings, "RATINGS_SCALE", 400.0)
    base = getattr(settings, "RATINGS_BASE", 10.0)
    return scale / math.log(base) if base > 1 else ELO_PER_LOGIT


@dataclass(frozen=True)
class SamplerState:
    states: dict[int, ModelState]  # model id -> rating / variance in logits, votes
    covariance: np.ndarray | None = None  # logits², indexed like `order` (Laplace approximation)
    order: tuple[int, ...] = ()


def sampler_state(*, task: str) -> SamplerState:
    """Ratings, variances and vote counts of the latest human snapshot, in logit units.

    The covariance of the ratings is rebuilt from the snapshot's battle counts and ratings
    (the Bradley–Terry Fisher information plus the sampler's prior), so that the sampler sees how
    uncertain each *difference* is, not only each rating.
    """
    return _per_process(f"arena:sampler:{task}", lambda: _build_sampler_state(task))


def _build_sampler_state(task: str) -> SamplerState:
    snapshot = latest_snapshot(task=task)
    if snapshot is None or not snapshot.rows:
        return SamplerState(states={})
    slugs = [row["model"] for row in snapshot.rows]
    ids = dict(GenerativeModel.objects.filter(slug__in=slugs).values_list("slug", "id"))
    center = float(np.mean([row["rating"] for row in snapshot.rows]))
    points = points_per_logit()
    states = {
        ids[row["model"]]: ModelState(
            rating=(row["rating"] - center) / points,
            variance=max(float(row.get("variance") or 0.0), 0.0) / points**2,
            votes=int(row.get("votes") or 0),
        )
        for row in snapshot.rows
        if row["model"] in ids
    }
    order, covariance = _laplace_covariance(snapshot, ids, states)
    return SamplerState(states=states, covariance=covariance, order=order)


def _laplace_covariance(snapshot, ids: dict[str, int], states: dict[int, ModelState]):
    extra = snapshot.extra or {}
    names, counts = extra.get("models"), extra.get("count_matrix")
    if not names or not counts:
        return (), None
    keep = [k for k, slug in enumerate(names) if slug in ids and ids[slug] in states]
    if len(keep) < 2:
        return (), None
    order = tuple(ids[names[k]] for k in keep)
    n = np.array(counts, dtype=np.float64)[np.ix_(keep, keep)]
    n = n + n.T if np.allclose(np.tril(n, -1), 0) else n  # accept upper-triangular counts
    theta = np.array([states[m].rating for m in order])
    p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
    w = n * p * (1.0 - p)
    np.fill_diagonal(w, 0.0)
    prior_precision = 1.0 / SamplingConfig().prior_variance
    hessian = np.diag(w.sum(axis=1)) - w + prior_precision * np.eye(len(order))
    return order, np.linalg.inv(hessian)


# --- battles -------------------------------------------------------------------------------


def edit_battle(*, token: str) -> Battle | None:
    """An image-edit battle (its prompt, whose source image it shows, joined), or None."""
    battle = Battle.objects.select_related("prompt").filter(token=token).first()
    if battle is None or not battle.prompt.source_image:
        return None
    return battle


def battle_by_media_token(*, media_token: str) -> tuple[Battle, Sample] | None:
    """The battle and sample behind a per-battle opaque media id, or None."""
    battle = (
        Battle.objects.select_related("sample_a", "sample_b")
        .filter(Q(media_token_a=media_token) | Q(media_token_b=media_token))
        .first()
    )
    if battle is None:
        return None
    return battle, battle.sample_a if battle.media_token_a == media_token else battle.sample_b


@dataclass(frozen=True)
class BattleLineup:
    served_to_id: int
    models: tuple[tuple[int, str, str], ...]  # (model id, slug, display name), display order


def battle_lineup(*, token: str) -> BattleLineup | None:
    """Who a battle was served to and its models in display order (A, B, C, ...), or None."""
    battle = (
        Battle.objects.filter(token=token)
        .values(
            "id",
            "served_to_id",
            "sample_a__version__model_id",
            "sample_b__version__model_id",
        )
        .first()
    )
    if battle is None:
        return None
    ids = [battle["sample_a__version__model_id"], battle["sample_b__version__model_id"]]
    ids += list(
        BattleSample.objects.filter(battle_id=battle["id"])
        .order_by("position")
        .values_list("sample__version__model_id", flat=True)
    )
    names = dict(
        (pk, (slug, name))
        for pk, slug, name in GenerativeModel.objects.filter(id__in=ids).values_list(
            "id", "slug", "display_name"
        )
    )
    return BattleLineup(battle["served_to_id"], tuple((pk, *names[pk]) for pk in ids))


def battle_media_tokens(*, battle: Battle) -> list[str]:
    """The per-battle media ids of a battle's samples in display order (A, B, C, ...)."""
    extra = BattleSample.objects.filter(battle=battle).order_by("position")
    return [
        battle.media_token_a,
        battle.media_token_b,
        *extra.values_list("media_token", flat=True),
    ]


def voted_battle_sample(*, token: str, position: int) -> tuple[int, Sample] | None:
    """(rater the battle was served to, its sample at `position` (0 = A)) of a battle that has
    a vote; None before the vote or for a position it does not have."""
    battle = (
        Battle.objects.filter(token=token, vote__isnull=False)
        .select_related("sample_a", "sample_b")
        .first()
    )
    if battle is None:
        return None
    if position < 2:
        return battle.served_to_id, (battle.sample_a, battle.sample_b)[position]
    extra = BattleSample.objects.filter(battle=battle, position=position).select_related("sample")
    row = extra.first()
    return None if row is None else (battle.served_to_id, row.sample)


def sample_for_page(*, public_id, user) -> Sample | None:
    """A public sample (showcase or retired, evaluation.pools) whose model the user may see and
    whose version is not rejected or failed. A live battle sample is not found by anyone."""
    return (
        Sample.objects.public()
        .filter(public_id=public_id, version__model__in=visible_models(user=user))
        .exclude(version__status__in=EXCLUDED_VERSION_STATUSES)
        .select_related("version__model", "version__checkpoint", "prompt")
        .first()
    )


def battle_media_sample(*, media_token: str) -> tuple[Battle, Sample] | None:
    """The battle and sample behind a per-battle media id (of any position), or None."""
    found = battle_by_media_token(media_token=media_token)
    if found is not None:
        return found
    extra = (
        BattleSample.objects.select_related("battle", "sample")
        .filter(media_token=media_token)
        .first()
    )
    return None if extra is None else (extra.battle, extra.sample)


# --- rater hygiene -------------------------------------------------------------------------


def rater_flags(*, decisions: tuple[str, ...] = ("flagged", "undecided")) -> list[dict[str, Any]]:
    """Human raters whose latest outlier test ended in `decisions`, or whom a maintainer
    reviewed, most suspicious first: pseudonymous id, votes, agreement, test and review."""
    flags = (
        RaterFlag.objects.filter(Q(decision__in=decisions) | ~Q(review=""))
        .select_related("reviewed_by")
        .order_by("-excluded", "-llr", "rater_id")
    )
    return [
        {
            "id": flag.pk,
            "rater": anonymised_rater_id(flag.rater_id),
            "decision": flag.decision,
            "decided_at": flag.decided_at,
            "n_votes": flag.n_votes,
            "informative": flag.informative,
            "llr": flag.llr,
            "agreement": flag.agreement,
            "checked_at": flag.checked_at,
            "review": flag.review,
            "reviewed_by": flag.reviewed_by.get_username() if flag.reviewed_by else "",
            "reviewed_at": flag.reviewed_at,
            "excluded": flag.excluded,
        }
        for flag in flags
    ]


def rater_vote_count(*, rater_id: int | None, task: str) -> int:
    """How many votes of `task` the rater has cast (K-wise votes count once)."""
    if rater_id is None:
        return 0
    return Vote.objects.filter(rater_id=rater_id, task=task).count()


# --- leaderboard ---------------------------------------------------------------------------


def categories(*, task: str) -> list[str]:
    """Prompt categories of the task that have a snapshot (for the category filter)."""
    return sorted(
        set(
            RatingSnapshot.objects.filter(task=task, rater_kind=RaterKind.HUMAN)
            .exclude(category="")
            .values_list("category", flat=True)
        )
    )


def latest_metric_results(*, model_ids: list[int]) -> dict[int, dict[str, MetricResult]]:
    """model id -> metric name -> result, from each model's newest version that has results."""
    results = (
        MetricResult.objects.filter(version__model_id__in=model_ids)
        .select_related("version")
        .order_by("version__model_id", "-version__created_at", "-version_id", "-updated_at")
    )
    chosen_version: dict[int, int] = {}
    by_model: dict[int, dict[str, MetricResult]] = defaultdict(dict)
    for result in results:
        model_id = result.version.model_id
        version_id = chosen_version.setdefault(model_id, result.version_id)
        if result.version_id == version_id and result.metric not in by_model[model_id]:
            by_model[model_id][result.metric] = result
    return dict(by_model)


@dataclass
class Leaderboard:
    task: str
    category: str
    snapshot: RatingSnapshot | None
    judge_snapshot: RatingSnapshot | None = None
    judges: list[str] = field(default_factory=list)  # judge names behind judge_snapshot
    rows: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # slugs, in the snapshot's matrix order
    win_rate_matrix: list[list[float | None]] = field(default_factory=list)
    count_matrix: list[list[int]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    flag_notes: list[str] = field(default_factory=list)
    view: str = ""  # "style": rows ordered by the style-controlled rank
    # Style control of the snapshot (human all-prompts board): status ("ok", "too_few_votes"),
    # covariates, n_votes, total_votes, skipped_votes, missing, flags; None when not computed.
    style: dict[str, Any] | None = None
    style_coefficients: list[dict[str, Any]] = field(default_factory=list)
    ties: dict[str, Any] = field(default_factory=dict)  # model ("half"/"davidson"), nu, CI, ...
    robustness: dict[str, Any] | None = None  # status, max_removals, max_models
    # Quality against generation cost ($ per megapixel): quality_vs_cost()'s result, or None.
    quality_cost: dict[str, Any] | None = None


LEADERBOARD_VIEWS = ("", "style")


# A published model without votes yet, as a board row (model and display_name filled in).
UNRATED_ROW = {
    "rank": None,
    "rank_ub": None,
    "rating": None,
    "lower": None,
    "upper": None,
    "votes": 0,
    "win_rate": None,
    "no_votes": True,
}


def leaderboard(*, task: str, category: str = "", user=None, view: str = "") -> Leaderboard:
    """The leaderboard of (task, category): every published model the user may see.

    Rows with human votes come first, in the latest human snapshot's order; a model without
    votes yet follows with ``rating`` None and ``no_votes`` True, so a board is never empty while
    models are published. Each row also has ``provisional`` (fewer than ARENA_PROVISIONAL_VOTES
    votes), ``model_url``, ``metrics`` (metric name -> {status, value, lower, upper, interval,
    message}) and ``judge``: the model's rating from judge votes (latest judge snapshot:
    {rating, lower, upper, votes}) or None. Judge ratings are fitted on judge votes only and
    never mixed with human ones.

    From the snapshot's ``extra``: ``style`` per row ({rating, lower, upper, rank, rank_ub} of
    the style-controlled fit, or None) with the board's ``style`` summary and
    ``style_coefficients``; ``robustness`` per row ({count, display, fraction, approximate,
    cap}: the fewest votes whose removal puts this model above the one ranked just above it,
    None for the first row); the board's ``ties`` (tie model, Davidson's nu and its CI).
    ``view="style"`` orders the rated rows by the style-controlled rank.
    """
    view = view if view in LEADERBOARD_VIEWS else ""
    snapshot = latest_snapshot(task=task, category=category)
    judge_snapshot = latest_snapshot(task=task, category=category, rater_kind=RaterKind.JUDGE)
    board = Leaderboard(
        task=task, category=category, snapshot=snapshot, judge_snapshot=judge_snapshot, view=view
    )
    snapshot_rows = snapshot.rows if snapshot else []
    # One query: the task's models this user may see that are rated or published.
    listed = (
        visible_models(user=user)
        .filter(task=task)
        .filter(
            Q(slug__in=[r["model"] for r in snapshot_rows])
            | Q(versions__status=VersionStatus.PUBLISHED)
        )
        .distinct()
        .order_by("display_name")
    )
    models = {model.slug: model for model in listed}
    visible = {slug: model.id for slug, model in models.items()}
    rows = [dict(r) for r in snapshot_rows if r["model"] in visible]
    rated = {row["model"] for row in rows}
    rows += [
        {**UNRATED_ROW, "model": slug, "display_name": model.display_name}
        for slug, model in models.items()
        if slug not in rated
    ]
    judged = {r["model"]: r for r in (judge_snapshot.rows if judge_snapshot else [])}
    if judge_snapshot is not None:
        board.judges = sorted(
            Vote.objects.filter(task=task, rater_kind=RaterKind.JUDGE)
            .values_list("rater__judge_name", flat=True)
            .distinct()
        )
    results = latest_metric_results(model_ids=list(visible.values()))
    costs = generation_summaries_by_model(model_ids=list(visible.values()))
    provenance = provenance_by_model(model_ids=list(visible.values()))
    # Metric columns in catalogue order (evaluation.metrics.catalogue).
    board.metrics = ordered_metric_names(m for by_name in results.values() for m in by_name)
    threshold = settings.ARENA_PROVISIONAL_VOTES
    for row in rows:
        row.setdefault("no_votes", False)
        row["provisional"] = not row["no_votes"] and int(row.get("votes") or 0) < threshold
        row["model_url"] = reverse("arena:model", kwargs={"slug": row["model"]})
        by_name = results.get(visible[row["model"]], {})
        row["metrics"] = {
            name: metric_cell(by_name.get(name)) for name in board.metrics if name in by_name
        }
        cost = costs.get(visible[row["model"]])
        row["generation"] = generation_cell(*cost) if cost else None
        checked = provenance.get(visible[row["model"]])
        row["provenance"] = provenance_cell(checked) if checked else None
        judge_row = judged.get(row["model"])
        row["judge"] = (
            {key: judge_row.get(key) for key in ("rating", "lower", "upper", "votes")}
            if judge_row
            else None
        )
    extra = (snapshot.extra or {}) if snapshot is not None else {}
    _attach_style_and_robustness(board, rows, snapshot, extra)
    board.rows = rows
    board.quality_cost = quality_vs_cost(rows, board.metrics)
    if snapshot is None:
        return board
    names = list(extra.get("models") or [])
    keep = [k for k, slug in enumerate(names) if slug in visible]
    board.models = [names[k] for k in keep]
    for key, target in (("win_rate_matrix", "win_rate_matrix"), ("count_matrix", "count_matrix")):
        matrix = extra.get(key) or []
        if matrix and len(matrix) == len(names):
            setattr(board, target, [[matrix[i][j] for j in keep] for i in keep])
    board.flags = [str(f) for f in (extra.get("flags") or [])]
    board.flag_notes = [FLAG_NOTES.get(flag, flag) for flag in board.flags if flag != "regularized"]
    return board


PROVENANCE_KEYS = (
    "version",
    "samples_checked",
    "raw_c2pa",
    "raw_watermark",
    "clean_bit_accuracy",
    "jpeg75_bit_accuracy",
    "resize_bit_accuracy",
    "survives_jpeg75",
    "survives_resize",
)


def provenance_cell(row) -> dict:
    """The provenance column of one model (a VersionProvenance): what its own outputs carry and
    whether our watermark survives JPEG q75 and a resize on them."""
    return {
        "version": row.version.tag,
        "samples_checked": row.samples_checked,
        "raw_c2pa": row.raw_c2pa > 0,
        "raw_watermark": row.raw_watermark,
        "clean_bit_accuracy": row.clean_bit_accuracy,
        "jpeg75_bit_accuracy": row.jpeg75_bit_accuracy,
        "resize_bit_accuracy": row.resize_bit_accuracy,
        "survives_jpeg75": row.survives_jpeg75,
        "survives_resize": row.survives_resize,
        "threshold": (row.details or {}).get("threshold"),
    }


GENERATION_KEYS = (
    "seconds_median",
    "cost_per_sample_median",
    "cost_per_megapixel_median",
    "cost_per_video_second_median",
    "device_name",
    "dtype",
    "nfe",
    "n",
)


def generation_cell(version: ModelVersion, summary: GenerationSummary) -> dict[str, Any]:
    """A board row's generation cost: the summary of the version it was measured on."""
    return {"version": version.tag, **summary.as_dict()}


def quality_vs_cost(rows: list[dict], metrics: list[str]) -> dict[str, Any] | None:
    """Points (model, display_name, cost in $ per megapixel, quality, pareto) of the rows with
    a generation cost, and the Pareto frontier (slugs by increasing cost). Quality is the
    human rating when some such row is rated, else the first metric (catalogue order) with a
    value; a lower-is-better metric's frontier prefers lower values. None without two
    comparable points."""
    priced = [
        r
        for r in rows
        if r.get("generation") and r["generation"].get("cost_per_megapixel_median") is not None
    ]
    sources = [("rating", "Arena rating (Bradley–Terry)", "higher")]
    sources += [(m, metric_heading(m), METRICS[m].direction) for m in metrics if m in METRICS]
    for key, label, direction in sources:
        points = []
        for row in priced:
            if key == "rating":
                quality = None if row.get("no_votes") else row.get("rating")
            else:
                cell = row["metrics"].get(key) or {}
                quality = cell.get("value") if cell.get("status") == "ok" else None
            if quality is not None:
                points.append(
                    {
                        "model": row["model"],
                        "display_name": row.get("display_name") or row["model"],
                        "cost": float(row["generation"]["cost_per_megapixel_median"]),
                        "quality": float(quality),
                    }
                )
        if len(points) < 2:
            continue
        sign = 1.0 if direction == "higher" else -1.0
        front = pareto_front([(p["cost"], sign * p["quality"]) for p in points])
        for i, point in enumerate(points):
            point["pareto"] = i in front
        return {
            "quality": key,
            "label": label,
            "direction": direction,
            "cost": "cost_per_megapixel_median",
            "points": points,
            "frontier": [points[i]["model"] for i in front],
        }
    return None


STYLE_KEYS = ("rating", "lower", "upper", "rank", "rank_ub")
ROBUSTNESS_KEYS = ("count", "display", "fraction", "approximate", "cap")


def _attach_style_and_robustness(board: Leaderboard, rows: list[dict], snapshot, extra) -> None:
    """Per-row style-controlled rating / rank and robustness, board-level coefficients and tie
    model, all read from the snapshot (no fit); rows reordered for ``view="style"``."""
    style = extra.get("style")
    style_rows = {}
    if isinstance(style, dict):
        board.style = {k: v for k, v in style.items() if k not in ("rows", "coefficients")}
        if style.get("status") == "ok":
            board.style_coefficients = list(style.get("coefficients") or [])
            style_rows = {r["model"]: r for r in style.get("rows") or []}
    board.ties = dict(extra.get("ties") or {"model": "half"})
    robustness = extra.get("robustness")
    pairs = {}
    if isinstance(robustness, dict):
        board.robustness = {k: v for k, v in robustness.items() if k != "pairs"}
        pairs = {(p["upper"], p["lower"]): p for p in robustness.get("pairs") or []}
    above = {}
    ordered = [r["model"] for r in (snapshot.rows if snapshot is not None else [])]
    for upper, lower in zip(ordered, ordered[1:], strict=False):
        above[lower] = upper
    for row in rows:
        found = style_rows.get(row["model"])
        row["style"] = {k: found.get(k) for k in STYLE_KEYS} if found else None
        pair = pairs.get((above.get(row["model"]), row["model"]))
        row["robustness"] = {k: pair.get(k) for k in ROBUSTNESS_KEYS} if pair else None
    if board.view == "style" and style_rows:
        rows.sort(
            key=lambda r: (
                r["no_votes"],
                r["style"] is None,
                r["style"]["rank"] if r["style"] else 0,
                -r["style"]["rating"] if r["style"] else 0.0,
            )
        )


def leaderboard_fingerprint(*, task: str) -> str:
    """Everything a rendered leaderboard of `task` is made from, summarised in one query.

    The newest snapshot of the task (its board, history and categories), the task's models
    (names, visibility), the metric results, the provenance checks and the newest sample (generation
    cost): an equal fingerprint means an equal page for
    the same kind of viewer, so a cached page is never stale.
    """
    snapshots = RatingSnapshot._meta.db_table
    models, results = GenerativeModel._meta.db_table, MetricResult._meta.db_table
    versions = ModelVersion._meta.db_table
    checks = VersionProvenance._meta.db_table  # the provenance column
    samples = Sample._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT MAX(id) FROM {snapshots} WHERE task = %s),"
            f" (SELECT MAX(computed_at) FROM {snapshots} WHERE task = %s),"
            f" (SELECT COUNT(*) FROM {models} WHERE task = %s),"
            f" (SELECT MAX(updated_at) FROM {models} WHERE task = %s),"
            f" (SELECT COUNT(*) FROM {results}), (SELECT MAX(updated_at) FROM {results}),"
            f" (SELECT COUNT(*) FROM {versions} WHERE status = %s),"
            f" (SELECT MAX(updated_at) FROM {versions}),"
            f" (SELECT COUNT(*) FROM {checks}), (SELECT MAX(checked_at) FROM {checks}),"
            f" (SELECT MAX(id) FROM {samples})",  # new samples: the generation cost columns
            [task] * 4 + [VersionStatus.PUBLISHED],
        )
        return repr(cursor.fetchone())


# What a degenerate-data flag of the fit means, for people reading the leaderboard page.
FLAG_NOTES = {
    "no_votes": "No votes yet: every model shows the initial rating.",
    "single_model": "Only one model has votes, so there is nothing to rank yet.",
    "disconnected": (
        "Some groups of models were never compared with each other; ratings across groups are "
        "held together only by a weak prior and are not comparable yet."
    ),
    "infinite_mle": (
        "At least one model has only wins or only losses so far; its rating is kept finite by a "
        "weak prior (marked in its row) and will settle as votes arrive."
    ),
    "bootstrap_regularized": "Some bootstrap rounds needed the prior; intervals are approximate.",
}


def metric_cell(result: MetricResult | None) -> dict[str, Any]:
    """A result as the leaderboard and model page show it; interval: what (lower, upper) mean,
    a key of catalogue.INTERVALS ("ci95", "std")."""
    if result is None:
        return {"status": "missing", "value": None, "lower": None, "upper": None, "message": ""}
    interval = interval_of(result.metric)
    return {
        "status": result.status,
        "value": result.value,
        "lower": result.lower,
        "upper": result.upper,
        "interval": interval.key if interval else "",
        "message": result.message,
        "backbone": result.backbone,
    }


def rating_history(
    *, task: str, category: str = "", user=None, limit: int = 200
) -> list[dict[str, Any]]:
    """Snapshots oldest first as {computed_at, ratings: {slug: rating}} for visible models."""
    from arena.rating_snapshots import snapshot_history

    history = snapshot_history(task=task, category=category, limit=limit)
    slugs = {r["model"] for snap in history for r in snap.rows}
    visible = set(visible_models(user=user).filter(slug__in=slugs).values_list("slug", flat=True))
    return [
        {
            "computed_at": snap.computed_at,
            "ratings": {r["model"]: r["rating"] for r in snap.rows if r["model"] in visible},
        }
        for snap in history
    ]


# --- model page ----------------------------------------------------------------------------


def model_for_page(*, slug: str, user) -> GenerativeModel | None:
    return visible_models(user=user).filter(slug=slug).select_related("owner").first()


def model_versions(*, model: GenerativeModel) -> list[ModelVersion]:
    return list(model.versions.prefetch_related("stages").order_by("-created_at"))


def sample_gallery(*, model: GenerativeModel, per_prompt: int = 4) -> list[tuple[Prompt, list]]:
    """(prompt, samples) of the model's newest version that has public samples (its showcase
    and retired battle samples, never a live battle sample), by prompt position."""
    version = (
        ModelVersion.objects.filter(model=model, samples__in=Sample.objects.public())
        .exclude(status__in=EXCLUDED_VERSION_STATUSES)
        .order_by("-created_at")
        .first()
    )
    if version is None:
        return []
    groups: dict[int, tuple[Prompt, list]] = {}
    for sample in (
        Sample.objects.public()
        .filter(version=version)
        .select_related("prompt")
        .order_by("prompt__position", "prompt_id", "seed")
    ):
        entry = groups.setdefault(sample.prompt_id, (sample.prompt, []))
        if len(entry[1]) < per_prompt:
            entry[1].append(sample)
    return list(groups.values())


def gallery_sample(*, model: GenerativeModel, public_id) -> Sample | None:
    return (
        Sample.objects.public()
        .filter(public_id=public_id, version__model=model)
        .exclude(version__status__in=EXCLUDED_VERSION_STATUSES)
        .first()
    )


def version_generation(*, versions: list[ModelVersion]) -> dict[int, dict[str, Any]]:
    """{version id: its generation summary (as a dict)} for versions whose samples recorded
    their generation time."""
    summaries = generation_summaries_by_version(version_ids=[v.id for v in versions])
    return {version_id: summary.as_dict() for version_id, summary in summaries.items()}


def steps_sweep_series(*, model: GenerativeModel) -> dict[str, dict[str, list[dict]]]:
    """The model's steps sweeps by metric: {metric: {"<tag> · <sampler>": [point]}}, points
    {nfe, steps, value, lower, upper, status, n, seconds_per_sample} by NFE."""
    out: dict[str, dict[str, list[dict]]] = {}
    for point in steps_sweep_points(versions=model.versions.all()).select_related("version"):
        label = f"{point.version.tag} · {point.sampler}"
        out.setdefault(point.metric, {}).setdefault(label, []).append(
            {
                key: getattr(point, key)
                for key in (
                    "nfe",
                    "steps",
                    "value",
                    "lower",
                    "upper",
                    "status",
                    "n",
                    "seconds_per_sample",
                )
            }
        )
    return out


def metric_history(*, model: GenerativeModel) -> list[MetricResult]:
    return list(
        MetricResult.objects.filter(version__model=model)
        .select_related("version")
        .order_by("metric", "version__created_at", "backbone")
    )


def head_to_head(*, model: GenerativeModel, user=None) -> list[dict[str, Any]]:
    """Human-vote record of `model` against each visible opponent, aggregated in SQL.

    Returns [{opponent (GenerativeModel), wins, losses, ties, both_bad, battles, win_rate}]
    sorted by battles desc; win_rate counts ties (and both-bad) as half a win.
    """
    votes = Vote.objects.filter(rater_kind=RaterKind.HUMAN).filter(
        Q(model_a=model) | Q(model_b=model)
    )
    grouped = votes.values("model_a_id", "model_b_id", "outcome").annotate(n=Count("id"))
    record: dict[int, dict[str, int]] = defaultdict(
        lambda: {"wins": 0, "losses": 0, "ties": 0, "both_bad": 0}
    )
    for row in grouped:
        on_a = row["model_a_id"] == model.id
        opponent = row["model_b_id"] if on_a else row["model_a_id"]
        outcome, n = row["outcome"], row["n"]
        if outcome == Outcome.TIE:
            record[opponent]["ties"] += n
        elif outcome == Outcome.BOTH_BAD:
            record[opponent]["both_bad"] += n
        elif (outcome == Outcome.MODEL_A) == on_a:
            record[opponent]["wins"] += n
        else:
            record[opponent]["losses"] += n
    opponents = visible_models(user=user).in_bulk(list(record))
    rows = []
    for opponent_id, r in record.items():
        if opponent_id not in opponents:
            continue
        battles = r["wins"] + r["losses"] + r["ties"] + r["both_bad"]
        half = r["ties"] + r["both_bad"]
        rows.append(
            {
                "opponent": opponents[opponent_id],
                **r,
                "battles": battles,
                "win_rate": (r["wins"] + 0.5 * half) / battles if battles else math.nan,
            }
        )
    rows.sort(key=lambda row: (-row["battles"], row["opponent"].slug))
    return rows


# --- export --------------------------------------------------------------------------------

WINNER_FOR_OUTCOME = {
    Outcome.MODEL_A: "model_a",
    Outcome.MODEL_B: "model_b",
    Outcome.TIE: "tie",
    Outcome.BOTH_BAD: "tie (bothbad)",
}


def export_vote_rows(*, task: str, category: str | None = None, rater_kind: str | None = "human"):
    """Votes of a task as dicts in LMArena's public-dataset schema, oldest first (streamed).

    winner uses LMArena's values; judge is an anonymised rater id; tstamp / served_tstamp are
    Unix seconds (float). vote_kind is pair / ranking / top1: a K-wise vote's model_a / model_b /
    winner are its A-versus-B projection and `ranking` lists its models best first (slugs joined
    by ">"). flagged: the vote is left out of rating snapshots, and excluded_reason says why:
    ``outlier`` (the rater's RaterFlag), ``targeted`` (the rater's TargetingFlag) or
    ``targeted_address`` (its address's TargetingFlag), ``selective`` (the rater voted on fewer
    than ARENA_MIN_VOTE_RATE of the battles served) or ``few_votes`` (fewer than
    ARENA_RATER_MIN_VOTES votes); "" when it counts.
    """

    votes = Vote.objects.filter(task=task)
    if category is not None:
        votes = votes.filter(category=category)
    if rater_kind is not None:
        votes = votes.filter(rater_kind=rater_kind)
    fields = (
        "id",
        "model_a__slug",
        "model_b__slug",
        "outcome",
        "rater_id",
        "rater_kind",
        "category",
        "battle__prompt__text",
        "created_at",
        "battle__served_at",
        "kind",
        "ranking",
        "ip_hash",
    )
    excluded = set(RaterFlag.objects.filter(excluded=True).values_list("rater_id", flat=True))
    flags = list(TargetingFlag.objects.values_list("subject", "key"))
    targeted_raters = {int(key) for subject, key in flags if subject == TargetSubject.RATER}
    targeted_addresses = {key for subject, key in flags if subject == TargetSubject.ADDRESS}
    from arena.rating_snapshots import vote_count_excluded_raters

    by_count = {
        reason: set(raters.values_list("pk", flat=True))
        for reason, raters in vote_count_excluded_raters().items()
    }
    slugs = dict(GenerativeModel.objects.filter(task=task).values_list("id", "slug"))
    for row in votes.order_by("id").values_list(*fields).iterator(chunk_size=5000):
        vote_id, a, b, outcome, rater_id, kind, cat, prompt, created, served, vote_kind = row[:11]
        ranking, ip_hash = row[11:]
        reason = (
            "outlier"
            if rater_id in excluded
            else "targeted"
            if rater_id in targeted_raters
            else "targeted_address"
            if ip_hash and ip_hash in targeted_addresses
            else "selective"
            if rater_id in by_count["selective"]
            else "few_votes"
            if rater_id in by_count["few_votes"]
            else ""
        )
        yield {
            "question_id": f"{task}-{vote_id}",
            "model_a": a,
            "model_b": b,
            "winner": WINNER_FOR_OUTCOME[outcome],
            "judge": anonymised_rater_id(rater_id),
            "rater_kind": kind,
            "task": task,
            "category": cat,
            "prompt": prompt,
            "tstamp": created.timestamp(),
            "served_tstamp": served.timestamp(),
            "created_at": created.isoformat(),
            "vote_kind": vote_kind,
            "ranking": ">".join(slugs.get(m, str(m)) for m in ranking) if ranking else "",
            "flagged": bool(reason),
            "excluded_reason": reason,
        }
