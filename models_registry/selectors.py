"""Registry reads, including the visibility rules every app uses.

A private model (and everything hanging off it: versions, samples, results) is visible only to
its owner and to staff. Unlisted models can be opened by anyone who knows them but are left out
of lists. Other apps call :func:`visible_models` / :func:`listed_models` / :func:`visible_versions`
rather than filtering on ``visibility`` themselves.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet

from models_registry.generators.cost import (
    GENERATION_FIELDS,
    GenerationSummary,
    summarise_generation,
)
from models_registry.models import GenerativeModel, ModelVersion, Upload, Visibility


def _is_staff(user) -> bool:
    return bool(user is not None and user.is_active and (user.is_staff or user.is_superuser))


def _is_authenticated(user) -> bool:
    return bool(user is not None and user.is_authenticated)


def visible_models(*, user) -> QuerySet[GenerativeModel]:
    """Models ``user`` may open: public and unlisted ones, their own, or all for staff.

    ``user`` may be anonymous (``AnonymousUser``) or ``None``.
    """
    models = GenerativeModel.objects.select_related("owner")
    if _is_staff(user):
        return models.all()
    shown = Q(visibility__in=[Visibility.PUBLIC, Visibility.UNLISTED])
    if _is_authenticated(user):
        shown |= Q(owner=user)
    return models.filter(shown)


def listed_models(*, user) -> QuerySet[GenerativeModel]:
    """Models that appear in lists for ``user``: public ones, their own, or all for staff."""
    models = GenerativeModel.objects.select_related("owner")
    if _is_staff(user):
        return models.all()
    shown = Q(visibility=Visibility.PUBLIC)
    if _is_authenticated(user):
        shown |= Q(owner=user)
    return models.filter(shown)


def owned_models(*, user) -> QuerySet[GenerativeModel]:
    """Models ``user`` may change: only their own."""
    if not _is_authenticated(user):
        return GenerativeModel.objects.none()
    return GenerativeModel.objects.select_related("owner").filter(owner=user)


def visible_versions(*, user) -> QuerySet[ModelVersion]:
    """Versions of the models in :func:`visible_models`."""
    return ModelVersion.objects.select_related(
        "model", "model__owner", "base_version__model"
    ).filter(model__in=visible_models(user=user))


def owned_versions(*, user) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("model").filter(model__in=owned_models(user=user))


def owned_uploads(*, user) -> QuerySet[Upload]:
    """Uploads ``user`` may resume, inspect or abort (their own only)."""
    if not _is_authenticated(user):
        return Upload.objects.none()
    return Upload.objects.select_related("version", "version__model").filter(owner=user)


def training_progress() -> list[dict]:
    """The demo's training jobs in queue order, as the home page and `seed_progress` show them:
    slug, label, kind, task, state, step, total, fraction (0..1), message, version_status."""
    from models_registry.models import TrainingJob

    rows = []
    for job in TrainingJob.objects.select_related("version").order_by("position", "slug"):
        version = job.version
        rows.append(
            {
                "slug": job.slug,
                "label": job.label,
                "kind": job.kind,
                "task": job.task,
                "state": job.state,
                "state_label": job.get_state_display(),
                "step": job.step,
                "total": job.total,
                "fraction": min(1.0, job.step / job.total) if job.total else 0.0,
                "message": job.message,
                "version_status": version.status if version else "",
                "version_status_label": version.get_status_display() if version else "",
            }
        )
    return rows


def training_finished(rows: list[dict]) -> bool:
    """Whether every job is over: trained (and its version published or failed) or failed."""
    from models_registry.models import TrainingKind, TrainingState, VersionStatus

    def over(row: dict) -> bool:
        if row["state"] == TrainingState.FAILED:
            return True
        if row["state"] != TrainingState.DONE:
            return False
        if row["kind"] != TrainingKind.GENERATOR:
            return True
        return row["version_status"] in (VersionStatus.PUBLISHED, VersionStatus.FAILED)

    return all(over(row) for row in rows)


def version_generation_summary(*, version: ModelVersion) -> GenerationSummary | None:
    """What generating the version's samples cost (time, device, NFE, $ from
    GENERATION_PRICES), read through `version.samples` (the registry imports no evaluation
    code); None before any sample recorded its time."""
    rows = version.samples.filter(generation_seconds__isnull=False).values_list(*GENERATION_FIELDS)
    return summarise_generation(
        rows, prices=settings.GENERATION_PRICES, fps=settings.SAMPLE_VIDEO_FPS
    )
