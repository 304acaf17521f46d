"""Writes of the arena: raters, battles, votes. Every integrity rule of a vote lives here.

A refused request raises ArenaRefusal (an HTTP status, a machine code and a sentence for the
rater) and writes no vote or battle (only its rate counters count the attempt). A vote is one
conditional INSERT whose WHERE clause carries the battle's rules and whose unique battle_id makes
a concurrent second vote a no-op; on PostgreSQL the same statement counts the rate limits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache as memoize
from typing import NoReturn

import numpy as np
from django.conf import settings
from django.core.cache import cache, caches
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone

from arena import anonymity, rate_limits, selectors
from arena.models import (
    Battle,
    BattleSample,
    Outcome,
    Rater,
    RaterKind,
    Vote,
    VoteKind,
    new_token,
)
from arena.sampling import (
    KwiseSamplingConfig,
    NoBattleAvailable,
    SamplingConfig,
    choose_battle,
    choose_kwise_battle,
)
from config import task_names
from evaluation.models import Prompt, Sample
from models_registry.models import GenerativeModel, ModelVersion

logger = logging.getLogger(__name__)
SIDES = "ABCDEFGH"  # the labels of a battle's samples, in display order


class ArenaRefusal(Exception):
    """A request the arena refuses: `status` (4xx), `code` (stable, for clients), message."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


# --- raters and addresses ------------------------------------------------------------------


def rater_for(*, user, anonymous_rater_id: int | None) -> Rater:
    """The rater of a logged-in user, else the anonymous rater this browser carries (its id comes
    from a signed cookie), else a new anonymous rater."""
    if user is not None and user.is_authenticated:
        rater, _ = Rater.objects.get_or_create(user=user, defaults={"kind": RaterKind.HUMAN})
        return rater
    if anonymous_rater_id is not None:
        rater = Rater.objects.filter(
            pk=anonymous_rater_id, kind=RaterKind.HUMAN, user__isnull=True
        ).first()
        if rater is not None:
            return rater
    return Rater.objects.create(kind=RaterKind.HUMAN, session_key=new_token())


def rater_id_for(*, user, anonymous_rater_id: int | None) -> int | None:
    """The id of the user's rater or of the browser's anonymous rater; None if it has none yet.

    No query for an anonymous browser: the signed id is enough, because every rule that needs
    the rater (a battle served to it) is checked against the database anyway.
    """
    if user is not None and user.is_authenticated:
        return Rater.objects.filter(user=user).values_list("pk", flat=True).first()
    return anonymous_rater_id


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


# --- battles -------------------------------------------------------------------------------


def rate_limits_for(*, action: str, rater_id: int | None, ip_hash: str) -> list[rate_limits.Limit]:
    """The active limits of `action` ("votes" or "battles"): the rater's per minute (and, for
    votes, per day: ARENA_VOTES_PER_DAY_PER_RATER), then the address's (always this order, so
    concurrent counters never lock each other's rows in a cycle). A request with no rater is
    still limited by its address."""
    per_rater, per_ip = {
        "votes": (
            settings.ARENA_VOTES_PER_MINUTE_PER_RATER,
            settings.ARENA_VOTES_PER_MINUTE_PER_IP,
        ),
        "battles": (
            settings.ARENA_BATTLES_PER_MINUTE_PER_RATER,
            settings.ARENA_BATTLES_PER_MINUTE_PER_IP,
        ),
    }[action]
    limits = []
    if rater_id is not None:
        limits.append(rate_limits.Limit(f"{action}:rater:{rater_id}", per_rater))
        if action == "votes":
            limits.append(
                rate_limits.Limit(
                    f"votes:rater:{rater_id}:day",
                    settings.ARENA_VOTES_PER_DAY_PER_RATER,
                    rate_limits.DAY_SECONDS,
                )
            )
    if ip_hash:
        limits.append(rate_limits.Limit(f"{action}:ip:{ip_hash}", per_ip))
    return [limit for limit in limits if limit.per_minute > 0]


