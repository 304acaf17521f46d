"""VIEScore-style rubric parsing: JSON, fenced JSON, VIEScore's own format and free text."""

from __future__ import annotations

import math

import pytest

from evaluation.judges.rubric import build_rubric_messages, parse_rubric
from evaluation.judges.verdicts import VerdictParseError
from tests.unit.test_judge_support import request_images, solid_png


@pytest.mark.parametrize(
    ("answer", "sc", "pq"),
    [
        ('{"semantic_consistency": 8, "perceptual_quality": 6, "rationale": "ok"}', 8, 6),
        ('```json\n{"semantic_consistency": "7", "perceptual_quality": 9.5}\n```', 7, 9.5),
        (
            'Sure! Here is my evaluation: {"score": [3, 4], "reasoning": "blurry"} Hope it helps.',
            3,
            4,
        ),
        ('{"SC": 10, "PQ": 0, "explanation": "perfect prompt match, broken image"}', 10, 0),
        ("Semantic consistency: 8/10. The cat is there.\nPerceptual quality (0-10): 5", 8, 5),
        ("**Semantic Consistency**: 2\n**Perceptual Quality**: 7\nThe dog is missing.", 2, 7),
        (
            '{"note": "first object is unrelated"} {"semantic_consistency": 1, "perceptual_quality": 2}',
            1,
            2,
        ),
    ],
)
def test_rubric_answers_in_many_shapes_are_parsed(answer, sc, pq):
    scores = parse_rubric(answer)
    assert (scores.semantic_consistency, scores.perceptual_quality) == (sc, pq)
    assert scores.overall == pytest.approx(math.sqrt(sc * pq))


def test_rationale_is_kept():
    scores = parse_rubric(
        '{"semantic_consistency": 8, "perceptual_quality": 6, "rationale": " Two cats. "}'
    )
    assert scores.rationale == "Two cats."


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "I cannot evaluate images.",
        '{"semantic_consistency": 8}',
        '{"semantic_consistency": 11, "perceptual_quality": 6}',
        '{"semantic_consistency": -1, "perceptual_quality": 6}',
        '{"semantic_consistency": "high", "perceptual_quality": "low"}',
        "Semantic consistency: 8",
    ],
)
def test_unreadable_or_out_of_range_answers_raise(answer):
    with pytest.raises(VerdictParseError):
        parse_rubric(answer)


def test_rubric_messages_carry_the_prompt_and_every_video_frame():
    frames = [solid_png((i * 30, 0, 0)) for i in range(4)]
    messages = build_rubric_messages(prompt="a red square", images=frames, video=True)
    assert request_images({"messages": messages}) == frames
    text = messages[0]["content"][0]["text"]
    assert '"a red square"' in text and "video" in text and "semantic_consistency" in text
