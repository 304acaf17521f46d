"""The two sample pools of a version, and the anonymity rules that keep them apart.

The generate stage makes every version two disjoint pools from different seeds:

* **battle pool**, seeds ``0 .. GENERATOR_SEEDS_PER_PROMPT - 1`` (and later refills above them):
  served to raters only through per-battle media tokens (arena), never listed anywhere;
* **showcase**, seeds ``SHOWCASE_SEED_BASE + 0 .. GENERATOR_SHOWCASE_SEEDS_PER_PROMPT - 1``: what
  galleries, model and sample pages, the sample API and /verify show.

A battle sample becomes public only when it *retires* (``retire_samples``): after
ARENA_RETIRE_AFTER_REVEALS human raters have seen its model at the reveal, or when its version
leaves the arena (arena.anonymity). A retired sample is never served again.

Different seeds are not always different pictures: a model whose output barely depends on the
seed makes near-copies across pools. The lookalike screen (``screen_lookalikes``) withholds a
public sample whose fingerprint lies within LOOKALIKE_THRESHOLD of a live battle sample of the
same version, and retires, unserved, a new battle sample that looks like one already public.

Which pool each score reads: metrics (FID, KID, CLIP score, CMMD, FVD, prompt agreement, edit
metrics) score the battle pool, the samples raters judge; the VLM judge scores both pools;
the steps sweep generates its own samples and stores none; the provenance column checks the
showcase.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from evaluation.features import fingerprint as fp
from evaluation.features.media import read_image, read_video
from evaluation.models import MediaKind, RetiredReason, Sample, SamplePool

log = logging.getLogger(__name__)

# Showcase seeds start here, far above any battle seed a refill reaches (ARENA_POOL_MAX_SEEDS).
SHOWCASE_SEED_BASE = 1_000_000


def pool_for_seed(seed: int) -> str:
    """The pool a seed's sample belongs to."""
    return SamplePool.SHOWCASE if int(seed) >= SHOWCASE_SEED_BASE else SamplePool.BATTLE


def battle_seeds() -> list[int]:
    return list(range(settings.GENERATOR_SEEDS_PER_PROMPT))


def showcase_seeds() -> list[int]:
    return [SHOWCASE_SEED_BASE + k for k in range(settings.GENERATOR_SHOWCASE_SEEDS_PER_PROMPT)]


def generation_seeds() -> list[int]:
    """The seeds the generate stage makes for every prompt: the battle pool, then the showcase."""
    return battle_seeds() + showcase_seeds()


@dataclass
class ScreenReport:
    version_id: int
    live_battle: int = 0
    public_candidates: int = 0
    withheld: int = 0
    retired_lookalikes: int = 0


def screen_lookalikes(*, version_id: int) -> ScreenReport:
    """Apply the lookalike rule to one version (idempotent; run when its samples change):

    1. a live battle sample that looks like a sample already public is retired unserved
       (reason ``lookalike``, withheld): it would be recognised in a battle;
    2. every other public candidate (showcase, or retired) is withheld exactly while it looks
       like a live battle sample.
    """
    report = ScreenReport(version_id)
    with transaction.atomic():
        rows = list(
            Sample.objects.select_for_update()
            .filter(version_id=version_id)
            .order_by("id")
            .only(
                "id",
                "pool",
                "retired_at",
                "retired_reason",
                "withheld",
                "fingerprint",
                "media",
                "media_kind",
            )
        )
        _fill_fingerprints(rows)
        live = [s for s in rows if s.pool == SamplePool.BATTLE and s.retired_at is None]
        live_ids = {s.pk for s in live}
        candidates = [
            s for s in rows if s.pk not in live_ids and s.retired_reason != RetiredReason.LOOKALIKE
        ]
        known = {s.pk for s in _known(rows)}
        unknown = [s.pk for s in candidates if s.pk not in known and not s.withheld]
        live, candidates = _known(live), _known(candidates)
        public = [s for s in candidates if not s.withheld]
        copies = fp.lookalikes(_stack(live), _stack(public), settings.LOOKALIKE_THRESHOLD)
        now = timezone.now()
        retired = [s.pk for s, copy in zip(live, copies, strict=True) if copy]
        if retired:
            Sample.objects.filter(pk__in=retired).update(
                retired_at=now, retired_reason=RetiredReason.LOOKALIKE, withheld=True
            )
            report.retired_lookalikes = len(retired)
            live = [s for s in live if s.pk not in set(retired)]
            candidates = [s for s in candidates if s.pk not in set(retired)]
        hidden = fp.lookalikes(_stack(candidates), _stack(live), settings.LOOKALIKE_THRESHOLD)
        flip_on = [s.pk for s, h in zip(candidates, hidden, strict=True) if h and not s.withheld]
        flip_on += unknown
        flip_off = [s.pk for s, h in zip(candidates, hidden, strict=True) if not h and s.withheld]
        if flip_on:
            Sample.objects.filter(pk__in=flip_on).update(withheld=True)
        if flip_off:
            Sample.objects.filter(pk__in=flip_off).update(withheld=False)
        report.live_battle = len(live)
        report.public_candidates = len(candidates)
        report.withheld = int(hidden.sum()) + len(unknown)
    if report.withheld or report.retired_lookalikes:
        log.info("lookalike screen of version %s: %s", version_id, report)
    return report