def check_rate_limits(limits: list[rate_limits.Limit], *, now: datetime) -> None:
    """Count one attempt on every limit; raise 429 when one is over its per-minute setting.
    Every attempt counts, refused or not."""
    exceeded = rate_limits.first_exceeded(limits, now=now.timestamp())
    if exceeded is not None:
        raise rate_refusal(exceeded)


def rate_refusal(limit: rate_limits.Limit) -> ArenaRefusal:
    """The 429 for `limit` (a key from rate_limits_for: ``<action>:rater|ip:<id>[:day]``)."""
    action, kind, _ = limit.key.split(":", 2)
    who = "rater" if kind == "rater" else "network address"
    if limit.window >= rate_limits.DAY_SECONDS:
        return ArenaRefusal(
            429,
            "daily_limit",
            f"Daily limit reached: at most {limit.per_minute} {action} per {who} in 24 hours. "
            "Thank you for voting so much; please come back tomorrow.",
            retry_after=3600,
        )
    return ArenaRefusal(
        429,
        "rate_limited",
        f"Too many {action} from this {who}: at most {limit.per_minute} per minute. "
        "Please wait a minute and try again.",
        retry_after=60,
    )


def verify_rate_check(*, ip_hash: str) -> None:
    """Count one /verify upload of this address; 429 over VERIFY_PER_MINUTE_PER_IP (each costs
    a decode, a manifest read and watermark reads: ~0.1 s of CPU)."""
    if ip_hash:
        limit = rate_limits.Limit(f"verifications:ip:{ip_hash}", settings.VERIFY_PER_MINUTE_PER_IP)
        check_rate_limits([limit], now=timezone.now())


def battle_size(k) -> int:
    """The number of samples a battle request asks for (``?k=``): ARENA_KWISE_K when empty,
    else an integer from 2 to ARENA_KWISE_MAX_K; ArenaRefusal 400 otherwise."""
    if k in (None, ""):
        return settings.ARENA_KWISE_K
    top = settings.ARENA_KWISE_MAX_K
    try:
        value = int(k)
    except (TypeError, ValueError):
        value = 0
    if not 2 <= value <= top:
        raise ArenaRefusal(
            400, "bad_k", f"k={k!r}: a battle shows 2 to {top} samples; use k=2 ... k={top}."
        )
    return value


def battle_create(
    *,
    task: str,
    rater: Rater,
    ip_hash: str,
    rng: np.random.Generator | None = None,
    k: int | None = None,
) -> Battle:
    """Serve a new anonymous battle of `task` to `rater`, its samples chosen by active sampling:
    a pair (choose_battle) when `k` (default ARENA_KWISE_K) is 2, else K samples of one prompt
    from K different models (choose_kwise_battle; fewer, at least 2, when no prompt has K).

    Raises ArenaRefusal: 404 for an unknown task, 400 for a bad k, 429 past the per-rater /
    per-IP battle rate, 503 (``no_battle``) when fewer than two eligible models share a prompt.
    """
    if not selectors.is_valid_task(task):
        raise ArenaRefusal(404, "unknown_task", f"Unknown task {task!r}.")
    k = battle_size(k)
    now = timezone.now()
    check_rate_limits(
        rate_limits_for(action="battles", rater_id=rater.pk, ip_hash=ip_hash), now=now
    )
    pool, prompts = _unseen_pool(task=task, rater=rater, ip_hash=ip_hash)
    state = selectors.sampler_state(task=task)
    rng = rng or np.random.default_rng()
    if k > 2:
        return _kwise_battle_create(
            task=task,
            rater=rater,
            ip_hash=ip_hash,
            rng=rng,
            k=k,
            now=now,
            state=state,
            pool=pool,
            prompts=prompts,
        )
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
        prompt=prompts[choice.prompt],
        sample_a_id=sample_a,
        sample_b_id=sample_b,
        served_to=rater,
        served_at=now,
        expires_at=now + timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS),
        ip_hash=ip_hash,
    )


NO_BATTLE_MESSAGE = (
    "No battle is available yet for this task: it needs samples of at least two "
    "approved models for the same prompt."
)
POOL_EXHAUSTED_MESSAGE = (
    "You have seen who made every sample this arena can show you now, so none of them would be "
    "anonymous to you. Fresh samples are being generated; please come back later."
)


