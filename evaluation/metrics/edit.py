"""Image-editing metrics: each edited image against its source image and the oracle's target.

A batch of edits reaches the suite as (edited images uint8 [B, H, W, 3], `EditPrompts`): a list
of the target captions (so the checker's `edit_accuracy` reads each edit against its target, as
prompt agreement reads a sample against its prompt) that also carries the source images, the
source captions and the oracle's edit masks (bool [B, H, W], True inside the edit region).

- `edit_accuracy`: the share of edits the synthetic checker reads as the target scene (every
  attribute of the target caption shown; after a removal, no object), with the share of each
  attribute in `details`. The untouched source scores 0: it lacks the one change asked for.
- `clip_direction`: cos(E_img(edit) − E_img(source), E_txt(target) − E_txt(source caption)), the
  directional CLIP similarity of InstructPix2Pix / StyleGAN-NADA, per edit (an edit identical to
  its source has no direction: 0).
- `preservation_l1`: mean |edit − source| / 255 over the pixels outside the edit region and the
  three channels (0: untouched outside the edit; 1: black against white everywhere).
- `preservation_clip`: 1 − cos(E_img(edit ⊙ keep), E_img(source ⊙ keep)), `keep` the pixels
  outside the edit region, the region set to black in both images (0: identical outside it).

Each is a mean over edits with the Student-t interval of the per-edit scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from evaluation.metrics.clip_score import ScoreMean
from evaluation.metrics.prompt_agreement import PromptAgreement
from models_registry.generators.quality import SampleCheck


class EditPrompts(list):
    """Target captions (the list) of a batch of edits, with what the edit metrics compare
    against: `sources` uint8 [B, H, W, 3], `source_captions`, `masks` bool [B, H, W]."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        sources: np.ndarray,
        source_captions: Sequence[str],
        masks: np.ndarray,
    ) -> None:
        super().__init__(targets)
        n = len(targets)
        if sources.ndim != 4 or sources.shape[-1] != 3 or len(sources) != n:
            raise ValueError(f"expected {n} source images [B, H, W, 3], got {sources.shape}")
        if masks.shape != sources.shape[:3] or len(source_captions) != n:
            raise ValueError(
                f"expected {n} source captions and masks {sources.shape[:3]}, got "
                f"{len(source_captions)} and {masks.shape}"
            )
        self.sources = sources
        self.source_captions = list(source_captions)
        self.masks = masks.astype(bool)

    def check_edits(self, edits: np.ndarray) -> None:
        if edits.shape != self.sources.shape:
            raise ValueError(
                f"edited images {list(edits.shape)} must match their sources "
                f"{list(self.sources.shape)} (same size, RGB)"
            )


