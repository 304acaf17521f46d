"""OpenAI-compatible chat-completions client (vLLM, SGLang, Ollama, llama.cpp server, hosted APIs).

One `OpenAIChatClient` per judge: POST {base_url}/chat/completions over httpx, with a per-request
timeout, retries with exponential backoff on 429 / 5xx / timeouts / dropped connections (honouring
`Retry-After`), a limit on requests in flight, and token usage read from every answer.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from evaluation.judges.media import data_url

T = TypeVar("T")
R = TypeVar("R")

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class JudgeAPIError(RuntimeError):
    """The judge API gave no usable answer (after retries, or a non-retryable error)."""

    def __init__(self, message: str, *, attempts: int, status: int | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.status = status


@dataclass(frozen=True)
class ChatResponse:
    """One completion: its text, token usage, and the first token's top log-probabilities."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # {token: logprob} of the first generated token's top alternatives, when requested.
    top_logprobs: dict[str, float] | None = None
    raw: dict = field(default_factory=dict)


def image_part(data: bytes) -> dict:
    """A chat content part carrying encoded image bytes as a base64 data URL."""
    return {"type": "image_url", "image_url": {"url": data_url(data)}}


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class OpenAIChatClient:
    """A thread-safe chat-completions client with retries, backoff and a concurrency limit.

    `timeout_s` bounds each HTTP attempt; a request makes at most `1 + max_retries` attempts;
    the wait before retry k (0-based) is `min(backoff_max_s, backoff_s * 2**k)` with jitter, or the
    server's `Retry-After` when it sends one (capped by `backoff_max_s`).
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_concurrency: int = 4,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> None:
        if not base_url:
            raise ValueError("base_url is empty")
        if not model:
            raise ValueError("model is empty")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_concurrency = max_concurrency
        self.max_tokens = max_tokens
        self.temperature = temperature
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            headers=headers,
            limits=httpx.Limits(max_connections=max_concurrency),
        )
        self._in_flight = threading.BoundedSemaphore(max_concurrency)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenAIChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def complete(
        self,
        messages: Sequence[dict],
        *,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
    ) -> ChatResponse:
        """Send one chat-completions request (retrying as configured) and return its answer."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": self.temperature,
            "max_tokens": max_tokens or self.max_tokens,
        }
        if top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = top_logprobs
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                with self._in_flight:
                    response = self._http.post(self.url, json=body)
            except httpx.TransportError as exc:  # timeouts, refused or dropped connections
                problem = f"{type(exc).__name__}: {exc}"
                status = None
            else:
                if response.status_code == 200:
                    return _parse_completion(response, attempts=attempt)
                status = response.status_code
                problem = f"HTTP {status}: {response.text[:300]}"
                if status not in RETRYABLE_STATUS:
                    raise JudgeAPIError(
                        f"judge API refused the request ({problem})",
                        attempts=attempt,
                        status=status,
                    )
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt > self.max_retries:
                raise JudgeAPIError(
                    f"judge API failed after {attempt} attempts (last: {problem})",
                    attempts=attempt,
                    status=status,
                )
            time.sleep(self._delay(attempt - 1, retry_after))

    def _delay(self, retry_index: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.backoff_max_s, retry_after)
        ceiling = min(self.backoff_max_s, self.backoff_s * 2**retry_index)
        # "Equal jitter": at least half the backoff, so waits still grow, but clients desynchronise.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterable[R]:
        """Apply `fn` to `items` on `max_concurrency` threads; yields results in input order."""
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            yield from pool.map(fn, items)


def _parse_completion(response: httpx.Response, *, attempts: int) -> ChatResponse:
    try:
        body = response.json()
        choice = body["choices"][0]
        content = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise JudgeAPIError(
            f"malformed chat-completions answer ({type(exc).__name__}: {exc}): "
            f"{response.text[:300]!r}",
            attempts=attempts,
            status=response.status_code,
        ) from exc
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise JudgeAPIError(
            f"malformed chat-completions answer: content is {type(content).__name__}",
            attempts=attempts,
            status=response.status_code,
        )
    usage = body.get("usage") or {}
    top: dict[str, float] | None = None
    logprobs = choice.get("logprobs") or {}
    tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    if tokens:
        top = {
            entry["token"]: float(entry["logprob"])
            for entry in tokens[0].get("top_logprobs") or []
            if "token" in entry and "logprob" in entry
        }
    return ChatResponse(
        text=content,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        top_logprobs=top,
        raw=body,
    )
