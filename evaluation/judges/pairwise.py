"""Pairwise judging: the judge sees one prompt and two samples and answers A, B or tie.

Every pair is asked in both orders; an answer counts only if it names the same sample both times,
otherwise (including a judge that always picks the first position) the pair is a tie.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from evaluation.judges.openai_client import image_part, text_part
from evaluation.judges.verdicts import VerdictParseError, json_objects

MODE = (
    "pairwise/v1"  # bump when the prompt changes, so cached answers to the old one are not reused
)


class Preference(StrEnum):
    A = "A"
    B = "B"
    TIE = "tie"


PAIRWISE_INSTRUCTIONS = """You are a professional digital artist judging two AI-generated {medium}s \
made for the same text prompt. Decide which one is better overall: first how faithfully it follows \
the prompt (objects, attributes, counts, relations), then its visual quality (natural look, no artifacts{temporal}).
If they are equally good or equally bad, answer tie.

Text prompt: "{prompt}"

Answer with one JSON object and nothing else:
{{"winner": "A" | "B" | "tie", "rationale": "<one or two sentences>"}}"""


def build_pairwise_messages(
    *, prompt: str, images_a: Sequence[bytes], images_b: Sequence[bytes], video: bool = False
) -> list[dict]:
    """Chat messages showing sample A then sample B (each an image or a video's frames)."""
    medium = "video" if video else "image"
    temporal = ", smooth consistent motion" if video else ""
    parts = [
        text_part(PAIRWISE_INSTRUCTIONS.format(medium=medium, prompt=prompt, temporal=temporal))
    ]
    for label, images in (("A", images_a), ("B", images_b)):
        frames = f" ({len(images)} frames sampled evenly in time)" if video else ""
        parts.append(text_part(f"{medium.capitalize()} {label}{frames}:"))
        parts.extend(image_part(data) for data in images)
    return [{"role": "user", "content": parts}]


_WORDS = {
    "a": Preference.A,
    "image a": Preference.A,
    "video a": Preference.A,
    "first": Preference.A,
    "b": Preference.B,
    "image b": Preference.B,
    "video b": Preference.B,
    "second": Preference.B,
    "tie": Preference.TIE,
    "equal": Preference.TIE,
    "same": Preference.TIE,
    "both": Preference.TIE,
    "neither": Preference.TIE,
    "none": Preference.TIE,
    "c": Preference.TIE,  # MT-Bench's "[[C]]" for a tie
}
_BRACKETS = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
_LABELLED = re.compile(
    r"\b(?:winner|answer|verdict|better|choice|preference)\b\s*(?:is)?\s*[:=]?\s*\**\s*"
    r"(?:image|video|sample)?\s*\"?\b(A|B|tie)\b",
    re.IGNORECASE,
)
_IS_BETTER = re.compile(
    r"\b(?:image|video|sample)\s+(A|B)\b\s+is\s+(?:better|superior|preferred)", re.I
)


def parse_preference(text: str) -> Preference:
    """Read A / B / tie from a JSON answer ({"winner": "B"}) or free text ("Answer: B", "[[A]]")."""
    for obj in json_objects(text):
        lowered = {str(k).strip().lower(): v for k, v in obj.items()}
        for key in ("winner", "better", "answer", "verdict", "choice", "preference"):
            value = lowered.get(key)
            if isinstance(value, str) and value.strip().lower() in _WORDS:
                return _WORDS[value.strip().lower()]
    stripped = text.strip().strip(".*\"'` ").lower()
    if stripped in _WORDS:
        return _WORDS[stripped]
    for pattern in (_BRACKETS, _LABELLED, _IS_BETTER):
        found = {_WORDS[m.lower()] for m in pattern.findall(text)}
        if len(found) == 1:
            return found.pop()
    raise VerdictParseError(f"no A / B / tie verdict in the answer: {text[:300]!r}")


def swapped(preference: Preference) -> Preference:
    """The same verdict with the positions exchanged (A <-> B)."""
    return {Preference.A: Preference.B, Preference.B: Preference.A}.get(preference, Preference.TIE)


def combine_orders(first: Preference, second: Preference) -> Preference:
    """Final verdict on (a, b) from `first` (a shown as A) and `second` (b shown as A).

    Consistent answers stand; inconsistent ones (position bias or indecision) become a tie.
    """
    return first if first == swapped(second) else Preference.TIE
