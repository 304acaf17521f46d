"""Pipeline stage bookkeeping: state, progress (done / total) and failure reason of a version's stage.

Every task that works on a version reports through these functions, so the API, the model page and
the admin all read the same `VersionStage` row.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from models_registry.models import Stage, StageState, VersionStage


def _row(version_id: int, stage: str) -> VersionStage:
    row, _ = VersionStage.objects.get_or_create(version_id=version_id, stage=Stage(stage))
    return row


def stage_start(*, version_id: int, stage: str, total: int = 0) -> VersionStage:
    """Mark a stage running with `total` units of work; progress restarts from what is done."""
    with transaction.atomic():
        row = _row(version_id, stage)
        row.state = StageState.RUNNING
        row.total = total
        row.reason = ""
        row.started_at = row.started_at or timezone.now()
        row.finished_at = None
        row.save()
    return row


def stage_progress(*, version_id: int, stage: str, done: int) -> None:
    VersionStage.objects.filter(version_id=version_id, stage=stage).update(
        done=done, updated_at=timezone.now()
    )


def stage_advance(*, version_id: int, stage: str, by: int = 1) -> None:
    VersionStage.objects.filter(version_id=version_id, stage=stage).update(
        done=F("done") + by, updated_at=timezone.now()
    )


def stage_done(*, version_id: int, stage: str) -> None:
    row = _row(version_id, stage)
    row.state = StageState.DONE
    row.done = max(row.done, row.total)
    row.finished_at = timezone.now()
    row.save()


def stage_skip(*, version_id: int, stage: str, reason: str) -> None:
    row = _row(version_id, stage)
    row.state = StageState.SKIPPED
    row.reason = reason
    row.finished_at = timezone.now()
    row.save()


def stage_fail(*, version_id: int, stage: str, reason: str) -> None:
    """Record a readable failure reason (shown to the author and maintainers)."""
    row = _row(version_id, stage)
    row.state = StageState.FAILED
    row.reason = reason[:4000]
    row.finished_at = timezone.now()
    row.save()
