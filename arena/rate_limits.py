"""Per-rater and per-address rate limits: exact counters in the database, one upsert per request.

Each key (``votes:rater:17``, ``battles:ip:<hash>``) has one RateCounter row holding its hits in
the current minute and in the previous one. A request counts itself with one
``INSERT .. ON CONFLICT DO UPDATE`` that advances the row and returns both counts; the row lock
of the upsert makes concurrent requests of one rater or address count one after another, so
the limits are exact across all web processes. The last 60 seconds are judged with the
sliding-window estimate (Cloudflare's): ``previous × share of the previous minute still inside
the last 60 s + current``.

On PostgreSQL the vote INSERT carries the same upsert as a CTE (arena.services), so a vote costs
one statement; battles, and votes on SQLite, run `first_exceeded`. Every attempt counts,
refused or not: a client guessing battle tokens is slowed down too.

A limit may count over a longer window than a minute: the daily vote cap of a rater
(``votes:rater:17:day``, ARENA_VOTES_PER_DAY_PER_RATER) is the same row and upsert with a day
window (its `window_seconds` 86400), judged by the same sliding estimate over the last 24 h.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from arena.models import RateCounter

WINDOW_SECONDS = 60
DAY_SECONDS = 86400


@dataclass(frozen=True)
class Limit:
    """At most `per_minute` hits of `key` (e.g. ``votes:rater:17``) in any `window` seconds (60
    by default; 86400 for a daily cap, whose allowance `per_minute` then is per day); 0 = no limit.
    """

    key: str
    per_minute: int
    window: int = WINDOW_SECONDS


def window_and_carry(now: float, window: int = WINDOW_SECONDS) -> tuple[int, float]:
    """The window (minute, or day) `now` (Unix seconds) falls in, and the share of the previous
    window that is still inside the `window` seconds ending at `now`."""
    index = math.floor(now / window)
    return index, 1.0 - (now / window - index)


def minute_and_carry(now: float) -> tuple[int, float]:
    """The minute `now` (Unix seconds) falls in, and the share of the previous minute that is
    still inside the 60 s ending at `now`."""
    return window_and_carry(now, WINDOW_SECONDS)


def count_sql(n_keys: int, *, named: bool = False) -> str:
    """The upsert that counts one hit on each of `n_keys` keys; RETURNING key, previous, hits.

    Parameters, per key: key, window index, window seconds (positional), or %(key_k)s /
    %(minute_k)s / %(window_k)s (named). A row from an older window moves forward (the previous
    window keeps its hits only if it is the one just before); a request whose clock lags behind
    the row counts in the row's window.
    """
    table = RateCounter._meta.db_table
    values = ", ".join(
        f"(%(key_{k})s, %(minute_{k})s, 1, 0, %(window_{k})s)" if named else "(%s, %s, 1, 0, %s)"
        for k in range(n_keys)
    )
    same = f"excluded.minute <= {table}.minute"
    return (
        f"INSERT INTO {table} (key, minute, hits, previous, window_seconds) VALUES {values}"
        " ON CONFLICT (key) DO UPDATE SET"
        f" previous = CASE WHEN {same} THEN {table}.previous"
        f" WHEN excluded.minute = {table}.minute + 1 THEN {table}.hits ELSE 0 END,"
        f" hits = CASE WHEN {same} THEN {table}.hits + 1 ELSE 1 END,"
        f" minute = CASE WHEN {same} THEN {table}.minute ELSE excluded.minute END"
        " RETURNING key, previous, hits"
    )


def over(previous: int, hits: int, carry: float, per_minute: int) -> bool:
    """Whether the sliding-window estimate of the last window exceeds its allowance."""
    return previous * carry + hits > per_minute


def exceeded_sql(n_keys: int) -> str:
    """PostgreSQL: the first key of a `counted` CTE (count_sql, named) that is over its limit,
    by the formula of `over`. Parameters, per key, %(key_k)s / %(limit_k)s / %(carry_k)s."""
    limit = " ".join(f"WHEN %(key_{k})s::varchar THEN %(limit_{k})s::int" for k in range(n_keys))
    carry = " ".join(f"WHEN %(key_{k})s::varchar THEN %(carry_{k})s::float8" for k in range(n_keys))
    return (
        "SELECT key FROM counted WHERE"
        f" previous * CASE key {carry} END + hits > CASE key {limit} END LIMIT 1"
    )


def exceeded_params(limits: Sequence[Limit], *, now: float) -> dict:
    """The named parameters of count_sql(named=True) and exceeded_sql for `limits` at `now`."""
    params: dict = {}
    for k, limit in enumerate(limits):
        index, carry = window_and_carry(now, limit.window)
        params |= {
            f"key_{k}": limit.key,
            f"limit_{k}": limit.per_minute,
            f"minute_{k}": index,
            f"carry_{k}": carry,
            f"window_{k}": limit.window,
        }
    return params


def first_exceeded(limits: Sequence[Limit], *, now: float) -> Limit | None:
    """Count one hit on every active limit at `now` (Unix seconds); the first one now over its
    allowance (this hit included), or None."""
    active = [limit for limit in limits if limit.per_minute > 0]
    if not active:
        return None
    windows = {limit.key: window_and_carry(now, limit.window) for limit in active}
    params = [p for limit in active for p in (limit.key, windows[limit.key][0], limit.window)]
    with connection.cursor() as cursor:
        cursor.execute(count_sql(len(active)), params)
        counts = {key: (previous, hits) for key, previous, hits in cursor.fetchall()}
    for limit in active:
        if over(*counts[limit.key], windows[limit.key][1], limit.per_minute):
            return limit
    return None


def prune_counters(*, now: float) -> int:
    """Delete the counters that no longer hold anything the sliding estimate reads; returns how
    many. A row last counted two or more windows before `now` would be reset to (previous 0,
    hits 1) by its next hit anyway, so removing it loses nothing; one extra window is kept for
    requests whose clock lags behind. Safe while requests count: on PostgreSQL a concurrent
    upsert of a row being deleted inserts it afresh."""
    deleted = 0
    windows = RateCounter.objects.values_list("window_seconds", flat=True).distinct()
    for window in sorted(set(windows)):
        index, _ = window_and_carry(now, window)
        deleted += RateCounter.objects.filter(window_seconds=window, minute__lt=index - 2).delete()[
            0
        ]
    return deleted
