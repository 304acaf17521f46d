"""The OpenAI-compatible judge client against a loopback test server: answers, images, retries,
timeouts, malformed answers, concurrency and the response cache."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from evaluation.judges.cache import MemoryJudgeCache
from evaluation.judges.chat_judge import ChatJudge, JudgeSample
from evaluation.judges.openai_client import (
    JudgeAPIError,
    OpenAIChatClient,
    retry_after_seconds,
    text_part,
)
from tests.unit.test_judge_support import (
    OpenAICompatibleServer,
    completion,
    request_images,
    request_text,
    solid_png,
)

RUBRIC_ANSWER = json.dumps(
    {"semantic_consistency": 8, "perceptual_quality": 6, "rationale": "A red square, clean."}
)


def client_for(server: OpenAICompatibleServer, **options) -> OpenAIChatClient:
    defaults = dict(timeout_s=5.0, max_retries=3, backoff_s=0.01, backoff_max_s=0.05)
    return OpenAIChatClient(
        base_url=server.url, model="tiny-judge", api_key="sk-test", **(defaults | options)
    )


def ask(client: OpenAIChatClient):
    return client.complete([{"role": "user", "content": [text_part("hello")]}])


def test_completion_returns_text_and_token_usage_and_sends_model_and_key():
    with OpenAICompatibleServer(
        lambda req, n: completion("hi there", prompt_tokens=13, completion_tokens=2)
    ) as server:
        with client_for(server) as client:
            response = ask(client)
    assert (response.text, response.prompt_tokens, response.completion_tokens) == (
        "hi there",
        13,
        2,
    )
    assert server.requests[0]["model"] == "tiny-judge"
    assert server.requests[0]["temperature"] == 0.0
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_image_is_sent_as_a_base64_png_data_url_that_decodes_to_the_same_png():
    png = solid_png((200, 10, 10))
    with OpenAICompatibleServer(lambda req, n: completion(RUBRIC_ANSWER)) as server:
        with client_for(server) as client:
            verdict = ChatJudge(backend=client, name="tiny-judge").rubric(
                JudgeSample(prompt="a red square", sha256="s1", images=[png])
            )
    assert request_images(server.requests[0]) == [png]
    assert verdict.ok and verdict.score == pytest.approx(math.sqrt(8 * 6))
    assert verdict.raw["semantic_consistency"] == 8 and verdict.raw["perceptual_quality"] == 6
    assert (verdict.prompt_tokens, verdict.completion_tokens) == (11, 7)


def test_429_is_retried_honouring_retry_after_until_it_succeeds():
    def respond(req, attempt):
        if attempt <= 2:
            return 429, {"Retry-After": "0.05"}, b'{"error": "rate limited"}'
        return completion("ok")

    with OpenAICompatibleServer(respond) as server:
        with client_for(server, backoff_s=5.0, backoff_max_s=5.0) as client:
            # Retry-After (0.05 s) replaces the 5 s backoff, so this returns promptly.
            assert ask(client).text == "ok"
    assert server.attempts == 3


def test_500_is_retried_and_gives_up_after_max_retries_with_a_clear_error():
    def flaky(req, attempt):
        return (500, {}, b"boom") if attempt == 1 else completion("fine")

    with OpenAICompatibleServer(flaky) as server:
        with client_for(server) as client:
            assert ask(client).text == "fine"
    assert server.attempts == 2

    with OpenAICompatibleServer(lambda req, n: (503, {}, b"overloaded")) as server:
        with client_for(server, max_retries=2) as client:
            with pytest.raises(JudgeAPIError, match="after 3 attempts.*503") as info:
                ask(client)
    assert server.attempts == 3 and info.value.attempts == 3 and info.value.status == 503


def test_a_timeout_is_retried():
    def respond(req, attempt):
        if attempt == 1:
            import time

            time.sleep(1.0)  # longer than the client's 0.2 s timeout
        return completion("after timeout")

    with OpenAICompatibleServer(respond) as server:
        with client_for(server, timeout_s=0.2) as client:
            assert ask(client).text == "after timeout"
    assert server.attempts == 2


def test_timeouts_on_every_attempt_become_a_failed_verdict_not_a_crash():
    def never(req, attempt):
        import time

        time.sleep(0.6)
        return completion(RUBRIC_ANSWER)

    with OpenAICompatibleServer(never) as server:
        with client_for(server, timeout_s=0.1, max_retries=1) as client:
            verdict = ChatJudge(backend=client, name="j").rubric(
                JudgeSample(prompt="p", sha256="s", images=[solid_png((1, 2, 3))])
            )
    assert verdict.status == "failed" and verdict.score is None
    assert "Timeout" in verdict.error and "2 attempts" in verdict.error


def test_client_errors_other_than_429_are_not_retried():
    with OpenAICompatibleServer(lambda req, n: (400, {}, b'{"error": "bad image"}')) as server:
        with client_for(server) as client:
            with pytest.raises(JudgeAPIError, match="400.*bad image"):
                ask(client)
    assert server.attempts == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ((200, {}, b"<html>gateway</html>"), "malformed chat-completions answer"),
        ((200, {}, b'{"choices": []}'), "malformed chat-completions answer"),
        (completion("I think it is quite nice."), "no semantic_consistency"),
        (completion('{"semantic_consistency": 14, "perceptual_quality": 3}'), "outside 0–10"),
    ],
)
def test_malformed_answers_are_recorded_as_failed_verdicts(reply, expected):
    with OpenAICompatibleServer(lambda req, n: reply) as server:
        with client_for(server) as client:
            cache = MemoryJudgeCache()
            verdict = ChatJudge(backend=client, name="j", cache=cache).rubric(
                JudgeSample(prompt="p", sha256="s", images=[solid_png((1, 2, 3))])
            )
    assert verdict.status == "failed" and expected in verdict.error
    assert server.attempts == 1  # a malformed 200 is an answer, not a transient failure
    assert len(cache) == 0  # failures are not cached: the next run asks again


def test_cache_makes_the_second_run_cost_zero_http_calls():
    samples = [
        JudgeSample(prompt=f"prompt {i}", sha256=f"sha{i}", images=[solid_png((i * 40, 0, 0))])
        for i in range(3)
    ]
    cache = MemoryJudgeCache()
    with OpenAICompatibleServer(lambda req, n: completion(RUBRIC_ANSWER)) as server:
        with client_for(server) as client:
            judge = ChatJudge(backend=client, name="tiny-judge", cache=cache)
            first = list(judge.map(judge.rubric, samples))
            assert server.attempts == 3
            second = list(judge.map(judge.rubric, samples))
            assert server.attempts == 3  # nothing new was sent
            other = ChatJudge(backend=client, name="another-judge", cache=cache)
            other.rubric(samples[0])
            assert server.attempts == 4  # the judge's name is part of the key
    assert [v.score for v in first] == [v.score for v in second]
    assert not any(v.cached for v in first) and all(v.cached for v in second)


def test_concurrency_limit_bounds_requests_in_flight():
    with OpenAICompatibleServer(lambda req, n: completion(RUBRIC_ANSWER), delay_s=0.2) as server:
        with client_for(server, max_concurrency=2) as client:
            judge = ChatJudge(backend=client, name="j")
            samples = [
                JudgeSample(prompt="p", sha256=str(i), images=[solid_png((i, 0, 0))])
                for i in range(6)
            ]
            verdicts = list(judge.map(judge.rubric, samples))
    assert all(v.ok for v in verdicts) and server.attempts == 6
    assert server.max_in_flight == 2


def test_vqascore_over_the_api_reads_first_token_logprobs():
    top = {
        "Yes": math.log(0.6),
        " yes": math.log(0.1),
        "No": math.log(0.2),
        "Maybe": math.log(0.05),
    }
    with OpenAICompatibleServer(lambda req, n: completion("Yes", top_logprobs=top)) as server:
        with client_for(server) as client:
            verdict = ChatJudge(backend=client, name="j").vqascore(
                JudgeSample(prompt="a red square", sha256="s", images=[solid_png((255, 0, 0))])
            )
    request = server.requests[0]
    assert (
        request["logprobs"] is True and request["top_logprobs"] == 20 and request["max_tokens"] == 1
    )
    assert request_text(request) == 'Does this figure show "a red square"? Please answer yes or no.'
    assert verdict.ok and verdict.score == pytest.approx(0.7 / 0.9)


def test_vqascore_over_an_api_without_logprobs_fails_with_a_hint():
    with OpenAICompatibleServer(lambda req, n: completion("Yes")) as server:
        with client_for(server) as client:
            verdict = ChatJudge(backend=client, name="j").vqascore(
                JudgeSample(prompt="p", sha256="s", images=[solid_png((255, 0, 0))])
            )
    assert verdict.status == "failed" and "log-probabilities" in verdict.error


def test_retry_after_accepts_seconds_and_http_dates():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert (
        retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now)
        == 30.0
    )
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
