"""Pairwise judging in both orders: consistent answers stand, position bias cancels to a tie."""

from __future__ import annotations

import itertools

import pytest

from evaluation.judges.chat_judge import ChatJudge, JudgeSample
from evaluation.judges.openai_client import OpenAIChatClient
from evaluation.judges.pairwise import Preference, combine_orders, parse_preference, swapped
from evaluation.judges.verdicts import VerdictParseError
from tests.unit.test_judge_support import (
    OpenAICompatibleServer,
    completion,
    is_red,
    request_images,
    solid_png,
)

A, B, TIE = Preference.A, Preference.B, Preference.TIE


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (A, B, A),  # a wins in both orders
        (B, A, B),  # b wins in both orders
        (TIE, TIE, TIE),
        (A, A, TIE),  # always the first position: position bias
        (B, B, TIE),  # always the second position
        (A, TIE, TIE),
        (TIE, A, TIE),
    ],
)
def test_combine_orders(first, second, expected):
    assert combine_orders(first, second) == expected


def test_a_judge_that_only_looks_at_position_never_produces_a_winner():
    for first, second in itertools.product(Preference, repeat=2):
        # A judge answering by position alone gives the same label in both orders.
        if first == second:
            assert combine_orders(first, second) == TIE
    assert swapped(A) == B and swapped(B) == A and swapped(TIE) == TIE


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"winner": "A", "rationale": "sharper"}', A),
        ('```json\n{"winner": "b"}\n```', B),
        ('{"winner": "tie"}', TIE),
        ("B", B),
        ("Answer: A", A),
        ("My verdict: [[B]]", B),
        ("[[C]]", TIE),
        ("Image A is better because the cat is red.", A),
        ('{"better": "Image B"}', B),
    ],
)
def test_parse_preference(answer, expected):
    assert parse_preference(answer) == expected


@pytest.mark.parametrize("answer", ["", "Both have merits.", "A or B, hard to say: [[A]] [[B]]"])
def test_unreadable_preferences_raise(answer):
    with pytest.raises(VerdictParseError):
        parse_preference(answer)


RED = JudgeSample(prompt="a red square", sha256="red", images=[solid_png((230, 20, 20))])
BLUE = JudgeSample(prompt="a red square", sha256="blue", images=[solid_png((20, 20, 230))])


def run_pairwise(respond, a: JudgeSample, b: JudgeSample):
    with OpenAICompatibleServer(respond) as server:
        with OpenAIChatClient(base_url=server.url, model="m", backoff_s=0.01) as client:
            verdict = ChatJudge(backend=client, name="m").pairwise(prompt="a red square", a=a, b=b)
    return verdict, server


def prefers_red(request, attempt):
    first, second = request_images(request)
    assert is_red(first) != is_red(second)
    return completion('{"winner": "%s"}' % ("A" if is_red(first) else "B"))


@pytest.mark.parametrize(("a", "b", "expected"), [(RED, BLUE, "A"), (BLUE, RED, "B")])
def test_a_judge_with_a_real_preference_wins_in_both_orders(a, b, expected):
    verdict, server = run_pairwise(prefers_red, a, b)
    assert server.attempts == 2  # asked once per order
    first, second = (request_images(r) for r in server.requests)
    assert first == [*a.images, *b.images] and second == [*b.images, *a.images]
    assert verdict.ok and verdict.outcome == expected and verdict.raw["consistent"]
    assert verdict.prompt_tokens == 22 and verdict.completion_tokens == 14


def test_a_position_biased_judge_is_cancelled_to_a_tie():
    verdict, _ = run_pairwise(lambda request, attempt: completion('{"winner": "A"}'), RED, BLUE)
    assert verdict.ok and verdict.outcome == "tie" and not verdict.raw["consistent"]


def test_a_malformed_answer_in_either_order_fails_the_pair():
    def second_is_garbage(request, attempt):
        return completion('{"winner": "A"}') if attempt == 1 else completion("no idea")

    verdict, _ = run_pairwise(second_is_garbage, RED, BLUE)
    assert verdict.status == "failed" and verdict.outcome is None
    assert "no A / B / tie" in verdict.error and verdict.raw["answers"][1] == "no idea"
