"""The reproducibility manifest recorded with every metric result."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

# Distributions whose versions change a metric's value (feature extractors, numerics, decoding).
LIBRARIES = (
    "torch",
    "torchvision",
    "torchmetrics",
    "torch-fidelity",
    "open_clip_torch",
    "numpy",
    "scipy",
    "pillow",
    "av",
)
MANIFEST_VERSION = 1


def library_versions() -> dict[str, str]:
    """{distribution: version} of LIBRARIES plus "python"; "" for one that is not installed.

    torch is named by its full build string (e.g. "2.4.1+cu121") with the CUDA and cuDNN it was
    built with, since kernels differ between builds of one release. Read once per process (the
    versions cannot change under it); each call returns a fresh copy.
    """
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> dict[str, str]:
    import torch

    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    out["torch"] = torch.__version__
    out["cuda"] = torch.version.cuda or ""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    out["cudnn"] = str(cudnn) if cudnn else ""
    return out


def reproducibility_manifest(
    *,
    backbone: str,
    weights_sha256: str,
    resize_mode: str,
    dtype: str,
    device: str,
    batch_size: int,
    seeds: dict,
    reference: dict,
    samples: dict,
    options: dict,
) -> dict:
    """Everything needed to recompute a metric value: the JSON stored as MetricResult.manifest.

    seeds: the seeds that drew the inputs ({"sample_seeds": [...], "estimator_seed": ...});
    reference: the reference set ({"slug", "n", "stats_sha256", "source"}) or {};
    samples: {"n", "sha256"} (a digest over the evaluated samples' sha256s, in order).
    """
    return {
        "manifest_version": MANIFEST_VERSION,
        "libraries": library_versions(),
        "backbone": backbone,
        "weights_sha256": weights_sha256,
        "resize_mode": resize_mode,
        "dtype": dtype,
        "device": device,
        "batch_size": int(batch_size),
        "seeds": seeds,
        "reference": reference,
        "samples": samples,
        "options": options,
    }
