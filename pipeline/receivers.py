"""The pipeline's answers to the registry's signals (connected in PipelineConfig.ready)."""

from __future__ import annotations

from django.dispatch import receiver

from models_registry.signals import arena_approved, checkpoint_finalized
from pipeline.services import arena_stage_resume, validation_enqueue


@receiver(checkpoint_finalized, dispatch_uid="pipeline-validate-finalized-checkpoint")
def validate_finalized_checkpoint(sender, *, version_id: int, **kwargs) -> None:
    validation_enqueue(version_id=version_id)


@receiver(arena_approved, dispatch_uid="pipeline-publish-approved-version")
def publish_approved_version(sender, *, version_id: int, **kwargs) -> None:
    arena_stage_resume(version_id=version_id)  # a version waiting for approval is published now
