"""What a `generate` call cost, measured by the generator itself: network evaluations, device,
dtype, batch size and peak memory (`GenerationStats`, `GenerationMeter`).

NFE (network function evaluations) is counted, never derived from a config: every forward pass
of the denoiser adds the rows it was given, divided by the number of samples. A classifier-free
guidance pair (conditional + unconditional, batched together) is therefore 2 per sample, a Heun
step 2, a sampler that skips the network at its last level 1 less.

Peak memory is honest about what it measures (`peak_memory_kind`): on CUDA the allocator's peak
(`torch.cuda.max_memory_allocated`) during this call, reset at its start; on CPU the worker
process's peak resident set size (`ru_maxrss`, the high-water mark since the process started,
including the model and everything else it loaded), which torch's CPU allocator cannot narrow
down to one call.
"""

from __future__ import annotations

import platform
import resource
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch is imported where it is used: the GenerationStats type is read by the web process too.
PEAK_MEMORY_KINDS = ("cuda_max_allocated", "process_max_rss")


@dataclass(frozen=True)
class GenerationStats:
    """Facts of one `generate` call. `nfe`: network evaluations per sample (a CFG pair = 2);
    `steps`: sampler steps asked for; `peak_memory_bytes` as `peak_memory_kind` says."""

    steps: int
    nfe: int
    dtype: str  # the denoiser's parameter dtype, e.g. "float32", "float16"
    device_kind: str  # "cpu", "cuda", "mps"
    device_name: str  # e.g. "NVIDIA H100 80GB HBM3", "AMD EPYC 7B13"
    batch_size: int
    peak_memory_bytes: int | None
    peak_memory_kind: str  # one of PEAK_MEMORY_KINDS

    def as_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=8)
def device_name(device: str | torch.device) -> str:
    """The accelerator's marketing name (CUDA) or the CPU model (from /proc/cpuinfo on Linux)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "cpu":
        return cpu_model_name()
    return dev.type


def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def process_peak_rss_bytes() -> int:
    """Peak resident set size of this process since it started (ru_maxrss is KiB on Linux,
    bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class GenerationMeter:
    """Counts network rows and measures peak memory around one `generate` call.

    with GenerationMeter(device, batch_size=n) as meter:
        ... meter.count(rows) for each forward pass of the denoiser ...
    stats = meter.stats(steps=..., dtype=...)
    """

    def __init__(self, device: str | torch.device, *, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        import torch

        self.device = torch.device(device)
        self.batch_size = batch_size
        self.rows = 0
        self.peak: int | None = None

    def __enter__(self) -> GenerationMeter:
        import torch

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.type == "cuda":
            self.peak = int(torch.cuda.max_memory_allocated(self.device))
        else:
            self.peak = process_peak_rss_bytes()

    def count(self, rows: int) -> None:
        """One forward pass of the denoiser over `rows` batch rows."""
        self.rows += int(rows)

    def stats(self, *, steps: int, dtype: torch.dtype | str) -> GenerationStats:
        if self.rows % self.batch_size:
            raise RuntimeError(
                f"{self.rows} network rows for {self.batch_size} samples: not a whole number of "
                "evaluations per sample"
            )
        return GenerationStats(
            steps=int(steps),
            nfe=self.rows // self.batch_size,
            dtype=str(dtype).removeprefix("torch."),
            device_kind=self.device.type,
            device_name=device_name(self.device),
            batch_size=self.batch_size,
            peak_memory_bytes=self.peak,
            peak_memory_kind=(
                "cuda_max_allocated" if self.device.type == "cuda" else "process_max_rss"
            ),
        )


def plan_nfe_sweep(
    nfe_for_steps: Callable[[int], int], budgets: Iterable[int]
) -> list[tuple[int, int, int]]:
    """[(budget, steps, nfe)]: for each NFE budget (ascending), the most sampler steps whose
    network evaluations per sample fit in it (`nfe_for_steps(steps)`, nondecreasing in steps;
    a ValueError means "no more steps allowed"). A budget no step count fits (e.g. 1 under CFG)
    is left out, and a budget that gives the same steps as a smaller one is not repeated."""
    points: list[tuple[int, int, int]] = []
    for budget in sorted({int(b) for b in budgets}):
        if budget < 1:
            raise ValueError(f"NFE budgets must be >= 1, got {budget}")
        best: tuple[int, int] | None = None
        for steps in range(1, budget + 1):
            try:
                nfe = nfe_for_steps(steps)
            except ValueError:
                break
            if nfe > budget:
                break
            best = (steps, nfe)
        if best is not None and all(best[0] != p[1] for p in points):
            points.append((budget, *best))
    return points
