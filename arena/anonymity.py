"""Anonymity, arena side: who has seen which sample's model, retirement, and fresh samples.

The rules (the pools themselves: evaluation.pools):

* **Per-rater exclusion.** A vote reveals the models of the battle's samples to its rater
  (SampleReveal rows, written with the vote). The sampler never serves that rater those samples
  again (``seen_sample_ids``); a pair or K-set whose prompt has no unseen sample left for the
  rater is skipped, and when nothing is left the rater is told so (503 ``pool_exhausted``)
  while fresh battle samples are queued for the versions they have exhausted.
* **Retirement.** A battle sample retires once ARENA_RETIRE_AFTER_REVEALS human raters have
  seen its model (``reveals_record``), or when its version leaves the arena: superseded by a
  newer eligible version of its model, revoked, made private, rejected or failed after it was
  served (``retire_departed``, run by every rating refresh). Retired samples are never served
  and become public (galleries, sample pages, the API), since enough people know who made them.
* **Refill.** When a version's live battle pool falls below ARENA_POOL_REFILL_BELOW of its
  prompts x GENERATOR_SEEDS_PER_PROMPT, or a rater has seen all of it, the gpu task
  ``workers.tasks.gpu_refill_battle_pool`` generates the next battle seeds (at most once per
  ARENA_POOL_REFILL_DEBOUNCE_SECONDS per version; up to ARENA_POOL_MAX_SEEDS seeds).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q

from arena.models import Battle, BattleSample, RaterKind, SampleReveal
from arena.selectors import eligible_versions
from config import task_names
from evaluation.models import RetiredReason, Sample, SamplePool
from evaluation.pools import retire_samples
from models_registry.models import ModelVersion, Task

log = logging.getLogger(__name__)
REFILL_DEBOUNCE_SECONDS = 600


def battle_sample_ids(*, battle_token: str) -> list[int]:
    """The sample ids a battle showed, in display order."""
    battle_id, a, b, size = (
        Battle.objects.filter(token=battle_token)
        .values_list("pk", "sample_a_id", "sample_b_id", "size")
        .get()
    )
    if size == 2:
        return [a, b]
    extra = BattleSample.objects.filter(battle_id=battle_id).order_by("position")
    return [a, b, *extra.values_list("sample_id", flat=True)]


def reveals_record(
    *, battle_token: str, rater_id: int, ip_hash: str = "", rater_kind: str = RaterKind.HUMAN
) -> list[int]:
    """Record that `rater_id` (from address `ip_hash`) has seen the models of a battle's samples
    (after its vote), and retire those seen by ARENA_RETIRE_AFTER_REVEALS human raters.
    Returns the ids retired."""
    sample_ids = battle_sample_ids(battle_token=battle_token)
    SampleReveal.objects.bulk_create(
        [
            SampleReveal(sample_id=s, rater_id=rater_id, rater_kind=rater_kind, ip_hash=ip_hash)
            for s in sample_ids
        ],
        ignore_conflicts=True,
    )
    if rater_kind != RaterKind.HUMAN:
        return []
    due = list(
        SampleReveal.objects.filter(sample_id__in=sample_ids, rater_kind=RaterKind.HUMAN)
        .values("sample_id")
        .annotate(n=Count("rater_id"))
        .filter(n__gte=settings.ARENA_RETIRE_AFTER_REVEALS)
        .values_list("sample_id", flat=True)
    )
    retired = retire_samples(sample_ids=due, reason=RetiredReason.REVEALS) if due else []
    if retired:
        versions = set(Sample.objects.filter(pk__in=retired).values_list("version_id", flat=True))
        refill_if_low(version_ids=sorted(versions))
    return retired


def seen_sample_ids(*, rater_id: int, ip_hash: str = "") -> set[int]:
    """Samples whose model this rater has seen, or (ARENA_EXCLUDE_SEEN_BY_ADDRESS) anyone from
    their address: never served to them again."""
    rule = Q(rater_id=rater_id)
    if ip_hash and settings.ARENA_EXCLUDE_SEEN_BY_ADDRESS:
        rule |= Q(ip_hash=ip_hash)
    return set(SampleReveal.objects.filter(rule).values_list("sample_id", flat=True))


def unseen_pool_for(pool: dict, seen: set[int]) -> dict:
    """The arena pool (prompt -> model -> sample ids) without the samples in `seen`; prompts
    left with fewer than two models drop out."""
    out = {}
    for prompt, models in pool.items():
        kept = {m: [s for s in ids if s not in seen] for m, ids in models.items()}
        kept = {m: ids for m, ids in kept.items() if ids}
        if len(kept) >= 2:
            out[prompt] = kept
    return out


def exhausted_versions(pool: dict, seen: set[int]) -> list[int]:
    """Versions of the pool every one of whose live samples the rater has seen."""
    by_version: dict[int, list[int]] = defaultdict(list)
    ids = [s for models in pool.values() for samples in models.values() for s in samples]
    for sample_id, version_id in Sample.objects.filter(pk__in=ids).values_list("id", "version_id"):
        by_version[version_id].append(sample_id)
    return sorted(v for v, samples in by_version.items() if all(s in seen for s in samples))


def newest_eligible_versions(*, task: str | None = None) -> dict[int, int]:
    """{model id: the version the arena serves} (newest approved, non-private, not rejected or
    failed version with live battle samples), per task or for every task."""
    rows = []
    for name in [task] if task else Task.values:
        rows += list(
            eligible_versions(task=name)
            .filter(samples__pool=SamplePool.BATTLE)
            .values_list("model_id", "pk", "created_at")
            .distinct()
        )
    newest: dict[int, tuple] = {}
    for model_id, version_id, created in rows:
        if model_id not in newest or (created, version_id) > newest[model_id]:
            newest[model_id] = (created, version_id)
    return {model_id: version_id for model_id, (_, version_id) in newest.items()}


def retire_departed(*, task: str | None = None) -> list[int]:
    """Retire the live battle samples of versions that have left the arena: superseded by the
    version the arena now serves for their model, or, after having been served in a battle, no
    longer eligible (revoked, private, rejected, failed). Returns the ids retired."""
    serving = newest_eligible_versions(task=task)
    live = Sample.objects.live_battle()
    if task:
        live = live.filter(version__model__task=task)
    versions = (
        ModelVersion.objects.filter(pk__in=live.values("version_id"))
        .exclude(pk__in=list(serving.values()))
        .values_list("pk", "model_id", "created_at")
    )
    served_since = dict(
        ModelVersion.objects.filter(pk__in=list(serving.values())).values_list(
            "model_id", "created_at"
        )
    )
    departed = []
    for version_id, model_id, created in versions:
        # Superseded: the arena serves a newer version of its model (a newer version still
        # waiting for approval keeps its pool for when it joins).
        superseded = model_id in served_since and served_since[model_id] > created
        if superseded or _was_served(version_id):
            departed.append(version_id)
    if not departed:
        return []
    ids = list(
        Sample.objects.live_battle().filter(version_id__in=departed).values_list("pk", flat=True)
    )
    retired = retire_samples(sample_ids=ids, reason=RetiredReason.LEFT_ARENA)
    log.info(
        "retired %d battle samples of %d versions that left the arena", len(retired), len(departed)
    )
    return retired


def _was_served(version_id: int) -> bool:
    return (
        Battle.objects.filter(
            Q(sample_a__version_id=version_id) | Q(sample_b__version_id=version_id)
        ).exists()
        or BattleSample.objects.filter(sample__version_id=version_id).exists()
    )


def refill_if_low(*, version_ids: list[int]) -> list[int]:
    """Queue fresh battle samples for the versions whose live battle pool is below
    ARENA_POOL_REFILL_BELOW of prompts x GENERATOR_SEEDS_PER_PROMPT; returns those queued."""
    rows = (
        Sample.objects.filter(version_id__in=version_ids, pool=SamplePool.BATTLE)
        .values("version_id")
        .annotate(
            live=Count("id", filter=Q(retired_at__isnull=True)),
            prompts=Count("prompt_id", distinct=True),
        )
    )
    low = [
        row["version_id"]
        for row in rows
        if row["live"]
        < settings.ARENA_POOL_REFILL_BELOW * row["prompts"] * settings.GENERATOR_SEEDS_PER_PROMPT
    ]
    return request_pool_refill(version_ids=low)


def request_pool_refill(*, version_ids: list[int]) -> list[int]:
    """Send the refill task for each version, at most once per debounce window (shared cache);
    returns the versions a task was sent for. A broker that is down is logged and retried by the
    next vote or battle that needs it."""
    from config.celery import app

    sent = []
    for version_id in version_ids:
        if not cache.add(f"arena:refill:{version_id}", 1, timeout=REFILL_DEBOUNCE_SECONDS):
            continue
        try:
            app.send_task(
                task_names.GPU_REFILL_BATTLE_POOL, kwargs={"version_id": version_id}, retry=False
            )
        except Exception:
            cache.delete(f"arena:refill:{version_id}")
            log.warning(
                "could not enqueue %s for version %s",
                task_names.GPU_REFILL_BATTLE_POOL,
                version_id,
                exc_info=True,
            )
            continue
        sent.append(version_id)
    return sent


def pool_report(*, task: str, rater_id: int | None = None) -> list[dict]:
    """Per model the arena serves for `task`: its version, live battle samples, retired ones,
    public showcase and withheld samples, and how many live samples raters have not seen:
    for `rater_id`, that rater's; else the least, the median over raters who have seen any, and
    how many raters have none left."""
    from evaluation.pools import pool_counts

    serving = newest_eligible_versions(task=task)
    counts = pool_counts(version_ids=list(serving.values()))
    live = dict(
        Sample.objects.live_battle()
        .filter(version_id__in=list(serving.values()))
        .values_list("id", "version_id")
    )
    seen_by_rater: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    reveals = SampleReveal.objects.filter(sample_id__in=list(live), rater_kind=RaterKind.HUMAN)
    if rater_id is not None:
        reveals = reveals.filter(rater_id=rater_id)
    for rater, sample_id in reveals.values_list("rater_id", "sample_id"):
        seen_by_rater[live[sample_id]][rater] += 1
    names = dict(
        ModelVersion.objects.filter(pk__in=list(serving.values())).values_list("pk", "model__slug")
    )
    out = []
    for model_id, version_id in sorted(serving.items(), key=lambda kv: names.get(kv[1], "")):
        c = counts.get(version_id)
        n_live = c.live_battle if c else 0
        left = sorted(n_live - n for n in seen_by_rater[version_id].values())
        row = {
            "model": names.get(version_id, str(model_id)),
            "version_id": version_id,
            "live_battle": n_live,
            "retired": c.retired if c else 0,
            "showcase_public": c.showcase_public if c else 0,
            "withheld": c.withheld if c else 0,
        }
        if rater_id is not None:
            row["unseen"] = left[0] if left else n_live
        else:
            row["raters_with_reveals"] = len(left)
            row["unseen_min"] = left[0] if left else n_live
            row["unseen_median"] = float(left[len(left) // 2]) if left else float(n_live)
            row["raters_exhausted"] = sum(1 for n in left if n <= 0)
        out.append(row)
    return out
