"""Raters, battles, votes (append-only) and rating snapshots."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from evaluation.models import Prompt, Sample
from models_registry.models import GenerativeModel, Task


def new_token() -> str:
    """An unguessable URL-safe token (256 bits), used for battles and their media."""
    return secrets.token_urlsafe(32)


class RaterKind(models.TextChoices):
    HUMAN = "human", "Human"
    JUDGE = "judge", "VLM judge"


class Rater(models.Model):
    """Who voted: a logged-in user, an anonymous browser session, or a VLM judge."""

    kind = models.CharField(max_length=8, choices=RaterKind.choices, default=RaterKind.HUMAN)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rater",
    )
    session_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    judge_name = models.CharField(max_length=120, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=RaterKind.values), name="rater_kind_valid"),
            models.CheckConstraint(
                condition=Q(kind="judge", judge_name__isnull=False) | Q(kind="human"),
                name="rater_judge_has_name",
            ),
        ]

    def __str__(self) -> str:
        return f"rater {self.pk} ({self.kind})"


class Battle(models.Model):
    """Two anonymous samples of one prompt shown to one rater; `token` is unguessable, single-use."""

    token = models.CharField(max_length=64, unique=True, default=new_token)
    # Per-battle opaque media ids: the same sample gets a new id in every battle.
    media_token_a = models.CharField(max_length=64, unique=True, default=new_token)
    media_token_b = models.CharField(max_length=64, unique=True, default=new_token)
    task = models.CharField(max_length=20, choices=Task.choices)
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="battles")
    sample_a = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="+")
    sample_b = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="+")
    served_to = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="battles")
    # K samples shown (2: a pairwise battle; 3-4: K-wise, samples 3.. are BattleSample rows).
    size = models.PositiveSmallIntegerField(default=2, db_default=2)
    served_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ip_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        # Rate limits count in RateCounter rows (arena.rate_limits): no (rater, time) indexes.
        constraints = [
            models.CheckConstraint(
                condition=~Q(sample_a=F("sample_b")), name="battle_distinct_samples"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("served_at")), name="battle_expiry_after_serve"
            ),
            models.CheckConstraint(condition=Q(size__gte=2, size__lte=8), name="battle_size_valid"),
        ]

    def __str__(self) -> str:
        return f"battle {self.pk}"


class BattleSample(models.Model):
    """Sample number `position` (0-based; 2 and up, A and B are on Battle) of a K-wise battle,
    with its own per-battle opaque media id."""

    battle = models.ForeignKey(Battle, on_delete=models.CASCADE, related_name="extra_samples")
    position = models.PositiveSmallIntegerField()
    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="+")
    media_token = models.CharField(max_length=64, unique=True, default=new_token)

    class Meta:
        ordering = ["battle", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["battle", "position"], name="battle_sample_unique_position"
            ),
            models.CheckConstraint(condition=Q(position__gte=2), name="battle_sample_position"),
        ]

    def __str__(self) -> str:
        return f"battle {self.battle_id} sample {self.position}"


class SampleReveal(models.Model):
    """Rater `rater` has seen which model made `sample` (at the reveal after voting on a battle
    that showed it). The sampler never serves that rater the sample again, and a battle sample
    that ARENA_RETIRE_AFTER_REVEALS human raters have seen retires (evaluation.pools)."""

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="reveals")
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="reveals")
    rater_kind = models.CharField(max_length=8, choices=RaterKind.choices, default=RaterKind.HUMAN)
    # The voter's address hash: with ARENA_EXCLUDE_SEEN_BY_ADDRESS, a new cookie from the same
    # address is not served what that address has seen either.
    ip_hash = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rater", "sample"], name="sample_reveal_once"),
        ]

    def __str__(self) -> str:
        return f"sample {self.sample_id} revealed to rater {self.rater_id}"


class Outcome(models.TextChoices):
    MODEL_A = "model_a", "A is better"
    MODEL_B = "model_b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both are bad"


class VoteKind(models.TextChoices):
    PAIR = "pair", "Pairwise"
    RANKING = "ranking", "Full ranking"
    TOP1 = "top1", "Best of K"


class Vote(models.Model):
    """One rater's verdict on one battle. Append-only; model ids are denormalised for GROUP BY.

    A K-wise vote (kind ranking / top1) keeps its models best first in `ranking` (model ids;
    for top1 the winner, then the others in display order); its model_a / model_b / outcome are
    its A-versus-B projection (samples A and B): who of the two was ranked higher, or, for top1,
    both_bad when a third sample won. Rating fits read K-wise votes from `ranking` only.
    """

    battle = models.OneToOneField(Battle, on_delete=models.PROTECT, related_name="vote")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="votes")
    rater_kind = models.CharField(max_length=8, choices=RaterKind.choices, default=RaterKind.HUMAN)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    task = models.CharField(max_length=20, choices=Task.choices)
    category = models.CharField(max_length=60, blank=True)
    model_a = models.ForeignKey(GenerativeModel, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(GenerativeModel, on_delete=models.PROTECT, related_name="+")
    ip_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(
        max_length=8, choices=VoteKind.choices, default=VoteKind.PAIR, db_default=VoteKind.PAIR
    )
    ranking = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["task", "rater_kind", "category"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=Outcome.values), name="vote_outcome_valid"
            ),
            models.CheckConstraint(condition=~Q(model_a=F("model_b")), name="vote_distinct_models"),
            models.CheckConstraint(
                condition=Q(kind=VoteKind.PAIR, ranking__isnull=True)
                | Q(kind__in=[VoteKind.RANKING, VoteKind.TOP1], ranking__isnull=False),
                name="vote_ranking_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"vote {self.pk}: {self.outcome}"


class RatingSnapshot(models.Model):
    """A fitted leaderboard for (task, category, rater kind); '' category means all prompts."""

    task = models.CharField(max_length=20, choices=Task.choices)
    category = models.CharField(max_length=60, blank=True, default="")
    rater_kind = models.CharField(max_length=8, choices=RaterKind.choices, default=RaterKind.HUMAN)
    computed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    n_votes = models.PositiveIntegerField(default=0)
    method = models.JSONField(default=dict, blank=True)
    # [{model, rating, lower, upper, variance, votes, rank, rank_ub, ...}, ...] sorted by rating.
    rows = models.JSONField(default=list, blank=True)
    # Win-rate / battle-count matrices, flags (disconnected graph, infinite MLE), etc.
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-computed_at"]
        indexes = [models.Index(fields=["task", "category", "rater_kind", "-computed_at"])]

    def __str__(self) -> str:
        return f"{self.task}/{self.category or 'all'}/{self.rater_kind} @ {self.computed_at:%Y-%m-%d %H:%M}"


class RateCounter(models.Model):
    """Hits of one rate-limit key (``votes:rater:17``) in its current and previous minute.

    One row per key, advanced in place by a single upsert (arena.rate_limits), so counting is
    exact across every web process; beat deletes the rows of keys gone quiet (prune_counters).
    """

    key = models.CharField(max_length=100, primary_key=True)
    minute = models.BigIntegerField()  # windows since the Unix epoch (minutes by default)
    hits = models.PositiveIntegerField()
    previous = models.PositiveIntegerField()  # hits in minute - 1
    window_seconds = models.PositiveIntegerField(
        default=60, db_default=60
    )  # 86400 for the daily caps

    def __str__(self) -> str:
        return f"{self.key}: {self.hits} (+{self.previous} before) at minute {self.minute}"


class FlagDecision(models.TextChoices):
    FLAGGED = "flagged", "Flagged"
    CLEARED = "cleared", "Cleared"
    UNDECIDED = "undecided", "Undecided"


class FlagReview(models.TextChoices):
    NONE = "", "Not reviewed"
    CONFIRMED = "confirmed", "Flag confirmed"
    CLEARED = "cleared", "Flag cleared"


class RaterFlag(models.Model):
    """The latest outlier test (Wald SPRT against the consensus) of one human rater, and a
    maintainer's review of it. `excluded` raters' votes are left out of rating snapshots (kept
    and exported): flagged by the test and not cleared by a maintainer, or confirmed."""

    rater = models.OneToOneField(Rater, on_delete=models.CASCADE, related_name="flag")
    decision = models.CharField(max_length=10, choices=FlagDecision.choices)
    decided_at = models.PositiveIntegerField(
        null=True, blank=True, help_text="1-based index of the vote at which the test stopped"
    )
    n_votes = models.PositiveIntegerField(default=0)
    informative = models.PositiveIntegerField(default=0)
    llr = models.FloatField(default=0.0)
    agreement = models.FloatField(null=True, blank=True)
    checked_at = models.DateTimeField()
    review = models.CharField(max_length=10, choices=FlagReview.choices, blank=True, default="")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    excluded = models.BooleanField(default=False, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=FlagDecision.values), name="rater_flag_decision_valid"
            ),
            models.CheckConstraint(
                condition=Q(review__in=FlagReview.values), name="rater_flag_review_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"rater {self.rater_id}: {self.decision}{f' ({self.review})' if self.review else ''}"

    @staticmethod
    def is_excluded(decision: str, review: str) -> bool:
        """A maintainer's review wins; otherwise the test's verdict."""
        if review:
            return review == FlagReview.CONFIRMED
        return decision == FlagDecision.FLAGGED


class TargetSubject(models.TextChoices):
    RATER = "rater", "Rater"
    ADDRESS = "address", "Address"


class TargetingFlag(models.Model):
    """A rater (or an address, whatever cookies or accounts vote from it) whose votes favour one
    model far beyond the consensus: the targeted-voting test (arena.ratings.targeting), run with
    the outlier test. Its votes are left out of rating snapshots (kept and exported, with the
    reason). One row per flagged subject; a subject the latest run clears loses its row."""

    subject = models.CharField(max_length=8, choices=TargetSubject.choices)
    key = models.CharField(max_length=64)  # the rater id, or the address hash
    model = models.CharField(max_length=80)  # the favoured model's slug
    n = models.PositiveIntegerField()  # decisive votes on battles showing it
    wins = models.PositiveIntegerField()
    expected = models.FloatField()  # the consensus expectation of those wins
    p_value = models.FloatField()  # Bonferroni-adjusted over the models the subject voted on
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["p_value"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "key"], name="targeting_flag_once"),
            models.CheckConstraint(
                condition=Q(subject__in=TargetSubject.values), name="targeting_flag_subject"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.key[:12]} favours {self.model} (p={self.p_value:.2g})"
