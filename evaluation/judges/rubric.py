"""VIEScore-style rubric (Ku et al., ACL 2024): semantic consistency (SC) and perceptual quality (PQ),
each 0–10 with a short rationale; overall O = sqrt(SC · PQ) on the same 0–10 scale.

For an edit (image-edit task) the judge sees the source image, the edited image and the
instruction, and SC is VIEScore's text-guided editing score: the minimum of editing success (the
instruction is carried out) and the absence of over-editing (the rest of the source is kept)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.judges.openai_client import image_part, text_part
from evaluation.judges.verdicts import VerdictParseError, as_number, json_objects

MODE = "rubric/v1"  # bump when the prompt changes, so cached answers to the old one are not reused
EDIT_MODE = (
    "rubric-edit/v1"  # the editing rubric's prompt (cached apart from the text-to-media one)
)

RUBRIC_INSTRUCTIONS = """You are a professional digital artist. You will evaluate an AI-generated {medium} \
made for the text prompt below.

Rules:
- semantic_consistency, from 0 to 10: how well the {medium} follows the prompt (0: does not follow it \
at all, 10: follows it perfectly, every object, attribute, count and relation).
- perceptual_quality, from 0 to 10: how natural and artifact-free it looks (0: unnatural lighting, \
distance or shadows, heavy distortion, watermarks, blur, malformed subjects{temporal}; 10: looks natural, \
no artifacts).

Text prompt: "{prompt}"

Answer with one JSON object and nothing else:
{{"semantic_consistency": <0-10>, "perceptual_quality": <0-10>, "rationale": "<one or two sentences>"}}"""


EDIT_RUBRIC_INSTRUCTIONS = """You are a professional digital artist. You will evaluate how well an AI \
edited an image following an editing instruction. The first image is the source image, the second is \
the edited image.

Rules:
- editing_success, from 0 to 10: how well the edited image carries out the instruction (0: not at all, \
10: exactly as asked).
- overediting, from 0 to 10: how well the edited image keeps everything the instruction does not ask to \
change (0: the image is changed beyond the instruction or replaced, 10: only what was asked changed).
- perceptual_quality, from 0 to 10: how natural and artifact-free the edited image looks (0: heavy \
distortion, noise, blur or malformed subjects; 10: no artifacts).

Editing instruction: "{instruction}"

Answer with one JSON object and nothing else:
{{"editing_success": <0-10>, "overediting": <0-10>, "perceptual_quality": <0-10>, \
"rationale": "<one or two sentences>"}}"""


@dataclass(frozen=True)
class RubricScores:
    semantic_consistency: float
    perceptual_quality: float
    rationale: str

    @property
    def overall(self) -> float:
        """VIEScore's overall score sqrt(SC · PQ), 0–10."""
        return math.sqrt(self.semantic_consistency * self.perceptual_quality)


def build_rubric_messages(
    *, prompt: str, images: Sequence[bytes], video: bool = False
) -> list[dict]:
    """Chat messages asking for the rubric on one sample: an image, or a video's sampled frames."""
    medium = "video" if video else "image"
    temporal = ", flicker or inconsistent motion between frames" if video else ""
    parts = [text_part(RUBRIC_INSTRUCTIONS.format(medium=medium, prompt=prompt, temporal=temporal))]
    if video:
        parts.append(text_part(f"The video, as {len(images)} frames sampled evenly in time:"))
    parts.extend(image_part(data) for data in images)
    return [{"role": "user", "content": parts}]


def build_edit_rubric_messages(*, instruction: str, source: bytes, edited: bytes) -> list[dict]:
    """Chat messages asking for the editing rubric: instruction, source image, edited image."""
    return [
        {
            "role": "user",
            "content": [
                text_part(EDIT_RUBRIC_INSTRUCTIONS.format(instruction=instruction)),
                text_part("The source image:"),
                image_part(source),
                text_part("The edited image:"),
                image_part(edited),
            ],
        }
    ]


_EDIT_KEYS = ("editing_success", "editing success", "success")
_OVEREDIT_KEYS = ("overediting", "over_editing", "over-editing", "preservation")


