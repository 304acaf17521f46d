"""A small open_clip model trained on the synthetic benchmark data, so the demo has a working CLIP
offline (CLIP score, CMMD, FD on CLIP). Not a general-purpose CLIP: it knows coloured shapes.

`train_demo_clip(out_path)` writes the weights (safetensors) and, next to them,
`demo-clip-tiny.json` in open_clip's config format; point CLIP_WEIGHTS_PATH at the weights with
CLIP_MODEL_NAME=demo-clip-tiny and CLIP_WEIGHTS_CUSTOM=1 (no published hash exists for it).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DEMO_CLIP_MODEL_NAME = "demo-clip-tiny"
DEMO_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {
        "image_size": 32,
        "layers": 2,
        "width": 64,
        "head_width": 32,
        "patch_size": 8,
        "mlp_ratio": 2.0,
    },
    "text_cfg": {
        "context_length": 24,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
        "mlp_ratio": 2.0,
    },
}


@dataclass(frozen=True)
class DemoClipCheckpoint:
    weights_path: Path
    config_path: Path
    model_name: str
    trained: bool  # False when an existing checkpoint was reused
    retrieval_accuracy: float | None  # text->image top-1 on held-out renders (None if reused)


def config_path_for(out_path: Path) -> Path:
    return Path(out_path).with_name(f"{DEMO_CLIP_MODEL_NAME}.json")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def train_demo_clip(
    out_path: Path,
    *,
    steps: int = 400,
    seed: int = 0,
    batch_size: int = 96,
    n_images: int = 4096,
    force: bool = False,
    progress: Callable[[int, float], None] | None = None,
) -> DemoClipCheckpoint:
    """Train the demo CLIP with the contrastive loss on synthetic captioned renders.

    out_path: weights file (.safetensors); its config JSON goes next to it. An existing pair is
    reused unless `force`. Deterministic for a given seed on one machine. `progress(step, loss)`
    is called after every step.
    """
    import open_clip
    from open_clip.loss import ClipLoss
    from safetensors.torch import save_file

    from models_registry.generators.synthetic import render_image_dataset

    out_path = Path(out_path)
    config_path = config_path_for(out_path)
    if out_path.is_file() and config_path.is_file() and not force:
        return DemoClipCheckpoint(out_path, config_path, DEMO_CLIP_MODEL_NAME, False, None)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(config_path, json.dumps(DEMO_CLIP_CONFIG, indent=2).encode())
    open_clip.add_model_config(config_path)

    torch.manual_seed(seed)
    images, captions, _ = render_image_dataset(n_images, seed, size=32)
    held_images, held_captions, _ = render_image_dataset(256, seed + 1, size=32)
    model, _, _ = open_clip.create_model_and_transforms(DEMO_CLIP_MODEL_NAME, output_dict=True)
    tokenizer = open_clip.get_tokenizer(DEMO_CLIP_MODEL_NAME)
    mean = torch.tensor(model.visual.image_mean or open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.image_std or open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)

    def pixels(batch: np.ndarray) -> torch.Tensor:
        # Same as the model's eval transform for 32x32 input: ToTensor + Normalize.
        return (torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0 - mean) / std

    tokens = tokenizer(captions)
    loss_fn = ClipLoss()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    generator = np.random.default_rng(seed)
    model.train()
    for step in range(steps):
        idx = generator.choice(n_images, size=batch_size, replace=False)
        out = model(pixels(images[idx]), tokens[idx])
        loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if progress is not None:
            progress(step + 1, float(loss.detach()))
    model.eval()
    with torch.no_grad():
        img = torch.nn.functional.normalize(model.encode_image(pixels(held_images)), dim=-1)
        txt = torch.nn.functional.normalize(model.encode_text(tokenizer(held_captions)), dim=-1)
        # A caption may describe several renders (closed grammar): count a hit on any match.
        best = (txt @ img.T).argmax(dim=1).tolist()
        accuracy = float(
            np.mean([held_captions[j] == held_captions[i] for i, j in enumerate(best)])
        )
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    save_file(state, str(tmp))
    os.replace(tmp, out_path)
    return DemoClipCheckpoint(out_path, config_path, DEMO_CLIP_MODEL_NAME, True, accuracy)
