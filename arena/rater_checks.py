"""Rater hygiene: the periodic outlier test of human raters, maintainers' reviews of its flags,
and personal leaderboards.

Outlier test (``check_all_raters``, run by beat): every human vote of a task, in time order, is
read as its A-versus-B projection (Vote.model_a / model_b / outcome: the pair the rater voted
on, or for a K-wise vote which of samples A and B was ranked higher; a best-of-K pick of a third
sample says nothing about A versus B and is skipped like a tie). Under Plackett–Luce the
probability that A is ranked above B is exactly the pairwise sigmoid(theta_A - theta_B), so one
fixed pair per battle keeps the votes independent and the test exact. ``check_raters`` (Wald's
SPRT, arena.ratings.raters) compares "votes like the consensus" against "votes at random" with
error rates ARENA_RATER_CHECK_ALPHA (flagging an honest rater) and ARENA_RATER_CHECK_BETA
(clearing a random one). The consensus of each task is the fit of its human all-prompts board
without the votes of raters already excluded (Bradley–Terry, or Plackett–Luce when the task has
K-wise votes); models are disjoint across tasks, so one test runs over a rater's votes of every
task.

The verdict of each rater is stored in RaterFlag; `excluded` raters' votes are left out of
rating snapshots (arena.rating_snapshots.counted_votes) but kept and exported. A maintainer's
review (confirm / clear) overrides the test for good; "reset" hands the rater back to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from arena import rating_snapshots
from arena.models import (
    FlagReview,
    Rater,
    RaterFlag,
    RaterKind,
    RatingSnapshot,
    TargetingFlag,
    TargetSubject,
    Vote,
    VoteKind,
)
from arena.ratings import check_raters, fit_bradley_terry, personal_ratings
from arena.ratings.targeting import check_targeted_voting
from arena.ratings.votes import AggregatedVotes
from models_registry.models import GenerativeModel, Task

REVIEW_ACTIONS = {"confirm": FlagReview.CONFIRMED, "clear": FlagReview.CLEARED, "reset": ""}


@dataclass(frozen=True)
class Consensus:
    """What the SPRT and personal boards read of a consensus fit: models, logits, ratings and
    the method (scale, base, tie weight, both_bad). Built from a fit or from a snapshot."""

    models: tuple[str, ...]
    theta: np.ndarray
    ratings: np.ndarray
    method: dict


def task_consensus(task: str) -> Consensus | None:
    """The current fit of the human all-prompts board of `task` (excluded raters left out), or
    None without votes."""
    options = rating_snapshots.ratings_options(ci="sandwich")
    pairwise = rating_snapshots.stored_votes(task=task)
    ranked = rating_snapshots.kwise_votes(task=task)
    if ranked.n_battles:
        fit = rating_snapshots.board_plackett_luce(pairwise, ranked, options)
    elif pairwise.n_votes:
        fit = fit_bradley_terry(pairwise, options)
    else:
        return None
    return Consensus(tuple(fit.models), fit.theta, fit.ratings, dict(fit.method))


def snapshot_consensus(snapshot: RatingSnapshot) -> Consensus:
    """A consensus from a stored snapshot (for pages, which never fit the whole board)."""
    method = snapshot.method or {}
    alpha = method.get("scale", 400.0) / np.log(method.get("base", 10.0))
    ratings = np.array([row["rating"] for row in snapshot.rows], dtype=np.float64)
    return Consensus(
        tuple(row["model"] for row in snapshot.rows),
        (ratings - ratings.mean()) / alpha,
        ratings,
        dict(method),
    )


@dataclass(frozen=True)
class CheckSummary:
    raters: int
    flagged: int
    cleared: int
    undecided: int
    excluded: int
    changed: int  # raters whose outlier exclusion changed (their boards are refreshed)
    targeted: int = 0  # raters and addresses flagged by the targeted-voting test
    targeted_changed: int = 0  # subjects whose targeted-voting flag changed

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def check_all_raters(*, now=None, refresh: bool = True) -> CheckSummary:
    """Run the outlier test on every human rater and store the verdicts (RaterFlag); refresh
    the snapshots of every task when someone's exclusion changed."""
    now = now or timezone.now()
    consensus_models: list[str] = []
    consensus_theta: list[np.ndarray] = []
    for task in Task.values:
        found = task_consensus(task)
        if found is not None:
            consensus_models += found.models
            consensus_theta.append(found.theta)
    rows = list(
        Vote.objects.filter(rater_kind=RaterKind.HUMAN)
        .order_by("id")
        .values_list("rater_id", "model_a__slug", "model_b__slug", "outcome", "ip_hash", "task")
    )
    if not rows:
        return CheckSummary(0, 0, 0, 0, 0, 0)
    votes = [row[:4] for row in rows]
    consensus = Consensus(
        tuple(consensus_models),
        np.concatenate(consensus_theta) if consensus_theta else np.zeros(0),
        np.zeros(len(consensus_models)),
        {},
    )
    rater, model_a, model_b, winner = (list(column) for column in zip(*votes, strict=True))
    checks = check_raters(
        consensus,
        rater,
        model_a,
        model_b,
        winner,
        alpha=settings.ARENA_RATER_CHECK_ALPHA,
        beta=settings.ARENA_RATER_CHECK_BETA,
        alternative=settings.ARENA_RATER_CHECK_ALTERNATIVE,
    )
    with transaction.atomic():
        existing = {
            flag.rater_id: flag
            for flag in RaterFlag.objects.select_for_update().filter(
                rater_id__in=[int(c.rater) for c in checks]
            )
        }
        new, updated, changed = [], [], 0
        for check in checks:
            rater_id = int(check.rater)
            flag = existing.get(rater_id) or RaterFlag(rater_id=rater_id)
            before = flag.excluded if flag.pk else False
            flag.decision = check.decision
            flag.decided_at = check.decided_at
            flag.n_votes = check.n_votes
            flag.informative = check.informative
            flag.llr = check.llr
            flag.agreement = check.agreement
            flag.checked_at = now
            flag.excluded = RaterFlag.is_excluded(flag.decision, flag.review)
            changed += flag.excluded != before
            (updated if flag.pk else new).append(flag)
        RaterFlag.objects.bulk_create(new)
        RaterFlag.objects.bulk_update(
            updated,
            ["decision", "decided_at", "n_votes", "informative", "llr", "agreement"]
            + ["checked_at", "excluded"],
        )
    targeted_changed = _store_targeting_flags(consensus, rows, now=now)
    if (changed or targeted_changed) and refresh:
        rating_snapshots.refresh_rating_snapshots()
    flags = new + updated
    return CheckSummary(
        raters=len(flags),
        flagged=sum(f.decision == "flagged" for f in flags),
        cleared=sum(f.decision == "cleared" for f in flags),
        undecided=sum(f.decision == "undecided" for f in flags),
        excluded=sum(f.excluded for f in flags),
        changed=changed,
        targeted=TargetingFlag.objects.count(),
        targeted_changed=targeted_changed,
    )