def _unseen_pool(*, task: str, rater: Rater, ip_hash: str) -> tuple[dict, dict]:
    """The arena pool without the samples whose model this rater has seen (arena.anonymity).
    When that leaves no battle but the arena has one, refuse with 503 ``pool_exhausted`` and
    queue fresh battle samples for the versions the rater has used up."""
    pool, prompts = selectors.arena_pool(task=task)
    seen = anonymity.seen_sample_ids(rater_id=rater.pk, ip_hash=ip_hash)
    if not seen:
        return pool, prompts
    unseen = anonymity.unseen_pool_for(pool, seen)
    if pool and not unseen:
        anonymity.request_pool_refill(version_ids=anonymity.exhausted_versions(pool, seen))
        raise ArenaRefusal(503, "pool_exhausted", POOL_EXHAUSTED_MESSAGE)
    return unseen, prompts


def _kwise_battle_create(
    *,
    task: str,
    rater: Rater,
    ip_hash: str,
    rng,
    k: int,
    now: datetime,
    state,
    pool: dict,
    prompts: dict,
) -> Battle:
    config = KwiseSamplingConfig(
        k=k,
        floor=settings.ARENA_SAMPLING_FLOOR,
        new_model_boost=settings.ARENA_NEW_MODEL_BOOST,
        provisional_votes=settings.ARENA_PROVISIONAL_VOTES,
    )
    try:
        choice = choose_kwise_battle(
            prompts={p: list(models) for p, models in pool.items()},
            states=state.states,
            rng=rng,
            config=config,
            covariance=state.covariance,
            covariance_order=state.order,
        )
    except NoBattleAvailable as exc:
        raise ArenaRefusal(503, "no_battle", NO_BATTLE_MESSAGE) from exc
    samples = pool[choice.prompt]
    chosen = [samples[m][int(rng.integers(len(samples[m])))] for m in choice.models]
    with transaction.atomic():
        battle = Battle.objects.create(
            task=task,
            prompt=prompts[choice.prompt],
            sample_a_id=chosen[0],
            sample_b_id=chosen[1],
            size=len(chosen),
            served_to=rater,
            served_at=now,
            expires_at=now + timedelta(seconds=settings.ARENA_BATTLE_TTL_SECONDS),
            ip_hash=ip_hash,
        )
        BattleSample.objects.bulk_create(
            BattleSample(battle=battle, position=position, sample_id=sample_id)
            for position, sample_id in enumerate(chosen[2:], start=2)
        )
    return battle


# --- votes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevealedModel:
    slug: str
    display_name: str


@dataclass(frozen=True)
class CastVote:
    """A stored vote as the rater sees it after voting (the reveal).

    lineup: the battle's models in display order (A, B, C, ...); ranking: for a K-wise vote,
    its models best first (top1: the winner, then the others in display order)."""

    id: int
    task: str
    category: str
    outcome: str
    model_a: RevealedModel
    model_b: RevealedModel
    kind: str = VoteKind.PAIR
    lineup: tuple[RevealedModel, ...] = ()
    ranking: tuple[RevealedModel, ...] = ()
    token: str = ""  # the battle's: the reveal links each sample's page through it

    def get_outcome_display(self) -> str:
        if self.kind == VoteKind.PAIR:
            return Outcome(self.outcome).label
        sides = {model: SIDES[k] for k, model in enumerate(self.lineup)}
        if self.kind == VoteKind.TOP1:
            return f"{sides[self.ranking[0]]} is the best"
        return " > ".join(sides[model] for model in self.ranking)


