"""The judge response cache: key = sha256 of (judge, mode, prompt, sample sha256s), so a re-run costs nothing.

The interface is `JudgeCache` (get / put of a JSON-serialisable dict). `MemoryJudgeCache` serves one
process (command-line use); the database-backed cache lives with the Django services.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from typing import Protocol


class JudgeCache(Protocol):
    def get(self, key: str) -> dict | None: ...

    def put(self, key: str, *, judge: str, mode: str, response: dict) -> None: ...


def cache_key(*, judge: str, mode: str, prompt: str, sample_sha256s: Sequence[str]) -> str:
    """Hex sha256 naming one judge question; sample order matters (pairwise asks both orders)."""
    payload = json.dumps(
        {"judge": judge, "mode": mode, "prompt": prompt, "samples": list(sample_sha256s)},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class MemoryJudgeCache:
    """A thread-safe in-process cache (one command-line run)."""

    def __init__(self) -> None:
        self._entries: dict[str, dict] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        with self._lock:
            entry = self._entries.get(key)
            return json.loads(json.dumps(entry)) if entry is not None else None

    def put(self, key: str, *, judge: str, mode: str, response: dict) -> None:
        with self._lock:
            self._entries[key] = json.loads(json.dumps(response))

    def __len__(self) -> int:
        return len(self._entries)
