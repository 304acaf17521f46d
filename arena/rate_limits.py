"""Per-rater and per-address rate limits: counters in the cache, one round trip per request.

Each limit counts hits in fixed one-minute windows and judges the last 60 seconds with the
sliding-window estimate (Cloudflare's): ``previous window × share of it still inside the last
minute + current window``. Counters live in the shared cache (Redis, ``CACHE_URL``), where one
script (GET / INCR / EXPIRE) serves every limit of a request and INCR is atomic, so limits are
exact across all web processes. Without a shared cache they fall back to Django's cache API (per
process: exact for the single-process embedded default).

Every attempt counts, refused or not: a client guessing battle tokens is slowed down too.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Limit:
    """At most `per_minute` hits of `key` (e.g. ``vote:rater:17``) in any 60 s; 0 = no limit."""

    key: str
    per_minute: int


# One round trip for every limit of a request: (previous, current) window counts per key pair.
COUNT_SCRIPT = """
local counts = {}
for i = 1, #KEYS, 2 do
  counts[#counts + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
  local current = redis.call('INCR', KEYS[i + 1])
  if current == 1 then redis.call('EXPIRE', KEYS[i + 1], ARGV[1]) end
  counts[#counts + 1] = current
end
return counts
"""
_scripts: dict[str, object] = {}
_scripts_lock = threading.Lock()


def _redis_script(location: str):
    """The counting script on one client per process; created under a lock because a second,
    discarded client would close the pool's connections while a thread still uses them."""
    with _scripts_lock:
        if location not in _scripts:
            import redis

            _scripts[location] = redis.Redis.from_url(location).register_script(COUNT_SCRIPT)
        return _scripts[location]


def _redis_location() -> str | None:
    backend = settings.CACHES["default"]
    if backend["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
        return None
    location = backend["LOCATION"]
    return location[0] if isinstance(location, list | tuple) else location


def _counts(keys: list[str], window: int) -> list[tuple[int, int]]:
    """Count one hit in this window for each key; (previous window, this window) counts."""
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    names = [(f"{prefix}:rate:{key}:{window - 1}", f"{prefix}:rate:{key}:{window}") for key in keys]
    location = _redis_location()
    if location is not None:
        flat = _redis_script(location)(
            keys=[name for pair in names for name in pair], args=[2 * WINDOW_SECONDS]
        )
        return [(int(flat[2 * k]), int(flat[2 * k + 1])) for k in range(len(keys))]
    counts = []
    for previous, current in names:
        cache.add(current, 0, 2 * WINDOW_SECONDS)
        counts.append((int(cache.get(previous) or 0), cache.incr(current)))
    return counts


def first_exceeded(limits: Sequence[Limit], *, now: float) -> Limit | None:
    """Record one hit on every active limit at `now` (Unix seconds); the first one now over its
    per-minute allowance (this hit included), or None."""
    active = [limit for limit in limits if limit.per_minute > 0]
    if not active:
        return None
    window = math.floor(now / WINDOW_SECONDS)
    elapsed = now / WINDOW_SECONDS - window  # share of this window already gone
    for limit, (previous, current) in zip(
        active, _counts([limit.key for limit in active], window), strict=True
    ):
        if previous * (1.0 - elapsed) + current > limit.per_minute:
            return limit
    return None