@memoize
def _vote_insert_sql(vendor: str, n_limits: int) -> str:
    """One INSERT .. SELECT that writes the vote only if the battle's rules hold: the token, the
    rater it was served to, not expired, looked at long enough, as many samples as the vote
    ranks (2 for an outcome, K for a K-wise ranking); the unique battle_id makes a
    second vote a no-op (ON CONFLICT). It returns what the reveal shows.

    On PostgreSQL the statement also counts the vote against its `n_limits` rate limits (the
    rate_limits upsert as a CTE) and inserts only if none is exceeded, and brings back the
    model names: one round trip, always one row (refused limit key, vote columns or NULLs).
    SQLite has no data-modifying CTE, so there the counting and the names are statements of
    their own.
    """
    vote, battle = Vote._meta.db_table, Battle._meta.db_table
    prompt, sample = Prompt._meta.db_table, Sample._meta.db_table
    version, models = ModelVersion._meta.db_table, GenerativeModel._meta.db_table
    postgres = vendor == "postgresql"
    ranking = "CAST(%(ranking)s AS jsonb)" if postgres else "%(ranking)s"
    insert = (
        f"INSERT INTO {vote} (battle_id, rater_id, rater_kind, outcome, task, category,"
        " model_a_id, model_b_id, ip_hash, created_at, kind, ranking)"
        " SELECT b.id, %(rater)s, %(kind)s, %(outcome)s, b.task, p.category,"
        f" va.model_id, vb.model_id, %(ip_hash)s, %(now)s, %(vote_kind)s, {ranking}"
        f" FROM {battle} b JOIN {prompt} p ON p.id = b.prompt_id"
        f" JOIN {sample} sa ON sa.id = b.sample_a_id JOIN {version} va ON va.id = sa.version_id"
        f" JOIN {sample} sb ON sb.id = b.sample_b_id JOIN {version} vb ON vb.id = sb.version_id"
        " WHERE b.token = %(token)s AND b.served_to_id = %(rater)s"
        " AND b.expires_at > %(now)s AND b.served_at <= %(viewed_since)s"
        " AND b.size = %(size)s"
        + (" AND NOT EXISTS (SELECT 1 FROM refused)" if postgres and n_limits else "")
        + " ON CONFLICT (battle_id) DO NOTHING"
        " RETURNING id, task, category, model_a_id, model_b_id"
    )
    if not postgres:
        return insert
    ctes, refused = [], "NULL"
    if n_limits:
        ctes = [
            f"counted AS ({rate_limits.count_sql(n_limits, named=True)})",
            f"refused AS ({rate_limits.exceeded_sql(n_limits)})",
        ]
        refused = "(SELECT key FROM refused)"
    return (
        f"WITH {', '.join([*ctes, f'cast_vote AS ({insert})'])}"
        f" SELECT {refused}, v.id, v.task, v.category,"
        " a.slug, a.display_name, b.slug, b.display_name"
        " FROM (SELECT 1) AS one LEFT JOIN cast_vote v ON TRUE"
        f" LEFT JOIN {models} a ON a.id = v.model_a_id"
        f" LEFT JOIN {models} b ON b.id = v.model_b_id"
    )


def _insert_vote(params: dict, limits: list[rate_limits.Limit], now: datetime) -> tuple | None:
    """Count the vote against `limits` and run the conditional INSERT; raise 429 past a limit.

    Returns (id, task, category, slug_a, name_a, slug_b, name_b), or None when the battle's
    rules refused it. On PostgreSQL it is one statement, bound server-side and prepared per
    connection: planning its joins costs more than running them.
    """
    if connection.vendor == "postgresql":
        import psycopg

        params = params | rate_limits.exceeded_params(limits, now=now.timestamp())
        connection.ensure_connection()
        # A server-side binding cursor (psycopg prepares it after DATABASE_PREPARE_THRESHOLD
        # runs), wrapped like Django's own: database errors, query logging, execute wrappers.
        raw = psycopg.Cursor(connection.connection)
        wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
        with wrap(raw) as cursor:
            cursor.execute(_vote_insert_sql(connection.vendor, len(limits)), params)
            refused_key, *row = cursor.fetchone()
        if refused_key is not None:
            raise rate_refusal(next(limit for limit in limits if limit.key == refused_key))
        return None if row[0] is None else tuple(row)
    check_rate_limits(limits, now=now)
    models = GenerativeModel._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(_vote_insert_sql(connection.vendor, 0), params)
        row = cursor.fetchone()
        if row is None:
            return None
        vote_id, task, category, model_a_id, model_b_id = row
        cursor.execute(
            f"SELECT a.slug, a.display_name, b.slug, b.display_name FROM {models} a, {models} b"
            " WHERE a.id = %s AND b.id = %s",
            [model_a_id, model_b_id],
        )
        return (vote_id, task, category, *cursor.fetchone())


