"""compute_metric / build_reference_set over real folders, with backbones saved to files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from evaluation.features.media import write_video
from evaluation.features.weights import sha256_file
from tests.unit.test_metrics_backbones import (
    TINY_CLIP_NAME,
    images,
    save_random_inception,
    save_tiny_clip,
    save_tiny_i3d,
)


def write_images(folder: Path, pics: np.ndarray, fmt: str = "png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, pic in enumerate(pics):
        Image.fromarray(pic).save(folder / f"{i:03d}.{fmt}")
    return folder


def run_json(*args: str) -> dict:
    from io import StringIO

    out = StringIO()
    call_command("compute_metric", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def clip_settings(settings, tmp_path):
    weights = save_tiny_clip(tmp_path / "clip")
    settings.CLIP_MODEL_NAME = TINY_CLIP_NAME
    settings.CLIP_WEIGHTS_PATH = weights
    settings.CLIP_WEIGHTS_CUSTOM = True
    settings.METRICS_DEVICE = "cpu"
    return weights


def test_fid_json_has_exactly_the_documented_keys(tmp_path, settings):
    settings.METRICS_DEVICE = "cpu"
    settings.METRICS_JACKKNIFE_GROUPS = 1  # one 2048-d Fréchet distance instead of four on CPU
    weights = save_random_inception(tmp_path / "inception.pt")
    real = write_images(tmp_path / "real", images(1, 3, 32))
    fake = write_images(tmp_path / "fake", images(2, 3, 32, shift=50), fmt="jpg")
    result = run_json(
        "fid",
        "--real",
        str(real),
        "--fake",
        str(fake),
        "--weights",
        str(weights),
        "--allow-custom",
        "--batch-size",
        "2",
    )
    assert set(result) == {"metric", "value", "lower", "upper", "n", "backbone", "weights_sha256"}
    assert result["metric"] == "fid" and result["n"] == 3 and result["value"] > 0
    assert result["weights_sha256"] == sha256_file(weights)


def test_missing_and_unpublished_weights_are_reported(tmp_path, settings, clip_settings):
    settings.INCEPTION_WEIGHTS_PATH = None
    folder = write_images(tmp_path / "a", images(1, 3, 16))
    with pytest.raises(CommandError, match="fid unavailable: .*INCEPTION_WEIGHTS_PATH"):
        call_command("compute_metric", "fid", "--real", str(folder), "--fake", str(folder))
    settings.CLIP_WEIGHTS_CUSTOM = False
    with pytest.raises(CommandError, match="no published sha256.*CLIP_WEIGHTS_CUSTOM=1"):
        call_command("compute_metric", "cmmd", "--real", str(folder), "--fake", str(folder))


def test_clip_metrics_over_folders(tmp_path, clip_settings):
    real = write_images(tmp_path / "real", images(1, 6, 32))
    fake = write_images(tmp_path / "fake", images(2, 5, 32, shift=80))
    (tmp_path / "prompts.txt").write_text("\n".join(f"a red circle number {i}" for i in range(5)))
    score = run_json("clip_score", "--fake", str(fake), "--prompts", str(tmp_path / "prompts.txt"))
    assert score["n"] == 5 and 0 <= score["value"] <= 100
    assert score["backbone"] == f"clip:{TINY_CLIP_NAME}"
    same = run_json("cmmd", "--real", str(real), "--fake", str(real))
    shifted = run_json("cmmd", "--real", str(real), "--fake", str(fake))
    assert shifted["value"] > same["value"]
    fd = run_json("fd_clip", "--real", str(real), "--fake", str(fake))
    assert fd["value"] > 0 and fd["lower"] <= fd["value"] <= fd["upper"]


def test_bad_image_inputs_give_clear_errors(tmp_path, clip_settings):
    good = write_images(tmp_path / "good", images(1, 3, 16))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CommandError, match="contains no images"):
        call_command("compute_metric", "cmmd", "--real", str(good), "--fake", str(empty))
    mixed = write_images(tmp_path / "mixed", images(1, 2, 16))
    Image.fromarray(images(2, 1, 24)[0]).save(mixed / "zzz.png")
    with pytest.raises(CommandError, match="mixed sizes: zzz.png is 24x24 but 000.png is 16x16"):
        call_command("compute_metric", "cmmd", "--real", str(good), "--fake", str(mixed))
    corrupt = write_images(tmp_path / "corrupt", images(1, 2, 16))
    (corrupt / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(CommandError, match="cannot read image .*broken.png"):
        call_command("compute_metric", "cmmd", "--real", str(good), "--fake", str(corrupt))
    with pytest.raises(CommandError, match="prompts file .* has 1 prompts for 3 files"):
        (tmp_path / "p.txt").write_text("one prompt\n")
        call_command(
            "compute_metric",
            "clip_score",
            "--fake",
            str(good),
            "--prompts",
            str(tmp_path / "p.txt"),
        )


def test_fvd_over_mp4_folders_and_too_short_videos(tmp_path, settings):
    settings.METRICS_DEVICE = "cpu"
    weights = save_tiny_i3d(tmp_path / "i3d.pt")
    rng = np.random.default_rng(0)
    real, fake, short = tmp_path / "real", tmp_path / "fake", tmp_path / "short"
    for folder in (real, fake, short):
        folder.mkdir()
    for i in range(4):
        clip = rng.integers(0, 200, (16, 32, 32, 3), dtype=np.uint8)
        write_video(real / f"{i}.mp4", clip)
        write_video(fake / f"{i}.mp4", np.clip(clip.astype(int) + 50, 0, 255).astype(np.uint8))
        write_video(short / f"{i}.mp4", clip[:8])
    result = run_json(
        "fvd", "--real", str(real), "--fake", str(fake), "--weights", str(weights), "--allow-custom"
    )
    assert result["n"] == 4 and result["value"] > 0
    with pytest.raises(CommandError, match=r"video 0.mp4 has 8 frames; fvd .* at least 16"):
        call_command(
            "compute_metric",
            "fvd",
            "--real",
            str(real),
            "--fake",
            str(short),
            "--weights",
            str(weights),
            "--allow-custom",
        )
