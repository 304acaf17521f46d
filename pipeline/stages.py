"""Stage bookkeeping: one `stage_run` context manager records start, progress, done, fail, skip.

Every pipeline service runs its domain service inside `stage_run` and hands it the run's
`progress` callable, so the API, the model page and the admin all read the same `VersionStage`
row, and domain code never imports stage code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from pipeline.models import Stage, StageState, VersionStage

REASON_MAX_CHARS = 4000


def _row(version_id: int, stage: str) -> VersionStage:
    row, _ = VersionStage.objects.get_or_create(version_id=version_id, stage=Stage(stage))
    return row


def _finish(*, version_id: int, stage: str, state: str, reason: str = "") -> None:
    row = _row(version_id, stage)
    row.state = state
    row.reason = reason[:REASON_MAX_CHARS]
    if state == StageState.DONE:
        row.done = max(row.done, row.total)
    row.finished_at = timezone.now()
    row.save()


class StageRun:
    """Handle of a running stage: report progress, or end it failed or unfinished."""

    def __init__(self, *, version_id: int, stage: str) -> None:
        self.version_id = version_id
        self.stage = stage
        self.outcome: tuple[str, str] | None = None  # (state, reason) chosen inside the block
        self.finished = True

    def _rows(self):
        return VersionStage.objects.filter(version_id=self.version_id, stage=self.stage)

    def progress(self, done: int, total: int | None = None) -> None:
        """Units done so far (absolute), and the total when it is known only now."""
        fields = {"done": done, "updated_at": timezone.now()}
        if total is not None:
            fields["total"] = total
        self._rows().update(**fields)

    def advance(self, by: int = 1) -> None:
        self._rows().update(done=F("done") + by, updated_at=timezone.now())

    @property
    def skipped_reason(self) -> str | None:
        """Why the stage was skipped (read after the block), or None."""
        skipped = self.outcome and self.outcome[0] == StageState.SKIPPED
        return self.outcome[1] if skipped else None

    def fail(self, reason: str) -> None:
        """End the stage failed with a readable reason, without raising (e.g. a rejection)."""
        self.outcome = (StageState.FAILED, reason)

    def leave_running(self) -> None:
        """This run did its share; another run (a parallel chunk) finishes the stage."""
        self.finished = False


@contextmanager
def stage_run(
    *,
    version_id: int,
    stage: str,
    total: int = 0,
    readable: tuple[type[BaseException], ...] = (),
    skip_on: tuple[type[BaseException], ...] = (),
) -> Iterator[StageRun]:
    """Run one stage of a version: running on entry; done, skipped or failed on exit.

    An exception in `skip_on` skips the stage with its message and is not raised; any other
    exception fails the stage and is re-raised. Exceptions in `readable` carry a message meant
    for the author and are recorded as is; others are recorded as "TypeName: message".
    """
    with transaction.atomic():
        row = _row(version_id, stage)
        row.state = StageState.RUNNING
        row.total = total
        row.reason = ""
        row.started_at = row.started_at or timezone.now()
        row.finished_at = None
        row.save()
    run = StageRun(version_id=version_id, stage=stage)
    try:
        yield run
    except skip_on as exc:
        run.outcome = (StageState.SKIPPED, str(exc))
        _finish(version_id=version_id, stage=stage, state=StageState.SKIPPED, reason=str(exc))
        return
    except Exception as exc:
        reason = str(exc) if isinstance(exc, readable) else f"{type(exc).__name__}: {exc}"
        _finish(version_id=version_id, stage=stage, state=StageState.FAILED, reason=reason)
        raise
    if run.outcome is not None:
        state, reason = run.outcome
        _finish(version_id=version_id, stage=stage, state=state, reason=reason)
    elif run.finished:
        _finish(version_id=version_id, stage=stage, state=StageState.DONE)


def stages_pending(*, version_id: int, stages: list[str]) -> None:
    """Queue `stages` of a version again: pending, no reason, not finished."""
    for stage in stages:
        VersionStage.objects.update_or_create(
            version_id=version_id,
            stage=stage,
            defaults={"state": StageState.PENDING, "reason": "", "finished_at": None},
        )


def stage_wait(*, version_id: int, stage: str, reason: str) -> None:
    """Leave a stage pending with a reason (e.g. waiting for a maintainer)."""
    VersionStage.objects.filter(version_id=version_id, stage=stage).update(
        state=StageState.PENDING, reason=reason, updated_at=timezone.now()
    )