def _parse_sides(value: str, field: str) -> list[int]:
    """Display positions from side letters (``"C,A,D,B"``, ``"CADB"`` or ``"c a d b"``)."""
    letters = [c for c in value.upper() if c not in " ,;>"]
    if not letters or any(c not in SIDES for c in letters) or len(set(letters)) != len(letters):
        raise ArenaRefusal(
            400,
            f"bad_{field}",
            f"{field}={value!r}: give sample letters (A, B, C, ...) each at most once, "
            "best first, e.g. C,A,D,B.",
        )
    return [SIDES.index(c) for c in letters]


@dataclass(frozen=True)
class _KwiseVote:
    outcome: str  # the A-versus-B projection
    ranking: list[int]  # model ids best first
    size: int
    lineup: tuple[RevealedModel, ...]
    ranked: tuple[RevealedModel, ...]


def _kwise_vote(
    *, token: str, rater_id: int | None, ranking: str | None, best: str | None
) -> _KwiseVote | None:
    """Map a ranking (all K letters, best first) or a best-of-K pick to model ids, through the
    battle's lineup. None when the battle is unknown or not this rater's: the conditional
    INSERT then writes nothing and the refusal says why, after the rate limits counted it."""
    if ranking is not None and best is not None:
        raise ArenaRefusal(400, "bad_vote", "Send either a ranking or the best sample, not both.")
    field = "ranking" if ranking is not None else "best"
    positions = _parse_sides(ranking if ranking is not None else best, field)
    lineup = selectors.battle_lineup(token=token)
    if lineup is None or rater_id is None or lineup.served_to_id != rater_id:
        return None
    size = len(lineup.models)
    letters = ", ".join(SIDES[:size])
    if size == 2:
        raise ArenaRefusal(
            400, "pairwise_battle", "This battle shows two samples: send an outcome instead."
        )
    if ranking is not None and sorted(positions) != list(range(size)):
        raise ArenaRefusal(
            400,
            "bad_ranking",
            f"Rank all {size} samples ({letters}), each once, best first.",
        )
    if best is not None and (len(positions) != 1 or positions[0] >= size):
        raise ArenaRefusal(400, "bad_best", f"Pick one best sample among {letters}.")
    order = positions + [p for p in range(size) if p not in positions]
    if ranking is not None:
        outcome = Outcome.MODEL_A if order.index(0) < order.index(1) else Outcome.MODEL_B
    else:
        outcome = {0: Outcome.MODEL_A, 1: Outcome.MODEL_B}.get(order[0], Outcome.BOTH_BAD)
    shown = tuple(RevealedModel(slug, name) for _, slug, name in lineup.models)
    return _KwiseVote(
        outcome=outcome,
        ranking=[lineup.models[p][0] for p in order],
        size=size,
        lineup=shown,
        ranked=tuple(shown[p] for p in order),
    )


