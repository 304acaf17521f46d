"""Writes of the arena: raters, battles, votes. Every integrity rule of a vote lives here.

A refused request raises ArenaRefusal (an HTTP status, a machine code and a sentence for the
rater) before anything is written; the vote itself is one INSERT inside a transaction that holds
a lock on the battle and on the rater, so a refused or concurrent vote changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from arena import selectors
from arena.models import Battle, Outcome, Rater, RaterKind, Vote, new_token
from arena.sampling import NoBattleAvailable, SamplingConfig, choose_battle
from evaluation.models import Sample

logger = logging.getLogger(__name__)
SESSION_RATER_KEY = "arena_rater_key"
REFRESH_TASK = "workers.tasks.refresh_rating_snapshots"


class ArenaRefusal(Exception):
    """A request the arena refuses: `status` (4xx), `code` (stable, for clients), message."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


# --- raters and addresses ------------------------------------------------------------------


def rater_for_session(*, user, session, create: bool = True) -> Rater | None:
    """The rater of a logged-in user, else of this browser session (created on first use).

    session: a Django session; an anonymous rater's key is kept in it, never derived from it,
    so that logging in (which rotates the session key) keeps the rater.
    """
    if user is not None and user.is_authenticated:
        if not create:
            return Rater.objects.filter(user=user).first()
        rater, _ = Rater.objects.get_or_create(user=user, defaults={"kind": RaterKind.HUMAN})
        return rater
    key = session.get(SESSION_RATER_KEY)
    if key:
        rater = Rater.objects.filter(session_key=key, kind=RaterKind.HUMAN).first()
        if rater is not None or not create:
            return rater
    elif not create:
        return None
    rater = Rater.objects.create(kind=RaterKind.HUMAN, session_key=new_token())
    session[SESSION_RATER_KEY] = rater.session_key
    return rater


def client_address(*, remote_addr: str, forwarded_for: str = "") -> str:
    """The client's IP: REMOTE_ADDR, or the address the trusted proxies saw (X-Forwarded-For)."""
    hops = settings.ARENA_TRUSTED_PROXY_HOPS
    if hops > 0 and forwarded_for:
        chain = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if len(chain) >= hops:
            return chain[-hops]
    return remote_addr or ""


def address_hash(address: str) -> str:
    """A keyed hash of an IP address: rate limits without storing addresses."""
    return hmac.new(settings.SECRET_KEY.encode(), address.encode(), hashlib.sha256).hexdigest()


