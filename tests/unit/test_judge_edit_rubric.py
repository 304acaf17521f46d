"""The VLM judge's editing rubric: it sees the instruction, the source and the edit (in that
order), and its semantic consistency is VIEScore's editing score min(success, no over-editing)."""

from __future__ import annotations

import json
import math

import pytest

from evaluation.judges.chat_judge import ChatJudge, JudgeSample
from evaluation.judges.rubric import EDIT_MODE, build_edit_rubric_messages, parse_edit_rubric
from evaluation.judges.verdicts import VerdictParseError
from tests.unit.test_judge_openai_client import client_for
from tests.unit.test_judge_support import (
    OpenAICompatibleServer,
    completion,
    request_images,
    request_text,
    solid_png,
)

EDIT_ANSWER = json.dumps(
    {"editing_success": 9, "overediting": 4, "perceptual_quality": 8, "rationale": "Too much."}
)


@pytest.mark.parametrize(
    ("answer", "sc", "pq"),
    [
        (EDIT_ANSWER, 4, 8),
        (
            '```json\n{"editing_success": "3", "overediting": 10, "perceptual_quality": 7}\n```',
            3,
            7,
        ),
        # A judge that answers the plain rubric instead is still read.
        ('{"semantic_consistency": 6, "perceptual_quality": 5}', 6, 5),
    ],
)
def test_edit_answers_are_parsed_with_sc_the_minimum_of_success_and_preservation(answer, sc, pq):
    scores = parse_edit_rubric(answer)
    assert (scores.semantic_consistency, scores.perceptual_quality) == (sc, pq)
    assert scores.overall == pytest.approx(math.sqrt(sc * pq))


@pytest.mark.parametrize(
    "answer",
    [
        '{"editing_success": 11, "overediting": 4, "perceptual_quality": 8}',
        '{"editing_success": 5, "perceptual_quality": 8}',
        "The edit looks fine.",
    ],
)
def test_unreadable_or_out_of_range_edit_answers_raise(answer):
    with pytest.raises(VerdictParseError):
        parse_edit_rubric(answer)


def test_edit_messages_carry_the_instruction_then_the_source_then_the_edit():
    source, edited = solid_png((200, 0, 0)), solid_png((0, 0, 200))
    messages = build_edit_rubric_messages(
        instruction="make the red square blue", source=source, edited=edited
    )
    assert request_images({"messages": messages}) == [source, edited]
    text = request_text({"messages": messages})
    assert '"make the red square blue"' in text and "overediting" in text
    assert text.index("source image:") < text.index("edited image:")


def test_a_judge_gets_the_editing_rubric_for_an_edit_and_refuses_vqascore_on_it():
    source, edited = solid_png((200, 0, 0)), solid_png((0, 0, 200))
    sample = JudgeSample(
        prompt="make the red square blue", sha256="e1", images=[edited], source=source
    )
    with OpenAICompatibleServer(lambda req, n: completion(EDIT_ANSWER)) as server:
        with client_for(server) as client:
            judge = ChatJudge(backend=client, name="tiny-judge")
            verdict = judge.rubric(sample)
            refused = judge.judge("vqascore", sample)
    assert len(server.requests) == 1
    assert request_images(server.requests[0]) == [source, edited]
    assert verdict.ok and verdict.score == pytest.approx(math.sqrt(4 * 8))
    assert verdict.raw["semantic_consistency"] == 4 and verdict.rationale == "Too much."
    assert EDIT_MODE != "rubric/v1"
    assert refused.status == "failed" and "judge edits with the rubric" in refused.error