def vote_create(
    *,
    token: str,
    rater_id: int | None,
    outcome: str = "",
    ip_hash: str,
    now: datetime | None = None,
    ranking: str | None = None,
    best: str | None = None,
) -> CastVote:
    """Record the verdict of rater `rater_id` on the battle with `token`; the only way a human
    vote is written. A pairwise battle takes an `outcome`; a K-wise one a `ranking` (all its
    sample letters, best first: ``"C,A,D,B"``) or the `best` sample (``"C"``). On PostgreSQL
    the accepted path is one statement (after a read of the lineup for a K-wise vote): it counts
    the vote against the rate limits and inserts it only if every rule holds.

    Refusals (ArenaRefusal, no vote written): 400 bad outcome / ranking / best, or a verdict of
    the wrong kind for the battle, 429 past the per-rater or per-IP vote rate or the rater's
    daily cap (every attempt counts), 404 unknown battle, 403 battle served to someone else,
    409 already voted, 410 expired, 425 before the minimum viewing time.
    """
    kwise = None
    if ranking is not None or best is not None:
        kwise = _kwise_vote(token=token, rater_id=rater_id, ranking=ranking, best=best)
        kind = VoteKind.RANKING if ranking is not None else VoteKind.TOP1
        outcome = kwise.outcome if kwise else Outcome.MODEL_A
        size = kwise.size if kwise else 0  # 0 matches no battle: the refusal explains
    elif outcome not in Outcome.values:
        allowed = ", ".join(Outcome.values)
        raise ArenaRefusal(
            400, "bad_outcome", f"Unknown outcome {outcome!r}; use one of {allowed}."
        )
    else:
        kind, size = VoteKind.PAIR, 2
    now = now or timezone.now()
    # Without a rater the INSERT matches no battle, but the attempt still counts against the
    # address, so guessing tokens without a rater cookie is throttled too.
    adapt = connection.ops.adapt_datetimefield_value
    row = _insert_vote(
        {
            "token": token,
            "rater": rater_id,
            "kind": RaterKind.HUMAN.value,
            "outcome": outcome,
            "ip_hash": ip_hash,
            "now": adapt(now),
            "viewed_since": adapt(now - timedelta(seconds=settings.ARENA_MIN_VIEW_SECONDS)),
            "vote_kind": str(kind),
            "ranking": json.dumps(kwise.ranking) if kwise else None,
            "size": size,
        },
        rate_limits_for(action="votes", rater_id=rater_id, ip_hash=ip_hash),
        now,
    )
    if row is None:
        _explain_refused_vote(token=token, rater_id=rater_id, now=now, size=size)
    vote_id, task, category, slug_a, name_a, slug_b, name_b = row
    # The reveal shows this rater who made the battle's samples: never serve them to them again.
    anonymity.reveals_record(battle_token=token, rater_id=rater_id, ip_hash=ip_hash)
    transaction.on_commit(lambda: request_rating_refresh(task=task))
    model_a, model_b = RevealedModel(slug_a, name_a), RevealedModel(slug_b, name_b)
    return CastVote(
        id=vote_id,
        task=task,
        category=category,
        outcome=outcome,
        model_a=model_a,
        model_b=model_b,
        kind=str(kind),
        lineup=kwise.lineup if kwise else (model_a, model_b),
        ranking=kwise.ranked if kwise else (),
        token=token,
    )


def _explain_refused_vote(
    *, token: str, rater_id: int | None, now: datetime, size: int = 2
) -> NoReturn:
    """Raise the ArenaRefusal that says why the conditional INSERT wrote nothing.

    Checked in the order a rater would want to hear it, at the same `now` as the INSERT.
    """
    battle = (
        Battle.objects.filter(token=token)
        .annotate(voted=Exists(Vote.objects.filter(battle=OuterRef("pk"))))
        .values("served_to_id", "served_at", "expires_at", "voted", "size")
        .first()
    )
    if battle is None:
        raise ArenaRefusal(404, "unknown_battle", "This battle does not exist.")
    if rater_id is None or battle["served_to_id"] != rater_id:
        raise ArenaRefusal(
            403, "not_your_battle", "This battle was shown to someone else; load your own."
        )
    if battle["voted"]:
        raise ArenaRefusal(409, "already_voted", "This battle already has your vote.")
    if battle["size"] != size:
        letters = ", ".join(SIDES[: battle["size"]])
        raise ArenaRefusal(
            400,
            "wrong_vote_kind",
            f"This battle shows {battle['size']} samples ({letters}): send a ranking of all of "
            "them, best first, or the best one."
            if battle["size"] > 2
            else "This battle shows two samples: send an outcome.",
        )
    if now >= battle["expires_at"]:
        raise ArenaRefusal(410, "expired", "This battle has expired; please vote on a new one.")
    min_view = settings.ARENA_MIN_VIEW_SECONDS
    if (now - battle["served_at"]).total_seconds() < min_view:
        raise ArenaRefusal(
            425,
            "too_early",
            f"Please look at both samples for at least {min_view:g} seconds before voting.",
        )
    raise RuntimeError(f"a vote on battle {token[:6]}... was refused by no known rule")


