"""Local weight files: presence, sha256 against the published hash, safe state-dict loading."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch


class WeightsUnavailable(Exception):
    """The weights are not configured or the file is missing; the message names the setting."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class WeightsRejected(Exception):
    """The file exists but may not be used (unexpected sha256 not marked custom, wrong layout)."""


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (cached per path, size and modification time)."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def verify_weights(
    *,
    path: Path | None,
    setting: str,
    what: str,
    published_sha256: str | None,
    allow_custom: bool,
    custom_hint: str,
) -> str:
    """Return the file's sha256 after checking it may be used.

    Missing path -> WeightsUnavailable naming `setting`; a hash other than `published_sha256`
    (or any hash when nothing is published) -> WeightsRejected unless `allow_custom`.
    """
    if path is None or str(path) == "":
        raise WeightsUnavailable(
            f"{what} weights are not configured: set {setting} to a local weights file",
            setting=setting,
        )
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailable(
            f"{what} weights file {path} does not exist: set {setting} to a local weights file",
            setting=setting,
        )
    sha = sha256_file(path)
    if sha != published_sha256 and not allow_custom:
        expected = (
            f"the published sha256 {published_sha256}"
            if published_sha256
            else "no published sha256 for this model"
        )
        raise WeightsRejected(
            f"{what} weights {path} have sha256 {sha}, {expected}; refusing custom weights "
            f"unless marked custom ({custom_hint})"
        )
    return sha


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file or a torch.save file (weights_only: nothing unpickled).

    Unwraps a top-level "state_dict" entry and a "module." prefix (DataParallel checkpoints).
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for unreadable files
        raise WeightsRejected(f"cannot read weights file {path}: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsRejected(f"weights file {path} does not hold a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state
