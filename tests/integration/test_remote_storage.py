"""Uploads, validation and loading work on a storage without local paths (S3-compatible)."""

from __future__ import annotations

import io

import pytest

from evaluation.sample_store import checkpoint_directory
from models_registry.checkpoint_packing import archive_bytes
from models_registry.generators import load_generator
from models_registry.generators.native import WEIGHTS_FILE, build_model, save_native
from models_registry.models import Upload, VersionStatus
from models_registry.services import UploadOffsetConflict, upload_write_chunk
from pipeline.services import pipeline_validate
from tests.integration import remote_storage
from tests.integration.registry_support import (
    create_model,
    create_version,
    make_user,
    native_archive,
    start_upload,
    token_client,
    upload_all,
)
from tests.unit.test_generators_native import tiny


@pytest.fixture
def object_storage(settings, tmp_path):
    remote_storage.OBJECTS.clear()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.integration.remote_storage.MemoryObjectStorage"},
    }
    settings.CHECKPOINT_CACHE_DIR = tmp_path / "cache"
    yield remote_storage.OBJECTS
    remote_storage.OBJECTS.clear()


@pytest.mark.django_db
def test_a_checkpoint_uploads_validates_and_loads_from_object_storage(
    object_storage, settings, tmp_path
):
    import torch

    torch.manual_seed(0)
    config = tiny("flow", {"name": "euler", "steps": 2, "guidance_scale": 2.0})
    save_native(tmp_path / "ckpt", model=build_model(config), config=config)
    data = archive_bytes(
        {name: (tmp_path / "ckpt" / name).read_bytes() for name in ("config.json", WEIGHTS_FILE)},
        kind="tar",
    )
    api = token_client(make_user("alice"))
    create_model(api, "tiny-flow")
    version = create_version(api, "tiny-flow", "v1")
    body = upload_all(api, version["id"], data, chunk=len(data) // 3 + 1)
    assert body["status"] == "validating"
    # The chunks were joined into one object and removed.
    uploads = [key for key in object_storage if key.startswith("checkpoints/uploads/")]
    assert len(uploads) == 1 and object_storage[uploads[0]] == data

    ready = pipeline_validate(version_id=version["id"])
    assert ready.status == VersionStatus.READY, ready.status_reason
    unpacked = sorted(k for k in object_storage if k.startswith("checkpoints/unpacked/"))
    assert {k.rsplit("/", 1)[1] for k in unpacked} == {"config.json", "model.safetensors"}

    # A worker gets a local copy under the checkpoint's sha256 and loads the generator from it.
    ready.refresh_from_db()
    directory = checkpoint_directory(ready)
    assert directory.parent == settings.CHECKPOINT_CACHE_DIR
    assert directory.name == ready.checkpoint.sha256
    assert (directory / "model.safetensors").read_bytes() == object_storage[unpacked[1]]
    generator = load_generator(directory, device="cpu", overrides=ready.generator_config)
    pixels = generator.generate(["a red circle"], [0])
    assert pixels[0].dtype.name == "uint8" and pixels[0].shape[-1] == 3
    # A second call reuses the copy.
    assert checkpoint_directory(ready) == directory


@pytest.mark.django_db(transaction=True)
def test_a_chunk_that_loses_a_race_for_its_offset_leaves_no_object(object_storage):
    api = token_client(make_user("bob"))
    create_model(api, "tiny-flow")
    version = create_version(api, "tiny-flow", "v1")
    data = native_archive()
    upload = Upload.objects.get(pk=start_upload(api, version["id"], data).json()["id"])
    args = {"start": 0, "end": 99, "total": len(data)}
    upload_write_chunk(upload=upload, stream=io.BytesIO(data[:100]), **args)
    stale = Upload.objects.get(pk=upload.pk)
    stale.received = 0  # a second request that read the row before the first one advanced it
    with pytest.raises(UploadOffsetConflict):
        upload_write_chunk(upload=stale, stream=io.BytesIO(data[:100]), **args)
    parts = [key for key in object_storage if "/parts/" in key]
    assert len(parts) == 1 and object_storage[parts[0]] == data[:100]
