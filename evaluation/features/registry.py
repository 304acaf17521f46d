"""Backbone registry: which network a metric uses, where its weights come from, how it loads.

A new backbone is one `BackboneSpec` entry: a key, the setting naming its weights file, the
published sha256 (or a function of the model name) and a loader returning an object with
`name`, `weights_sha256`, `custom`, `dim` and `encode_images` / `encode_texts` /
`encode_videos`. Weights are always local files; nothing is downloaded and nothing falls back to
random initialisation.

One backbone is the platform's own model rather than a published one: the synthetic domain's
checker ("checker", prompt_agreement), a small classifier fitted on renders. It is `self_trained`:
its weights file is fitted and saved at the configured path when missing (seconds on a CPU), its
sha256 is whatever that file's is, and it is never "custom".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.features.weights import WeightsUnavailable, verify_weights


@dataclass(frozen=True)
class BackboneSpec:
    key: str
    what: str  # human name used in messages
    modality: str  # "image", "image-text" or "video"
    weights_setting: str
    custom_setting: str
    published_sha256: Callable[[str | None], str | None]
    load: Callable[..., Any]  # (path, *, model_name, name, weights_sha256, custom, device)
    display_name: Callable[[str | None], str]
    # Fitted here (loader trains and saves the file when missing); no published hash to check.
    self_trained: bool = False
    # How media reach the network (recorded in every metric result's reproducibility manifest).
    resize_mode: str = ""


def _load_inception(path, *, model_name, name, weights_sha256, custom, device):
    from evaluation.features.inception import InceptionBackbone

    return InceptionBackbone(
        path, name=name, weights_sha256=weights_sha256, custom=custom, device=device
    )


def _load_clip(path, *, model_name, name, weights_sha256, custom, device):
    from evaluation.features.clip import CLIPBackbone

    return CLIPBackbone(
        path,
        model_name=model_name,
        name=name,
        weights_sha256=weights_sha256,
        custom=custom,
        device=device,
    )


def _load_i3d(path, *, model_name, name, weights_sha256, custom, device):
    from evaluation.features.i3d import I3DBackbone

    return I3DBackbone(path, name=name, weights_sha256=weights_sha256, custom=custom, device=device)


def _load_checker(path, *, model_name, name, weights_sha256, custom, device):
    from evaluation.features.weights import sha256_file
    from evaluation.metrics.prompt_agreement import CheckerBackbone
    from models_registry.generators.quality import load_or_train_classifier

    model = load_or_train_classifier(path)  # trains and saves it when missing or stale
    return CheckerBackbone(model, name=name, weights_sha256=sha256_file(path))


def _inception_sha(_model: str | None) -> str:
    from evaluation.features.inception import PUBLISHED_SHA256

    return PUBLISHED_SHA256


def _i3d_sha(_model: str | None) -> str:
    from evaluation.features.i3d import PUBLISHED_SHA256

    return PUBLISHED_SHA256


def _clip_sha(model: str | None) -> str | None:
    from evaluation.features.clip import published_sha256

    return published_sha256(model)


BACKBONES: dict[str, BackboneSpec] = {
    "inception": BackboneSpec(
        key="inception",
        what="InceptionV3 (FID)",
        modality="image",
        weights_setting="INCEPTION_WEIGHTS_PATH",
        custom_setting="INCEPTION_WEIGHTS_CUSTOM",
        published_sha256=_inception_sha,
        load=_load_inception,
        display_name=lambda _m: "inception-v3-tf-pool3",
        resize_mode="PIL bicubic to 299x299 (clean resize), uint8 -> float32",
    ),
    "clip": BackboneSpec(
        key="clip",
        what="CLIP",
        modality="image-text",
        weights_setting="CLIP_WEIGHTS_PATH",
        custom_setting="CLIP_WEIGHTS_CUSTOM",
        published_sha256=_clip_sha,
        load=_load_clip,
        display_name=lambda m: f"clip:{m}",
        resize_mode="open_clip preprocess: bicubic short side to input size, center crop",
    ),
    "i3d": BackboneSpec(
        key="i3d",
        what="I3D (FVD)",
        modality="video",
        weights_setting="I3D_WEIGHTS_PATH",
        custom_setting="I3D_WEIGHTS_CUSTOM",
        published_sha256=_i3d_sha,
        load=_load_i3d,
        display_name=lambda _m: "i3d-kinetics400-styleganv",
        resize_mode="first 16 frames, PIL bicubic to 224x224, scaled to [-1, 1]",
    ),
    "checker": BackboneSpec(
        key="checker",
        what="the synthetic prompt checker",
        modality="checker",
        weights_setting="PROMPT_CHECKER_WEIGHTS_PATH",
        custom_setting="",
        published_sha256=lambda _m: None,
        load=_load_checker,
        display_name=lambda _m: "synthetic-checker",
        resize_mode="native resolution (the checker reads the generated pixels)",
        self_trained=True,
    ),
}


def backbone_name(key: str, model_name: str | None = None) -> str:
    """The name recorded with results, e.g. "inception-v3-tf-pool3" or "clip:ViT-B-32"."""
    return BACKBONES[key].display_name(model_name)


def load_backbone(
    key: str,
    *,
    weights_path: Path | None,
    model_name: str | None = None,
    allow_custom: bool = False,
    device: str = "cpu",
):
    """Load backbone `key` from a local file after checking its sha256.

    Raises WeightsUnavailable (no file; message names the setting) or WeightsRejected (hash not
    the published one and not `allow_custom`, or a file of the wrong layout). A `self_trained`
    backbone needs only a configured path: its file is fitted there when missing.
    """
    if key not in BACKBONES:
        raise KeyError(f"unknown backbone {key!r}; known: {', '.join(BACKBONES)}")
    spec = BACKBONES[key]
    if spec.self_trained:
        if weights_path is None or str(weights_path) == "":
            raise WeightsUnavailable(
                f"{spec.what} has no weights path: set {spec.weights_setting} to a local file "
                "(it is fitted and saved there when missing)",
                setting=spec.weights_setting,
            )
        return spec.load(
            Path(weights_path),
            model_name=model_name,
            name=backbone_name(key, model_name),
            weights_sha256=None,
            custom=False,
            device=device,
        )
    published = spec.published_sha256(model_name)
    sha = verify_weights(
        path=weights_path,
        setting=spec.weights_setting,
        what=spec.what,
        published_sha256=published,
        allow_custom=allow_custom,
        custom_hint=f"{spec.custom_setting}=1, WEIGHTS_ALLOW_CUSTOM=1 or --allow-custom",
    )
    return spec.load(
        Path(weights_path),
        model_name=model_name,
        name=backbone_name(key, model_name),
        weights_sha256=sha,
        custom=sha != published,
        device=device,
    )