def request_rating_refresh(*, task: str) -> bool:
    """Enqueue a snapshot refresh for `task`, at most once per debounce window (across every
    process when the cache is shared).

    Runs on every vote, so each process asks the shared cache at most once per window: the
    process-local check is free, a Redis round trip per vote is not. Returns whether a task was
    sent. The beat refreshes anyway, so a broker that is down only delays the leaderboard: it is
    logged, and the vote (already committed) stands.
    """
    debounce = settings.ARENA_REFRESH_DEBOUNCE_SECONDS
    key = f"arena:refresh:{task}"
    if debounce <= 0 or not caches["local"].add(key, 1, timeout=debounce):
        return False
    if not cache.add(key, 1, timeout=debounce):
        return False
    from config.celery import app

    try:
        app.send_task(task_names.REFRESH_RATING_SNAPSHOTS, kwargs={"task": task}, retry=False)
    except Exception:  # broker unreachable: the beat refresh will catch up
        logger.warning(
            "could not enqueue %s for %s", task_names.REFRESH_RATING_SNAPSHOTS, task, exc_info=True
        )
        return False
    return True


def _revealed(model: RevealedModel, **extra) -> dict:
    url = reverse("arena:model", kwargs={"slug": model.slug})
    return {"slug": model.slug, "name": model.display_name, "url": url, **extra}


def battle_reveal(*, vote: CastVote) -> dict:
    """What the rater sees after voting: the models' names and pages (model_a / model_b, and
    `models` for every sample in display order; a K-wise vote adds `ranking`, best first)."""
    sides = {model: SIDES[k] for k, model in enumerate(vote.lineup)}
    # Identity is known now: each sample's page (its signed, watermarked rendition) and C2PA
    # manifest, through the battle's token so that voting reads nothing more.
    samples = [
        {
            "side": SIDES[k],
            "url": reverse("arena:battle-sample", args=[vote.token, SIDES[k]]),
            "manifest_url": reverse("arena:battle-sample-manifest", args=[vote.token, SIDES[k]]),
        }
        for k in range(len(vote.lineup) if vote.token else 0)
    ]
    out = {
        "outcome": vote.outcome,
        "kind": vote.kind,
        "summary": vote.get_outcome_display(),
        "model_a": _revealed(vote.model_a),
        "model_b": _revealed(vote.model_b),
        "models": [_revealed(model, side=sides[model]) for model in vote.lineup],
        "samples": samples,
    }
    if vote.ranking:
        out["ranking"] = [
            _revealed(model, side=sides[model], rank=k + 1) for k, model in enumerate(vote.ranking)
        ]
    return out


def battle_source_for(*, token: str, rater_id: int | None):
    """The source image file an image-edit battle's samples edit (its prompt's), only for the
    rater the battle was served to."""
    battle = selectors.edit_battle(token=token)
    if battle is None or rater_id is None or battle.served_to_id != rater_id:
        raise ArenaRefusal(404, "unknown_media", "No such media.")
    return battle.prompt.source_image


def voted_sample_for(*, token: str, side: str, rater_id: int | None) -> Sample:
    """Sample `side` (A, B, ...) of a battle this rater has voted on; before the vote (or for
    anyone else) it does not exist, so the reveal's links cannot unmask a running battle."""
    position = SIDES.find(side) if len(side) == 1 else -1
    found = selectors.voted_battle_sample(token=token, position=position) if position >= 0 else None
    if found is None or rater_id is None or found[0] != rater_id:
        raise ArenaRefusal(404, "unknown_sample", "No such sample.")
    return found[1]


def battle_media_for(*, media_token: str, rater_id: int | None) -> Sample:
    """The sample behind a per-battle media id, only for the rater the battle was served to."""
    found = selectors.battle_media_sample(media_token=media_token)
    if found is None or rater_id is None or found[0].served_to_id != rater_id:
        raise ArenaRefusal(404, "unknown_media", "No such media.")
    return found[1]
