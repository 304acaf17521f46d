"""VQAScore with a local transformers VLM: a tiny random LLaVA built and saved by the test, loaded
through the same code as real weights, checked against an independent computation."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.judges.chat_judge import ChatJudge, JudgeSample
from evaluation.judges.vqascore import (
    LocalVLM,
    VLMUnavailable,
    weights_sha256,
    yes_probability_from_logits,
    yes_probability_from_top_logprobs,
)
from tests.unit.test_judge_support import build_tiny_llava, solid_png


@pytest.fixture(scope="module")
def tiny_vlm_dir(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.mktemp("vlm") / "tiny-llava")


@pytest.fixture(scope="module")
def vlm(tiny_vlm_dir):
    return LocalVLM.load(tiny_vlm_dir, device="cpu")


def independent_p_yes(directory, image: Image.Image, prompt: str) -> float:
    """P(Yes) from plain transformers calls, written without our module."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(directory, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(directory, local_files_only=True).eval()
    question = f'Does this figure show "{prompt}"? Please answer yes or no.'
    conversation = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}
    ]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True)
    inputs = processor(images=[image], text=[text], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1]
    yes = processor.tokenizer.convert_tokens_to_ids("Yes")
    no = processor.tokenizer.convert_tokens_to_ids("No")
    return torch.softmax(torch.stack([logits[yes], logits[no]]), dim=0)[0].item()


def image(color, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, color)


@pytest.mark.parametrize(
    ("color", "prompt"), [((230, 20, 20), "a red square"), ((20, 20, 230), "a blue circle")]
)
def test_vqascore_is_the_yes_no_softmax_of_the_next_token_logits(vlm, tiny_vlm_dir, color, prompt):
    answer = vlm.yes_no(image=image(color), prompt=prompt)
    assert 0.0 <= answer.probability <= 1.0
    assert answer.probability == pytest.approx(
        yes_probability_from_logits(answer.logit_yes, answer.logit_no)
    )
    assert answer.probability == pytest.approx(
        independent_p_yes(tiny_vlm_dir, image(color), prompt), abs=1e-5
    )


def test_the_score_depends_on_the_image(vlm):
    scores = {
        vlm.yes_no(image=image(c), prompt="a red square").probability
        for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]
    }
    assert len(scores) == 3


def test_a_video_scores_the_mean_over_its_frames_and_is_cached(vlm):
    from evaluation.judges.cache import MemoryJudgeCache

    frames = [solid_png(c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    cache = MemoryJudgeCache()
    judge = ChatJudge(backend=vlm, name="tiny-llava", cache=cache)
    verdict = judge.vqascore(
        JudgeSample(prompt="a red square", sha256="v", images=frames, video=True)
    )
    per_frame = [
        vlm.yes_no(image=Image.open(io.BytesIO(f)), prompt="a red square").probability
        for f in frames
    ]
    assert verdict.ok and verdict.score == pytest.approx(np.mean(per_frame))
    assert [f["p_yes"] for f in verdict.raw["frames"]] == pytest.approx(per_frame)
    again = judge.vqascore(
        JudgeSample(prompt="a red square", sha256="v", images=frames, video=True)
    )
    assert again.cached and again.score == verdict.score


def test_local_generation_answers_chat_messages_and_garbage_is_a_failed_verdict(vlm):
    judge = ChatJudge(backend=vlm, name="tiny-llava")
    verdict = judge.rubric(
        JudgeSample(prompt="a red square", sha256="s", images=[solid_png((255, 0, 0))])
    )
    # A random model answers random words: recorded as a failed verdict with its answer, no crash.
    assert verdict.status == "failed" and "semantic_consistency" in verdict.error
    assert verdict.completion_tokens > 0 and isinstance(verdict.raw["answers"][0], str)


def test_a_corrupt_image_is_a_failed_verdict(vlm):
    verdict = ChatJudge(backend=vlm, name="t").vqascore(
        JudgeSample(prompt="p", sha256="x", images=[b"not an image"])
    )
    assert verdict.status == "failed" and "cannot decode image" in verdict.error


def test_missing_or_unsafe_weights_are_refused_with_the_setting_named(tmp_path, tiny_vlm_dir):
    with pytest.raises(VLMUnavailable, match="JUDGE_LOCAL_VLM_PATH"):
        LocalVLM.load(None)
    with pytest.raises(VLMUnavailable, match="no config.json"):
        LocalVLM.load(tmp_path / "nowhere")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_vlm_dir / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(VLMUnavailable, match="safetensors"):
        LocalVLM.load(pickled)


def test_weights_hash_is_recorded_and_changes_with_the_weights(tmp_path, vlm, tiny_vlm_dir):
    assert vlm.weights_sha256 == weights_sha256(tiny_vlm_dir) and len(vlm.weights_sha256) == 64
    other = build_tiny_llava(tmp_path / "other", seed=1)
    assert weights_sha256(other) != vlm.weights_sha256


def test_top_logprobs_sum_every_spelling_of_yes_and_no():
    top = {"Yes": math.log(0.5), "ĠYes": math.log(0.1), "▁no": math.log(0.2), "No": math.log(0.1)}
    assert yes_probability_from_top_logprobs(top) == pytest.approx(0.6 / 0.9)
    with pytest.raises(ValueError, match="neither"):
        yes_probability_from_top_logprobs({"Maybe": 0.0})