def anonymised_rater_id(rater_id: int) -> str:
    """A stable pseudonym for a rater in exported data (not reversible without SECRET_KEY)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"rater:{rater_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


# --- battles -------------------------------------------------------------------------------


def _check_rate(count: int, limit: int, who: str, what: str) -> None:
    if limit > 0 and count >= limit:
        raise ArenaRefusal(
            429,
            "rate_limited",
            f"Too many {what} from this {who}: at most {limit} per minute. "
            "Please wait a minute and try again.",
            retry_after=60,
        )


def battle_create(
    *, task: str, rater: Rater, ip_hash: str, rng: np.random.Generator | None = None
) -> Battle:
    """Serve a new anonymous battle of `task` to `rater`, its pair chosen by active sampling.

    Raises ArenaRefusal: 404 for an unknown task, 429 past the per-rater / per-IP battle rate,
    503 (``no_battle``) when fewer than two eligible models share a prompt.
    """
    if not selectors.is_valid_task(task):
        raise ArenaRefusal(404, "unknown_task", f"Unknown task {task!r}.")
    now = timezone.now()
    minute_ago = now - timedelta(minutes=1)
    _check_rate(
        Battle.objects.filter(served_to=rater, served_at__gte=minute_ago).count(),
        settings.ARENA_BATTLES_PER_MINUTE_PER_RATER,
        "rater",
        "battles",
    )
    if ip_hash:
        _check_rate(
            Battle.objects.filter(ip_hash=ip_hash, served_at__gte=minute_ago).count(),
            settings.ARENA_BATTLES_PER_MINUTE_PER_IP,
            "network address",
            "battles",
        )
    pool = selectors.arena_pool(task=task)
    state = selectors.sampler_state(task=task)
    rng = rng or np.random.default_rng()
    config = SamplingConfig(
        floor=settings.ARENA_SAMPLING_FLOOR,
        new_model_boost=settings.ARENA_NEW_MODEL_BOOST,
        provisional_votes=settings.ARENA_PROVISIONAL_VOTES,
    )
    try:
        choice = choose_battle(
            prompts={p: list(models) for p, models in pool.items()},
            states=state.states,
            rng=rng,
            config=config,
            covariance=state.covariance,
            covariance_order=state.order,
        )
    except NoBattleAvailable as exc:
        raise ArenaRefusal(
            503,
            "no_battle",
            "No battle is available yet for this task: it needs samples of at least two "
            "approved models for the same prompt.",
        ) from exc
    samples = pool[choice.prompt]
    sample_a = samples[choice.model_a][int(rng.integers(len(samples[choice.model_a])))]
    sample_b = samples[choice.model_b][int(rng.integers(len(samples[choice.model_b])))]
    return Battle.objects.create(
        task=task,
        prompt_id=choice.prompt,
        sample_a_id=sample_a,
        sample_b_id=sample_b,
        served_to=rater,
        served_at=now,
        expires_at=now + timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS),
        ip_hash=ip_hash,
    )


# --- votes ---------------------------------------------------------------------------------


def vote_create(
    *, token: str, rater: Rater | None, outcome: str, ip_hash: str, now: datetime | None = None
) -> Vote:
    """Record `rater`'s verdict on the battle with `token`; the only way a human vote is written.

    Refusals (ArenaRefusal, nothing written): 400 bad outcome, 404 unknown battle, 403 battle
    served to someone else, 409 already voted, 410 expired, 425 before the minimum viewing
    time, 429 past the per-rater or per-IP vote rate.
    """
    if outcome not in Outcome.values:
        allowed = ", ".join(Outcome.values)
        raise ArenaRefusal(
            400, "bad_outcome", f"Unknown outcome {outcome!r}; use one of {allowed}."
        )
    now = now or timezone.now()
    try:
        with transaction.atomic():
            battle = (
                Battle.objects.select_for_update(of=("self",))
                .select_related("prompt", "sample_a__version__model", "sample_b__version__model")
                .annotate(voted=Exists(Vote.objects.filter(battle=OuterRef("pk"))))
                .filter(token=token)
                .first()
            )
            if battle is None:
                raise ArenaRefusal(404, "unknown_battle", "This battle does not exist.")
            if rater is None or battle.served_to_id != rater.id:
                raise ArenaRefusal(
                    403, "not_your_battle", "This battle was shown to someone else; load your own."
                )
            if battle.voted:
                raise ArenaRefusal(409, "already_voted", "This battle already has your vote.")
            if now >= battle.expires_at:
                raise ArenaRefusal(
                    410, "expired", "This battle has expired; please vote on a new one."
                )
            min_view = settings.ARENA_MIN_VIEW_SECONDS
            if (now - battle.served_at).total_seconds() < min_view:
                raise ArenaRefusal(
                    425,
                    "too_early",
                    f"Please look at both samples for at least {min_view:g} seconds before voting.",
                )
            # Serialises one rater's concurrent votes so the rate count below is exact.
            Rater.objects.select_for_update().filter(pk=rater.pk).first()
            by_rater, by_ip = Q(rater=rater), Q(ip_hash=ip_hash) if ip_hash else Q(pk__in=[])
            recent = Vote.objects.filter(
                by_rater | by_ip, created_at__gte=now - timedelta(minutes=1)
            ).aggregate(rater=Count("id", filter=by_rater), ip=Count("id", filter=by_ip))
            _check_rate(
                recent["rater"], settings.ARENA_VOTES_PER_MINUTE_PER_RATER, "rater", "votes"
            )
            _check_rate(
                recent["ip"], settings.ARENA_VOTES_PER_MINUTE_PER_IP, "network address", "votes"
            )
            vote = Vote.objects.create(
                battle=battle,
                rater=rater,
                rater_kind=rater.kind,
                outcome=outcome,
                task=battle.task,
                category=battle.prompt.category,
                model_a=battle.sample_a.version.model,
                model_b=battle.sample_b.version.model,
                ip_hash=ip_hash,
            )
    except IntegrityError as exc:  # a concurrent vote on the same battle won the race
        if Vote.objects.filter(battle__token=token).exists():
            raise ArenaRefusal(409, "already_voted", "This battle already has a vote.") from exc
        raise
    transaction.on_commit(lambda: request_rating_refresh(task=vote.task))
    return vote


def request_rating_refresh(*, task: str) -> bool:
    """Enqueue a snapshot refresh for `task`, at most once per debounce window per process.

    Returns whether a task was sent. The beat refreshes anyway, so a broker that is down only
    delays the leaderboard: it is logged, and the vote (already committed) stands.
    """
    debounce = settings.ARENA_REFRESH_DEBOUNCE_SECONDS
    if debounce <= 0 or not cache.add(f"arena:refresh:{task}", 1, timeout=debounce):
        return False
    from config.celery import app

    try:
        app.send_task(REFRESH_TASK, kwargs={"task": task}, retry=False)
    except Exception:  # broker unreachable: the beat refresh will catch up
        logger.warning("could not enqueue %s for %s", REFRESH_TASK, task, exc_info=True)
        return False
    return True


def battle_reveal(*, vote: Vote) -> dict:
    """What the rater sees after voting: the two models' names and pages."""
    return {
        "outcome": vote.outcome,
        "model_a": {
            "slug": vote.model_a.slug,
            "name": vote.model_a.display_name,
            "url": f"/models/{vote.model_a.slug}/",
        },
        "model_b": {
            "slug": vote.model_b.slug,
            "name": vote.model_b.display_name,
            "url": f"/models/{vote.model_b.slug}/",
        },
    }


def battle_media_for(*, media_token: str, rater: Rater | None) -> Sample:
    """The sample behind a per-battle media id, only for the rater the battle was served to."""
    found = selectors.battle_by_media_token(media_token=media_token)
    if found is None or rater is None or found[0].served_to_id != rater.id:
        raise ArenaRefusal(404, "unknown_media", "No such media.")
    return found[1]
