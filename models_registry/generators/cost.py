"""What generation costs: a price table per device kind ($ per hour) -> $ per image, per
megapixel and per video second; per-version summaries of the recorded samples; the quality–cost
Pareto frontier.

Pure (no Django): the price table (settings.GENERATION_PRICES, $ per device-hour) is passed in.

Units: a sample's `generation_seconds` is the wall time of its batch divided by the batch size
(the amortised time of one sample), so cost per sample = seconds × $/hour / 3600. A megapixel is
10^6 generated pixels: width × height for an image, width × height × frames for a clip. A video
second is frames / fps of the clip.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

# The Sample columns a summary reads, in GenerationRow order.
GENERATION_FIELDS = (
    "generation_seconds",
    "device_kind",
    "device_name",
    "dtype",
    "batch_size",
    "steps",
    "nfe",
    "peak_memory_bytes",
    "width",
    "height",
    "frames",
)


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^0-9a-z]+", text.lower()) if t]


def price_for_device(
    prices: Mapping[str, float], *, device_kind: str, device_name: str
) -> tuple[str, float] | None:
    """(price key, $ per hour) for a device, or None when the table has no price for it.

    A GPU matches the key whose words appear, whole and in order, in its name ("A100" matches
    "NVIDIA A100-SXM4-80GB" but "A10" and "L4" do not match "A100" or "L40S"); the key with the
    most words, then the longest, wins; an unmatched GPU takes the device kind's key ("cuda").
    Other devices take their kind's key ("cpu", "mps")."""
    if device_kind == "cuda":
        name = _tokens(device_name)
        best: tuple[int, int, str] | None = None
        for key in prices:
            words = _tokens(key)
            if not words or key in ("cpu", "cuda", "mps"):
                continue
            hit = any(name[i : i + len(words)] == words for i in range(len(name) - len(words) + 1))
            if hit and (best is None or (len(words), len(key)) > best[:2]):
                best = (len(words), len(key), key)
        if best is not None:
            return best[2], prices[best[2]]
    if device_kind in prices:
        return device_kind, prices[device_kind]
    return None


def cost_per_sample(seconds: float, price_per_hour: float) -> float:
    """$ for one sample that took `seconds` of a device priced `price_per_hour`."""
    return seconds * price_per_hour / 3600.0


def megapixels(width: int, height: int, frames: int = 1) -> float:
    return width * height * max(1, frames) / 1e6


def video_seconds(frames: int, fps: float) -> float:
    return frames / fps


@dataclass(frozen=True)
class GenerationRow:
    """One sample's recorded generation facts (the Sample columns of GENERATION_FIELDS)."""

    seconds: float | None
    device_kind: str
    device_name: str
    dtype: str
    batch_size: int | None
    steps: int | None
    nfe: int | None
    peak_memory_bytes: int | None
    width: int
    height: int
    frames: int


@dataclass(frozen=True)
class GenerationSummary:
    """A version's generation cost over its recorded samples.

    `n`: samples with a wall time; `n_priced`: those whose device has a price (the cost
    statistics use these). Medians and means are over samples. Device, dtype, batch size,
    steps and NFE are the most common values (`mixed` says when samples differ);
    `peak_memory_bytes` is the largest recorded, of `peak_memory_kind`."""

    n: int
    n_priced: int
    seconds_median: float | None
    seconds_mean: float | None
    cost_per_sample_median: float | None
    cost_per_sample_mean: float | None
    cost_per_megapixel_median: float | None
    cost_per_video_second_median: float | None
    device_kind: str
    device_name: str
    price_key: str
    price_per_hour: float | None
    dtype: str
    batch_size: int | None
    steps: int | None
    nfe: int | None
    peak_memory_bytes: int | None
    mixed: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def _mode(values: Sequence):
    known = [v for v in values if v not in (None, "")]
    if not known:
        return None, False
    counts = Counter(known)
    return counts.most_common(1)[0][0], len(counts) > 1


def summarise_generation(
    rows: Iterable[GenerationRow | Sequence],
    *,
    prices: Mapping[str, float],
    fps: float,
) -> GenerationSummary | None:
    """The generation summary of one version's samples (rows in GENERATION_FIELDS order or
    GenerationRow), or None when no sample recorded its wall time. `fps` turns a clip's frames
    into video seconds (cost per video second is over clips, frames > 1, only)."""
    timed = [r if isinstance(r, GenerationRow) else GenerationRow(*r) for r in rows]
    timed = [r for r in timed if r.seconds is not None]
    if not timed:
        return None
    seconds = [r.seconds for r in timed]
    costs, per_mp, per_video_s = [], [], []
    keys = []
    for r in timed:
        price = price_for_device(prices, device_kind=r.device_kind, device_name=r.device_name)
        if price is None:
            continue
        keys.append(price)
        cost = cost_per_sample(r.seconds, price[1])
        costs.append(cost)
        per_mp.append(cost / megapixels(r.width, r.height, r.frames))
        if r.frames > 1:
            per_video_s.append(cost / video_seconds(r.frames, fps))
    facts, mixed = {}, []
    for name in ("device_kind", "device_name", "dtype", "batch_size", "steps", "nfe"):
        facts[name], differs = _mode([getattr(r, name) for r in timed])
        if differs:
            mixed.append(name)
    (price_key, price_per_hour), _ = _mode(keys) if keys else ((None, None), False)
    memory = [r.peak_memory_bytes for r in timed if r.peak_memory_bytes is not None]
    return GenerationSummary(
        n=len(timed),
        n_priced=len(costs),
        seconds_median=statistics.median(seconds),
        seconds_mean=statistics.fmean(seconds),
        cost_per_sample_median=statistics.median(costs) if costs else None,
        cost_per_sample_mean=statistics.fmean(costs) if costs else None,
        cost_per_megapixel_median=statistics.median(per_mp) if per_mp else None,
        cost_per_video_second_median=statistics.median(per_video_s) if per_video_s else None,
        device_kind=facts["device_kind"] or "",
        device_name=facts["device_name"] or "",
        price_key=price_key or "",
        price_per_hour=price_per_hour,
        dtype=facts["dtype"] or "",
        batch_size=facts["batch_size"],
        steps=facts["steps"],
        nfe=facts["nfe"],
        peak_memory_bytes=max(memory) if memory else None,
        mixed=mixed,
    )


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the Pareto-optimal points of (cost, quality), cheaper and better being
    preferred: a point is dominated when another costs no more and scores no less, and is
    strictly better in one of the two. Returned by increasing cost (the frontier's order);
    identical points are all kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best: tuple[float, float] | None = None  # (cost, quality) of the last point kept
    for i in order:
        cost, quality = points[i]
        if best is None or quality > best[1] or (cost, quality) == best:
            front.append(i)
            best = (cost, quality)
    return front