# The first pass tests every subject against the consensus of all votes, its own included;
# those below this p-value are tested again against a consensus fitted without their votes
# (their own votes pull the consensus toward the model they favour, hiding them).
TARGETED_RECHECK_BELOW = 0.2


def _store_targeting_flags(consensus, rows: list, *, now) -> int:
    """Run the targeted-voting test per rater and per address (arena.ratings.targeting) on the
    human votes `rows` (rater, model_a, model_b, outcome, ip_hash, task) with the outlier test's
    consensus, then leave-one-out for the suspects; keep one TargetingFlag per flagged subject.
    Returns how many subjects' flags changed (their boards are refitted)."""
    rater, model_a, model_b, winner, address, task = (
        np.array(column, dtype=object) for column in zip(*rows, strict=True)
    )
    alpha = settings.ARENA_TARGETED_CHECK_ALPHA
    minimum = settings.ARENA_TARGETED_CHECK_MIN_VOTES
    found: dict[tuple[str, str], TargetingFlag] = {}
    subjects = (
        (TargetSubject.RATER, np.array([str(r) for r in rater], dtype=object)),
        (TargetSubject.ADDRESS, address),
    )
    for subject, keys in subjects:
        usable = keys != ""
        if not usable.any():
            continue
        screen = check_targeted_voting(
            consensus,
            keys[usable],
            model_a[usable],
            model_b[usable],
            winner[usable],
            alpha=max(alpha, TARGETED_RECHECK_BELOW),
            min_votes=minimum,
        )
        for suspect in (c for c in screen if c.flagged):
            mine = keys == suspect.group
            board = task[mine & (model_a == suspect.model) | mine & (model_b == suspect.model)][0]
            others = (task == board) & ~mine
            refit = _fit_without(model_a[others], model_b[others], winner[others])
            if refit is None:
                continue
            (check,) = check_targeted_voting(
                refit,
                keys[mine],
                model_a[mine],
                model_b[mine],
                winner[mine],
                alpha=alpha,
                min_votes=minimum,
            )
            if check.flagged:
                found[(subject, str(check.group))] = TargetingFlag(
                    subject=subject,
                    key=str(check.group),
                    model=str(check.model),
                    n=check.n,
                    wins=check.wins,
                    expected=check.expected,
                    p_value=check.p_value,
                    checked_at=now,
                )
    with transaction.atomic():
        before = set(TargetingFlag.objects.values_list("subject", "key"))
        stale = [
            pk
            for pk, subject, key in TargetingFlag.objects.values_list("pk", "subject", "key")
            if (subject, key) not in found
        ]
        TargetingFlag.objects.filter(pk__in=stale).delete()
        TargetingFlag.objects.bulk_create(
            found.values(),
            update_conflicts=True,
            unique_fields=["subject", "key"],
            update_fields=["model", "n", "wins", "expected", "p_value", "checked_at"],
        )
    return len(before ^ set(found))