def preservation_l1_scores(edits: np.ndarray, sources: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per edit float64 [B]: mean |edit − source| / 255 over pixels outside `masks` (True = edit
    region) and channels; NaN where the mask covers the whole image."""
    keep = ~masks.astype(bool)
    diff = np.abs(edits.astype(np.float64) - sources.astype(np.float64)).mean(axis=-1) / 255.0
    counts = keep.reshape(len(keep), -1).sum(axis=1)
    totals = (diff * keep).reshape(len(keep), -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def masked_outside(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """uint8 [B, H, W, 3] with the edit region (masks True) set to black."""
    return np.where(masks[..., None], np.uint8(0), images).astype(np.uint8)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """float64 rows L2-normalised (as CLIP compares embeddings)."""
    return torch.nn.functional.normalize(x.to(torch.float64), dim=-1)


def clip_direction_scores(
    edit_embeddings: torch.Tensor,
    source_embeddings: torch.Tensor,
    target_text: torch.Tensor,
    source_text: torch.Tensor,
) -> torch.Tensor:
    """Per edit float64 [B]: cos(edit − source image embedding, target − source text embedding),
    each embedding L2-normalised first (as CLIP compares them); a zero change scores 0."""
    image_delta = _unit(edit_embeddings) - _unit(source_embeddings)
    text_delta = _unit(target_text) - _unit(source_text)
    return (_unit(image_delta) * _unit(text_delta)).sum(dim=-1)


def preservation_clip_scores(
    edit_embeddings: torch.Tensor, source_embeddings: torch.Tensor
) -> torch.Tensor:
    """Per edit float64 [B]: 1 − cos(edit, source) of the masked images' embeddings."""
    return 1.0 - (_unit(edit_embeddings) * _unit(source_embeddings)).sum(dim=-1)


class EditAccuracy(PromptAgreement):
    """Prompt agreement against the target caption, scoring an edit 1 only when the checker
    reads every attribute of the target (an exact edit), else 0."""

    def update(self, checks: Sequence[SampleCheck | None]) -> None:
        super().update(
            [
                None
                if check is None
                else replace(check, score=float(all(check.attributes.values())))
                for check in checks
            ]
        )


class EditMetric(ScoreMean):
    """Streaming mean of a per-edit score. Subclasses say how a batch (backbone, edited images,
    EditPrompts) becomes scores; NaN scores (nothing to compare) are counted as `skipped`."""

    what = "per-edit scores"
    needs = "at least one edit with its source"

    def reset(self) -> None:
        super().reset()
        self.skipped = 0  # edits with nothing to compare (a mask covering the whole image)

    def update_scores(self, scores: torch.Tensor | np.ndarray) -> None:
        """Add per-edit scores [B] (NaN: nothing to compare, counted as skipped)."""
        s = torch.as_tensor(np.asarray(scores, dtype=np.float64)).reshape(-1)
        finite = torch.isfinite(s)
        self.skipped += int((~finite).sum())
        super().update_scores(s[finite])

    def scores(self, backbone, edits: np.ndarray, prompts: EditPrompts) -> torch.Tensor:
        raise NotImplementedError

    def update(self, backbone, edits: np.ndarray, prompts: EditPrompts) -> None:
        """Add a batch: edited images uint8 [B, H, W, 3] with their EditPrompts."""
        if not isinstance(prompts, EditPrompts):
            raise ValueError(
                f"{self.metric} needs each edit's source image, captions and edit mask (an "
                "image-edit prompt set's prompts), got plain prompts"
            )
        prompts.check_edits(edits)
        self.update_scores(self.scores(backbone, edits, prompts))

    def merge(self, other: EditMetric) -> None:
        super().merge(other)
        self.skipped += other.skipped

    def details(self) -> dict[str, Any]:
        return {**super().details(), "skipped": self.skipped}


class ClipDirection(EditMetric):
    what = "per-edit directional similarities"

    def scores(self, backbone, edits: np.ndarray, prompts: EditPrompts) -> torch.Tensor:
        images = backbone.encode_images(np.concatenate([edits, prompts.sources]))
        texts = backbone.encode_texts([*prompts, *prompts.source_captions])
        n = len(edits)
        return clip_direction_scores(images[:n], images[n:], texts[:n], texts[n:])


class PreservationL1(EditMetric):
    what = "per-edit L1 outside the edit region"

    def scores(self, backbone, edits: np.ndarray, prompts: EditPrompts) -> np.ndarray:
        return preservation_l1_scores(edits, prompts.sources, prompts.masks)


class PreservationCLIP(EditMetric):
    what = "per-edit CLIP distances outside the edit region"

    def scores(self, backbone, edits: np.ndarray, prompts: EditPrompts) -> torch.Tensor:
        masked = np.concatenate(
            [masked_outside(edits, prompts.masks), masked_outside(prompts.sources, prompts.masks)]
        )
        embeddings = backbone.encode_images(masked)
        scores = preservation_clip_scores(embeddings[: len(edits)], embeddings[len(edits) :])
        whole = prompts.masks.reshape(len(edits), -1).all(axis=1)
        scores[torch.from_numpy(whole)] = float("nan")  # nothing outside the edit to compare
        return scores


class PixelBackbone:
    """The "backbone" of pixel metrics (preservation_l1): the images themselves, no weights."""

    name = "pixels"
    modality = "pixels"
    weights_sha256 = ""
    custom = False
    dim = 0
