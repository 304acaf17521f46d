"""Reading settings from the environment: one place, one-line errors naming the variable."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def fail(variable: str, problem: str) -> None:
    """Stop the process with a single line naming the bad variable (settings load at start)."""
    raise SystemExit(f"configuration error: {variable}: {problem}")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    fail(name, f"expected one of {sorted(TRUE_WORDS | FALSE_WORDS - {''})}, got {raw!r}")
    return default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        fail(name, f"expected an integer, got {raw!r}")
    return default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        fail(name, f"expected a number, got {raw!r}")
    return default


def env_list(name: str, default: list[str] | None) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_number_map(name: str, default: dict[str, float]) -> dict[str, float]:
    """`default` updated by a JSON object of name -> finite number >= 0 (e.g. prices)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return dict(default)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        fail(name, f"expected a JSON object, got invalid JSON: {exc}")
    if not isinstance(parsed, dict):
        fail(name, f"expected a JSON object of name -> number, got {raw!r}")
    for key, value in parsed.items():
        if not key.strip():
            fail(name, "keys must be non-empty")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            fail(name, f"{key}: expected a number >= 0, got {value!r}")
    return {**default, **{key.strip(): float(value) for key, value in parsed.items()}}


def env_path(name: str) -> Path | None:
    """An optional local file path (e.g. model weights); empty means 'not configured'."""
    raw = os.environ.get(name, "").strip()
    return Path(raw).expanduser() if raw else None


def database_from_url(name: str, default: str) -> dict:
    import dj_database_url

    raw = os.environ.get(name, "").strip() or default
    try:
        config = dj_database_url.parse(
            raw,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
            # A SELECT 1 before each request's first query: off by default (Django's default), so a
            # database restart costs each worker thread one failed request before it reconnects.
            conn_health_checks=env_bool("DATABASE_HEALTH_CHECKS", False),
        )
    except Exception as exc:  # dj_database_url raises several types for malformed URLs
        fail(name, f"malformed database URL {raw!r} ({exc})")
    engine = config.get("ENGINE", "")
    if not engine:
        fail(name, f"unsupported database URL scheme in {raw!r}; use postgres:// or sqlite://")
    if "sqlite" not in engine and not config.get("NAME"):
        fail(name, f"database URL {raw!r} names no database")
    if "postgresql" in engine:
        # Django turns server-side prepared statements off (for transaction-mode poolers); the
        # vote INSERT asks for one explicitly. DATABASE_PREPARE_THRESHOLD=off behind PgBouncer < 1.21.
        threshold = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5").strip().lower()
        if threshold in ("off", "none", ""):
            config.setdefault("OPTIONS", {})["prepare_threshold"] = None
        elif threshold.isdigit():
            config.setdefault("OPTIONS", {})["prepare_threshold"] = int(threshold)
        else:
            fail(
                "DATABASE_PREPARE_THRESHOLD", f"expected a whole number or 'off', got {threshold!r}"
            )
    return config


def cache_from_url(name: str) -> dict:
    """Django's default cache: Redis from a redis:// URL (shared by every process), else memory."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        fail(name, f"expected a redis://, rediss:// or unix:// URL, got {raw!r}")
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": raw,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "gva"),
    }
