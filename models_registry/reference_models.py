"""Service: register a trained reference generator as a public model with a ready version.

The native files are copied into media storage under `checkpoints/reference/<slug>-<sha12>/`
(the version's unpacked checkpoint directory), owned by the system user
`settings.REFERENCE_MODELS_OWNER`. Registering the same weights again changes nothing; new
weights (a retrain) become the next version tag.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from models_registry.models import (
    Checkpoint,
    CheckpointFormat,
    GenerativeModel,
    ModelVersion,
    Paradigm,
    VersionStatus,
    Visibility,
)

REFERENCE_DIR = "checkpoints/reference"
# Native paradigm -> registry paradigm ("video" is flow matching over clips).
PARADIGM = {
    "diffusion": Paradigm.DIFFUSION,
    "score": Paradigm.SCORE,
    "flow": Paradigm.FLOW,
    "video": Paradigm.FLOW,
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def reference_owner():
    user, created = get_user_model().objects.get_or_create(username=settings.REFERENCE_MODELS_OWNER)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _store(name: str, source: Path) -> str:
    if default_storage.exists(name):
        return name
    with open(source, "rb") as handle:
        stored = default_storage.save(name, File(handle))
    if stored != name:  # a concurrent writer won the name; keep one copy
        default_storage.delete(stored)
    return name


def register_reference_model(
    *, directory: Path, slug: str, display_name: str, description: str
) -> tuple[ModelVersion, bool]:
    """Register the native checkpoint in `directory`; returns (version, created).

    The model is public, the version ready and arena-approved, its generator config is the
    checkpoint's config.json, and its Checkpoint row records size and sha256 of the weights.
    """
    config = json.loads((directory / "config.json").read_text())
    weights = directory / "model.safetensors"
    sha = file_sha256(weights)
    folder = f"{REFERENCE_DIR}/{slug}-{sha[:12]}"
    weights_name = _store(f"{folder}/model.safetensors", weights)
    _store(f"{folder}/config.json", directory / "config.json")
    owner = reference_owner()
    with transaction.atomic():
        model, _ = GenerativeModel.objects.update_or_create(
            slug=slug,
            defaults={
                "display_name": display_name,
                "task": config["task"],
                "paradigm": PARADIGM[config["paradigm"]],
                "description": description,
                "license": "MIT",
                "owner": owner,
                "visibility": Visibility.PUBLIC,
            },
        )
        existing = (
            ModelVersion.objects.filter(model=model, checkpoint__sha256=sha)
            .select_for_update()
            .first()
        )
        if existing is not None:
            return existing, False
        tag = f"v{model.versions.count() + 1}"
        version = ModelVersion.objects.create(
            model=model,
            tag=tag,
            generator_config=config,
            status=VersionStatus.READY,
            arena_approved=True,
        )
        Checkpoint.objects.create(
            version=version,
            file=weights_name,
            format=CheckpointFormat.NATIVE,
            size=weights.stat().st_size,
            sha256=sha,
            unpacked_path=folder,
        )
    return version, True