def _stack(samples: list[Sample]):
    return fp.as_array([bytes(s.fingerprint) for s in samples])


def _fill_fingerprints(samples: list[Sample]) -> None:
    """Fingerprint samples stored before fingerprints existed (decoded from their media). A
    sample whose media cannot be read keeps none: it is never shown publicly (the screen
    cannot clear it) and compared with nothing."""
    for sample in samples:
        if len(bytes(sample.fingerprint)) == fp.FINGERPRINT_BYTES:
            continue
        read = read_video if sample.media_kind == MediaKind.VIDEO else read_image
        try:
            with sample.media.open("rb") as handle:
                sample.fingerprint = fp.fingerprint(read(handle, label=sample.media.name))
        except (OSError, ValueError) as exc:  # missing or unreadable media (MediaError)
            log.warning("sample %s has no readable media to fingerprint: %s", sample.pk, exc)
            continue
        Sample.objects.filter(pk=sample.pk).update(fingerprint=sample.fingerprint)


def _known(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if len(bytes(s.fingerprint)) == fp.FINGERPRINT_BYTES]


def retire_samples(*, sample_ids: list[int], reason: str, now: datetime | None = None) -> list[int]:
    """Retire live battle samples (they are never served again and become public, unless a
    lookalike rule withholds them); returns the ids retired now. Re-screens their versions."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Sample.objects.live_battle()
            .select_for_update()
            .filter(pk__in=sample_ids)
            .values_list("pk", flat=True)
        )
        # Withheld until the screen below has looked at them.
        Sample.objects.filter(pk__in=ids).update(
            retired_at=now, retired_reason=reason, withheld=True
        )
    for version_id in set(Sample.objects.filter(pk__in=ids).values_list("version_id", flat=True)):
        screen_lookalikes(version_id=version_id)
    return ids


def next_battle_seeds(*, version_id: int) -> list[int]:
    """The seeds of a refill of a version's battle pool: the next GENERATOR_SEEDS_PER_PROMPT
    above its highest battle seed, none past ARENA_POOL_MAX_SEEDS."""
    top = Sample.objects.filter(version_id=version_id, pool=SamplePool.BATTLE).aggregate(
        top=Max("seed")
    )["top"]
    start = 0 if top is None else int(top) + 1
    stop = min(start + settings.GENERATOR_SEEDS_PER_PROMPT, settings.ARENA_POOL_MAX_SEEDS)
    return list(range(start, stop))


@dataclass(frozen=True)
class PoolCounts:
    live_battle: int
    retired: int
    showcase_public: int
    withheld: int


def pool_counts(*, version_ids: list[int]) -> dict[int, PoolCounts]:
    """{version id: its pools' sizes} (one query)."""
    from django.db.models import Count

    rows = (
        Sample.objects.filter(version_id__in=version_ids)
        .values("version_id")
        .annotate(
            live=Count("id", filter=Q(pool=SamplePool.BATTLE, retired_at__isnull=True)),
            retired=Count("id", filter=Q(retired_at__isnull=False)),
            showcase=Count("id", filter=Q(pool=SamplePool.SHOWCASE, withheld=False)),
            withheld=Count("id", filter=Q(withheld=True)),
        )
    )
    return {
        row["version_id"]: PoolCounts(row["live"], row["retired"], row["showcase"], row["withheld"])
        for row in rows
    }
