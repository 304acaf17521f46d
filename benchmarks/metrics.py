"""Speed of the metric core on this machine (random weights: this is about speed, not values).

    .venv/bin/python benchmarks/metrics.py [--dim 2048] [--images 32] [--device cpu]

Prints, from one run: Fréchet distance time for ours (Cholesky + symmetric eigenvalues),
torchmetrics' `_compute_fid` (general eigenvalues of S1 S2) and scipy's `sqrtm` formula
(pytorch-fid / clean-fid), their ratios and relative disagreement; then feature-extraction
throughput (images/s) of InceptionV3 (torch-fidelity layout, 299 px) and CLIP ViT-B-32 (224 px).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def best_of(fn, repeats: int) -> tuple[float, float]:
    """(fastest wall time in s, last result) over `repeats` calls."""
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def frechet_benchmark(dim: int, repeats: int, device: str) -> None:
    import scipy.linalg
    from torchmetrics.image.fid import _compute_fid

    from evaluation.metrics.frechet import frechet_distance

    rng = np.random.default_rng(0)

    def stats():
        factor = rng.standard_normal((dim, dim + dim // 2)) / np.sqrt(dim)
        return rng.standard_normal(dim) * 0.1, factor @ factor.T

    mu1, s1 = stats()
    mu2, s2 = stats()
    tensors = [torch.from_numpy(a).to(device) for a in (mu1, s1, mu2, s2)]

    def scipy_fd():
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        return float(
            ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real)
        )

    ours_t, ours = best_of(lambda: frechet_distance(mu1, s1, mu2, s2, device=device), repeats)
    tm_t, tm = best_of(lambda: float(_compute_fid(*tensors)), repeats)
    sp_t, sp = best_of(scipy_fd, repeats)
    print(f"Fréchet distance, d={dim}, float64, device={device}, best of {repeats}:")
    print(f"  ours (cholesky + eigvalsh)     {ours_t:8.3f} s   value {ours:.10g}")
    print(
        f"  torchmetrics _compute_fid      {tm_t:8.3f} s   rel. diff {abs(tm - ours) / ours:.1e}"
        f"   ours is {tm_t / ours_t:.1f}x faster"
    )
    print(
        f"  scipy sqrtm (pytorch-fid)      {sp_t:8.3f} s   rel. diff {abs(sp - ours) / ours:.1e}"
        f"   ours is {sp_t / ours_t:.1f}x faster"
    )


def save_random_inception(path: Path) -> Path:
    """A randomly initialised InceptionV3 in torch-fidelity's layout, saved as a state dict."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # keep the random initialisation
            return None

    empty = path.with_name("empty.pt")
    torch.save({}, empty)
    net = Skeleton("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
    for module in net.modules():  # trained-like activation scale (tiny ones hit slow denormals)
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path


def extraction_benchmark(n_images: int, batch: int, device: str) -> None:
    import open_clip

    from evaluation.features.registry import load_backbone

    rng = np.random.default_rng(0)
    pics = rng.integers(0, 256, (n_images, 256, 256, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        weights = save_random_inception(Path(tmp) / "inception.pt")
        inception = load_backbone(
            "inception", weights_path=weights, allow_custom=True, device=device
        )

    clip = open_clip.create_model("ViT-B-32").eval().to(device)
    preprocess = open_clip.image_transform(224, is_train=False)
    from PIL import Image

    @torch.no_grad()
    def clip_encode(images):
        px = torch.stack([preprocess(Image.fromarray(im)) for im in images]).to(device)
        return clip.encode_image(px)

    def run(encode):
        encode(pics[:batch])  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, n_images, batch):
            encode(pics[i : i + batch])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return n_images / (time.perf_counter() - start)

    print(
        f"Feature extraction, {n_images} images of 256x256, batch {batch}, device={device}, "
        f"{torch.get_num_threads()} threads (includes PIL resizing):"
    )
    print(f"  InceptionV3 pool3 (299 px)     {run(inception.encode_images):8.1f} images/s")
    print(f"  CLIP ViT-B-32 image (224 px)   {run(clip_encode):8.1f} images/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    frechet_benchmark(args.dim, args.repeats, args.device)
    extraction_benchmark(args.images, args.batch, args.device)


if __name__ == "__main__":
    main()
