"""The demo CLIP trains on synthetic renders, is reused, and loads through the production loader."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.features.demo_clip import DEMO_CLIP_MODEL_NAME, train_demo_clip
from evaluation.features.registry import load_backbone
from evaluation.metrics.clip_score import clip_pair_scores
from models_registry.generators.synthetic import render_image_dataset


@pytest.mark.slow  # trains a small CLIP for 80 steps (~20 s on 2 cores)
def test_demo_clip_learns_captions_and_is_reused(tmp_path):
    out = tmp_path / "weights" / "demo-clip-tiny.safetensors"
    first = train_demo_clip(out, steps=80, n_images=512, batch_size=64, seed=0)
    assert first.trained and out.is_file() and first.config_path.is_file()
    mtime = out.stat().st_mtime_ns
    again = train_demo_clip(out, steps=80, seed=0)
    assert not again.trained and out.stat().st_mtime_ns == mtime

    with pytest.raises(Exception, match="CLIP_WEIGHTS_CUSTOM"):
        load_backbone("clip", weights_path=out, model_name=DEMO_CLIP_MODEL_NAME)
    clip = load_backbone(
        "clip", weights_path=out, model_name=DEMO_CLIP_MODEL_NAME, allow_custom=True
    )
    pics, captions, _ = render_image_dataset(64, seed=99, size=32)
    img, txt = clip.encode_images(pics), clip.encode_texts(captions)
    matching = clip_pair_scores(img, txt).mean()
    shuffled = clip_pair_scores(img, txt[np.roll(np.arange(64), 7)]).mean()
    assert matching > shuffled + 1.0  # CLIP-score points
