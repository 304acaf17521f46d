"""The watermark's detection threshold, robustness and cost, measured (no database).

    .venv/bin/python benchmarks/provenance.py [--images 200] [--ids 100000]

False positives: 64 bits are read from images that carry no watermark (the demo's renders,
upscaled as published, their JPEG q75 copies, noise, flat grey and gradients) and compared
with `--ids` random 63-bit ids; prints the per-id bit accuracy (chance: 0.5), the best match
among all ids, and the false-positive rate at thresholds 48..60 of 64 bits, measured and by
the binomial closed form (union bound over the ids). True positives: bit accuracy of marked
renders clean, after JPEG q90 / q75 / q50, after a resize to 3/4 and 1/2 (read back at the
published size) and after a 10% crop; the PSNR of the mark; and the time to publish (mark +
C2PA-sign) and to verify one image.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluation.provenance import watermark as W  # noqa: E402
from evaluation.provenance.credentials import demo_credentials  # noqa: E402
from evaluation.provenance.manifest import read_manifest, sign_media  # noqa: E402
from evaluation.provenance.rendition import (  # noqa: E402
    decode_image,
    encode_png_pixels_only,
    jpeg_round_trip,
    publication_pixels,
)
from models_registry.generators.synthetic import render_image_dataset  # noqa: E402


def binomial_tail(k: int, n: int = 64) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, j) for j in range(k, n + 1)) / 2**n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--ids", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    renders, _, _ = render_image_dataset(args.images, 11, size=32)
    upscaled = [np.repeat(np.repeat(np.asarray(r), 8, 0), 8, 1) for r in renders]

    # --- false positives -------------------------------------------------------------------
    unmarked = list(upscaled) + [jpeg_round_trip(u, 75) for u in upscaled[: args.images // 4]]
    unmarked += [rng.integers(0, 256, (256, 256, 3)).astype(np.uint8) for _ in range(20)]
    unmarked += [np.full((256, 256, 3), v, np.uint8) for v in (0, 128, 255)]
    ramp = np.linspace(0, 255, 256).astype(np.uint8)
    unmarked += [np.stack([np.tile(ramp, (256, 1))] * 3, -1), np.stack([ramp[:, None]] * 3, -1)]
    unmarked[-1] = np.repeat(unmarked[-1], 256, axis=1)
    ids = rng.integers(0, 2**63, size=args.ids, dtype=np.int64).astype(np.uint64)
    shifts = np.arange(63, -1, -1, dtype=np.uint64)
    id_bits = ((ids[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8)
    per_id, best = [], []
    for image in unmarked:
        bits = W.decode_bits(image)
        agree = (id_bits == bits[None, :]).sum(axis=1)
        per_id.append(agree[:1000])
        best.append(int(agree.max()))
    per_id = np.concatenate(per_id) / 64
    best = np.array(best)
    print(f"unmarked images: {len(unmarked)}, ids compared: {args.ids}")
    print(
        f"per-id bit accuracy: mean {per_id.mean():.4f} (chance 0.5), sd {per_id.std():.4f} "
        f"(binomial {0.5 / 8:.4f})"
    )
    print(
        f"best match among {args.ids} ids: mean {best.mean() / 64:.4f}, max {best.max() / 64:.4f}"
    )
    print("threshold  measured FPR (best of ids)  closed form (union bound over ids)")
    for k in (48, 50, 52, 54, 56, 58, 60):
        measured = float((best >= k).mean())
        bound = min(1.0, args.ids * binomial_tail(k))
        print(f"  {k}/64 = {k / 64:.3f}   {measured:.4f}                      {bound:.2e}")

    # --- true positives --------------------------------------------------------------------
    attacks = {
        "clean": lambda x: x,
        "jpeg90": lambda x: jpeg_round_trip(x, 90),
        "jpeg75": lambda x: jpeg_round_trip(x, 75),
        "jpeg50": lambda x: jpeg_round_trip(x, 50),
        "resize0.75": lambda x: W.resize_rgb(W.resize_rgb(x, 192, 192), 256, 256),
        "resize0.5": lambda x: W.resize_rgb(W.resize_rgb(x, 128, 128), 256, 256),
        "crop10%": lambda x: W.resize_rgb(x[13:-13, 13:-13], 256, 256),
    }
    scores: dict[str, list[float]] = {name: [] for name in attacks}
    psnr = []
    for image in upscaled[:50]:
        wid = int(rng.integers(0, 2**63))
        marked = W.embed_watermark(image, wid)
        psnr.append(10 * math.log10(255**2 / np.mean((marked.astype(float) - image) ** 2)))
        for name, attack in attacks.items():
            scores[name].append(W.bit_accuracy(W.decode_bits(attack(marked)), W.id_bits(wid)))
    print(f"marked renders: 50, PSNR {np.mean(psnr):.1f} dB (min {np.min(psnr):.1f})")
    print("attack       mean bit acc  min    detected at 56/64")
    for name, values in scores.items():
        values = np.array(values)
        print(
            f"  {name:<10} {values.mean():.4f}        {values.min():.3f}  "
            f"{(values >= 56 / 64).mean():.2f}"
        )

    # --- cost ------------------------------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        credentials = demo_credentials(Path(tmp))
        started = time.perf_counter()
        for k, render in enumerate(renders[:20]):
            data = encode_png_pixels_only(publication_pixels(np.asarray(render), watermark_id=k))
            signed = sign_media(
                data,
                mime="image/png",
                credentials=credentials,
                generation={"seed": k},
                title="b",
                software_agent="bench",
            )
        publish = (time.perf_counter() - started) / 20
        started = time.perf_counter()
        for _ in range(20):
            pixels, _ = decode_image(signed, max_pixels=10**8)
            read_manifest(signed, trust_anchors=credentials.anchor_pem)
            W.match_ids(W.readings(pixels), ids, threshold=56 / 64)
        verify = (time.perf_counter() - started) / 20
    print(
        f"publish (upscale + mark + PNG + C2PA sign) {publish * 1000:.0f} ms per image; "
        f"verify (decode + manifest + match against {args.ids} ids) {verify * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