def _fit_without(model_a, model_b, winner):
    """The Bradley–Terry consensus of these pairwise projections (None without two models)."""
    votes = AggregatedVotes.from_votes(list(model_a), list(model_b), list(winner))
    if votes.n_models < 2:
        return None
    return fit_bradley_terry(votes, rating_snapshots.ratings_options(ci="sandwich"))


class ReviewError(ValueError):
    pass


def review_rater_flag(*, flag_id: int, action: str, user) -> RaterFlag:
    """A maintainer confirms (votes excluded), clears (votes counted) or resets (the test
    decides again) a rater's flag. Raises ReviewError for an unknown action, LookupError for an
    unknown flag. Boards are refreshed in the background (debounced)."""
    from arena.services import request_rating_refresh

    if action not in REVIEW_ACTIONS:
        raise ReviewError(f"Unknown action {action!r}; use confirm, clear or reset.")
    with transaction.atomic():
        flag = RaterFlag.objects.select_for_update().filter(pk=flag_id).first()
        if flag is None:
            raise LookupError(f"No rater flag {flag_id}.")
        flag.review = REVIEW_ACTIONS[action]
        flag.reviewed_by = user if flag.review else None
        flag.reviewed_at = timezone.now() if flag.review else None
        flag.excluded = RaterFlag.is_excluded(flag.decision, flag.review)
        flag.save(update_fields=["review", "reviewed_by", "reviewed_at", "excluded"])
    tasks = set(Vote.objects.filter(rater_id=flag.rater_id).values_list("task", flat=True))
    for task in tasks:
        transaction.on_commit(lambda task=task: request_rating_refresh(task=task))
    return flag


# --- personal leaderboard ------------------------------------------------------------------


@dataclass(frozen=True)
class PersonalBoard:
    task: str
    n_votes: int
    min_votes: int
    rows: list[dict]  # personal_ratings(...).table() with display names; [] below min_votes
    message: str  # why there is no board ("" when there is one)
    prior_sd: float = 100.0

    @property
    def needed(self) -> int:
        return max(self.min_votes - self.n_votes, 0)


def personal_board(*, rater: Rater | None, task: str, prior_sd: float = 100.0) -> PersonalBoard:
    """One rater's board of `task`: their ratings from their own votes (A-versus-B projections
    of K-wise ones), shrunk toward the latest human snapshot (the consensus), and the shift.
    Below ARENA_PERSONAL_MIN_VOTES votes: no board, and a message saying how many are missing."""
    minimum = settings.ARENA_PERSONAL_MIN_VOTES
    votes = (
        Vote.objects.filter(task=task, rater=rater) if rater is not None else Vote.objects.none()
    )
    n_votes = votes.count()
    if n_votes < minimum:
        more = minimum - n_votes
        return PersonalBoard(
            task,
            n_votes,
            minimum,
            [],
            f"You have {n_votes} vote{'s' * (n_votes != 1)} in this arena; your personal "
            f"leaderboard needs {minimum}. Cast {more} more vote{'s' * (more != 1)} to see it.",
            prior_sd,
        )
    snapshot = rating_snapshots.latest_snapshot(task=task)
    if snapshot is None or not snapshot.rows:
        return PersonalBoard(
            task, n_votes, minimum, [], "The consensus leaderboard is not computed yet.", prior_sd
        )
    consensus = snapshot_consensus(snapshot)
    known = set(consensus.models)
    rows = [
        (a, b, outcome, n)
        for a, b, outcome, n in _grouped_votes(votes)
        if a in known and b in known
    ]
    if not rows:
        return PersonalBoard(
            task, n_votes, minimum, [], "None of your votes is rated yet.", prior_sd
        )
    a, b, outcomes, counts = zip(*rows, strict=True)
    mine = AggregatedVotes.from_rows(
        np.array(a, dtype=object), np.array(b, dtype=object), list(outcomes), np.array(counts)
    )
    try:
        fit = personal_ratings(mine, consensus, prior_sd=prior_sd, min_votes=minimum)
    except ValueError as exc:
        return PersonalBoard(task, n_votes, minimum, [], str(exc), prior_sd)
    names = dict(
        GenerativeModel.objects.filter(slug__in=fit.models).values_list("slug", "display_name")
    )
    table = [{**row, "display_name": names.get(row["model"], row["model"])} for row in fit.table()]
    return PersonalBoard(task, n_votes, minimum, table, "", prior_sd)


def _grouped_votes(votes) -> list[tuple[str, str, str, int]]:
    """(slug a, slug b, outcome, count) of a rater's votes, top-1 picks of a third sample
    (outcome both_bad of a K-wise vote: nothing about A versus B) left out."""
    return list(
        votes.exclude(Q(kind=VoteKind.TOP1) & Q(outcome="both_bad"))
        .values("model_a__slug", "model_b__slug", "outcome")
        .annotate(n=Count("id"))
        .values_list("model_a__slug", "model_b__slug", "outcome", "n")
        .order_by()
    )