def parse_edit_rubric(text: str) -> RubricScores:
    """Read editing success, over-editing and PQ (0–10) from the judge's answer; SC is the
    minimum of the first two (VIEScore's editing SC). Also accepts VIEScore's own
    {"score": [success, overediting], ...} with the PQ in another object or in prose, and a plain
    rubric answer (semantic_consistency, perceptual_quality). Raises VerdictParseError otherwise.
    """
    for obj in json_objects(text):
        lowered = {str(k).strip().lower(): v for k, v in obj.items()}
        success = next((as_number(lowered[k]) for k in _EDIT_KEYS if k in lowered), None)
        kept = next((as_number(lowered[k]) for k in _OVEREDIT_KEYS if k in lowered), None)
        pq = next((as_number(lowered[k]) for k in _PQ_KEYS if k in lowered), None)
        if success is not None and kept is not None and pq is not None:
            rationale = next((str(lowered[k]) for k in _RATIONALE_KEYS if k in lowered), "")
            for name, value in (("editing_success", success), ("overediting", kept)):
                if not 0.0 <= value <= 10.0:
                    raise VerdictParseError(f"{name} = {value} is outside 0–10")
            return _checked(min(success, kept), pq, rationale)
    return parse_rubric(text)


_SC_KEYS = ("semantic_consistency", "semantic consistency", "sc", "consistency", "alignment")
_PQ_KEYS = ("perceptual_quality", "perceptual quality", "pq", "quality")
_RATIONALE_KEYS = ("rationale", "reasoning", "reason", "explanation")
_LABEL_VALUE = r"\**(?:\s*\([^)]*\))?\s*\**\s*(?:score)?\s*[:=\-–]?\s*\**\s*(\d+(?:\.\d+)?)"
_SC_TEXT = re.compile(r"(?:semantic[\s_-]*consistency|\bSC\b)" + _LABEL_VALUE, re.IGNORECASE)
_PQ_TEXT = re.compile(r"(?:perceptual[\s_-]*quality|\bPQ\b)" + _LABEL_VALUE, re.IGNORECASE)


def parse_rubric(text: str) -> RubricScores:
    """Read SC and PQ (0–10) and a rationale from a JSON answer or from free text.

    Accepts {"semantic_consistency": 8, "perceptual_quality": 6, "rationale": ...}, VIEScore's own
    {"score": [8, 6], "reasoning": ...}, fenced or embedded JSON, and prose such as
    "Semantic consistency: 8/10 ... Perceptual quality (0-10): 6". Raises VerdictParseError otherwise.
    """
    for obj in json_objects(text):
        lowered = {str(k).strip().lower(): v for k, v in obj.items()}
        rationale = next((str(lowered[k]) for k in _RATIONALE_KEYS if k in lowered), "")
        sc = next((as_number(lowered[k]) for k in _SC_KEYS if k in lowered), None)
        pq = next((as_number(lowered[k]) for k in _PQ_KEYS if k in lowered), None)
        score = lowered.get("score")
        if (sc is None or pq is None) and isinstance(score, list) and len(score) == 2:
            sc, pq = as_number(score[0]), as_number(score[1])
        if sc is not None and pq is not None:
            return _checked(sc, pq, rationale)
    sc_match, pq_match = _SC_TEXT.search(text), _PQ_TEXT.search(text)
    if sc_match and pq_match:
        return _checked(float(sc_match.group(1)), float(pq_match.group(1)), text.strip()[:1000])
    raise VerdictParseError(
        f"no semantic_consistency and perceptual_quality in the answer: {text[:300]!r}"
    )


def _checked(sc: float, pq: float, rationale: str) -> RubricScores:
    for name, value in (("semantic_consistency", sc), ("perceptual_quality", pq)):
        if not 0.0 <= value <= 10.0:
            raise VerdictParseError(f"{name} = {value} is outside 0–10")
    return RubricScores(semantic_consistency=sc, perceptual_quality=pq, rationale=rationale.strip())
