"""Checkpoint validation end to end: upload over the API, validate, ready or rejected + cleaned."""

from __future__ import annotations

import io
import json
import pickle
import stat
import struct
import tarfile
import zipfile

import numpy as np
import pytest
from django_celery_results.models import TaskResult
from safetensors.numpy import save as st_save

from models_registry.checkpoint_packing import archive_bytes
from models_registry.generators.reference import REFERENCE_SPECS
from models_registry.generators.reference import native_config as reference_native_config
from models_registry.models import (
    Checkpoint,
    ModelVersion,
    Upload,
    VersionStatus,
)
from pipeline.models import StageState, VersionStage
from pipeline.services import pipeline_validate
from tests.conftest import wait_for
from tests.integration.registry_support import (
    create_model,
    create_version,
    make_user,
    native_archive,
    native_config,
    stored_files,
    token_client,
    upload_all,
)

VIDEO_SPEC = next(spec for spec in REFERENCE_SPECS if spec.paradigm == "video")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def api(db):
    client = token_client(make_user("alice"))
    create_model(client, "tiny-flow")
    return client


def submit(api, data: bytes, **version_fields) -> int:
    """Upload ``data`` as a new version, check validation was queued, then run it here."""
    version = create_version(api, "tiny-flow", f"v{ModelVersion.objects.count()}", **version_fields)
    body = upload_all(api, version["id"], data)
    assert body["status"] == "validating"
    pipeline_validate(version_id=version["id"])
    return version["id"]


def assert_rejected(api, version_id: int, fragment: str, media) -> None:
    body = api.get(f"/api/v1/versions/{version_id}/").json()
    assert body["status"] == "rejected", body
    assert fragment in body["status_reason"], body["status_reason"]
    assert body["checkpoint"] is None
    assert stored_files(media) == []
    assert not Upload.objects.filter(version_id=version_id).exists()
    assert not Checkpoint.objects.filter(version_id=version_id).exists()
    stage = VersionStage.objects.get(version_id=version_id, stage="validate")
    assert stage.state == StageState.FAILED and fragment in stage.reason


# --- accepted ----------------------------------------------------------------------------------


def test_valid_native_checkpoint_becomes_ready_and_is_unpacked(
    api, media, django_capture_on_commit_callbacks
):
    data = native_archive(kind="tar.gz")
    version = create_version(api, "tiny-flow", "v1", generator_config={"sampler": {"steps": 8}})
    with django_capture_on_commit_callbacks() as callbacks:
        upload_all(api, version["id"], data)
    assert len(callbacks) == 1  # validation is queued only once the finalize commits
    pipeline_validate(version_id=version["id"])
    body = api.get(f"/api/v1/versions/{version['id']}/").json()
    assert body["status"] == "ready", body
    assert body["checkpoint"]["format"] == "native" and body["checkpoint"]["size"] == len(data)
    assert body["generator_config"]["paradigm"] == "flow"
    assert body["generator_config"]["sampler"] == {
        "name": "euler",
        "steps": 8,
        "guidance_scale": 3.0,
    }
    checkpoint = Checkpoint.objects.get(version_id=version["id"])
    assert checkpoint.unpacked_path == f"checkpoints/unpacked/{version['id']}"
    unpacked = media / checkpoint.unpacked_path
    assert json.loads((unpacked / "config.json").read_text())["resolution"] == 32
    assert (unpacked / "model.safetensors").stat().st_size > 1024
    # Validation is done and the evaluation pipeline's stages are queued behind it.
    assert [(s["stage"], s["state"]) for s in body["stages"]] == [
        ("validate", "done"),
        ("generate", "pending"),
        ("metrics", "pending"),
        ("judge", "pending"),
        ("arena", "pending"),
    ]
    assert body["stages"][0]["state"] == "done"
    # Running the task again (a redelivery) changes nothing.
    assert pipeline_validate(version_id=version["id"]).status == VersionStatus.READY


def ddpm_pipeline_files(*, vae: bool = True) -> dict[str, bytes]:
    """A minimal DDPMPipeline folder (a unet, a scheduler, optionally a VAE) as archive members."""
    rng = np.random.default_rng(0)
    index = {"_class_name": "DDPMPipeline", "unet": ["diffusers", "UNet2DModel"]}
    if vae:
        index["vae"] = ["diffusers", "AutoencoderKL"]
    index["scheduler"] = ["diffusers", "DDPMScheduler"]
    weights = st_save({"w": rng.standard_normal((4, 4)).astype(np.float32)})
    files = {
        "pipe/model_index.json": json.dumps(index).encode(),
        "pipe/unet/config.json": json.dumps({"sample_size": 16}).encode(),
        "pipe/unet/diffusion_pytorch_model.safetensors": weights,
        "pipe/scheduler/scheduler_config.json": b"{}",
    }
    if vae:
        files["pipe/vae/config.json"] = json.dumps({"block_out_channels": [8, 16]}).encode()
        files["pipe/vae/diffusion_pytorch_model.safetensors"] = weights
    return files


def test_valid_diffusers_pipeline_becomes_ready(api, media):
    version_id = submit(api, archive_bytes(ddpm_pipeline_files(), kind="zip"))
    version = ModelVersion.objects.get(pk=version_id)
    assert version.status == VersionStatus.READY, version.status_reason
    assert version.generator_config["resolution"] == 32  # sample_size 16 x VAE factor 2
    assert version.generator_config["pipeline_class"] == "DDPMPipeline"
    assert (media / f"checkpoints/unpacked/{version_id}/unet/config.json").exists()


@pytest.mark.parametrize(
    ("sampler", "fragment"),
    [
        ({"scheduler": "DDIMScheduler", "eta": 0.3}, "sampler has unknown keys ['eta']"),
        ({"scheduler": "NoSuchScheduler"}, "scheduler must be a diffusers scheduler class"),
        ({"image_guidance_scale": 1.5}, "unknown keys ['image_guidance_scale']"),
    ],
)
def test_a_bad_diffusers_sampler_is_refused_at_upload_not_at_generation(
    api, media, sampler, fragment
):
    version_id = submit(
        api,
        archive_bytes(ddpm_pipeline_files(vae=False), kind="zip"),
        generator_config={"sampler": sampler},
    )
    assert_rejected(api, version_id, fragment, media)


# --- every rejection case ----------------------------------------------------------------------


def tar_with_special(member_type: int) -> bytes:
    base = native_archive(kind="tar")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        with tarfile.open(fileobj=io.BytesIO(base)) as source:
            for member in source:
                archive.addfile(member, source.extractfile(member))
        special = tarfile.TarInfo("extra.json")
        special.type = member_type
        special.linkname = "/etc/passwd"
        archive.addfile(special)
    return buffer.getvalue()


def zip_with_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        with zipfile.ZipFile(io.BytesIO(native_archive(kind="zip"))) as source:
            for name in source.namelist():
                archive.writestr(name, source.read(name))
        info = zipfile.ZipInfo("link.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def weights_file(header: dict | bytes, data: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def with_weights(content: bytes) -> bytes:
    config = json.dumps(native_config()).encode()
    return archive_bytes({"config.json": config, "model.safetensors": content}, kind="tar")


REJECTIONS = {
    "path traversal": (
        lambda: native_archive(**{"../../escape.json": b"{}"}),
        "path traversal",
    ),
    "absolute path": (lambda: native_archive(**{"/etc/cron.d/x.json": b"{}"}), "absolute path"),
    "symlink in tar": (lambda: tar_with_special(tarfile.SYMTYPE), "symlink"),
    "hardlink in tar": (lambda: tar_with_special(tarfile.LNKTYPE), "hardlink"),
    "device in tar": (lambda: tar_with_special(tarfile.CHRTYPE), "device"),
    "symlink in zip": (zip_with_symlink, "symlink"),
    "too many files": (
        lambda: native_archive(**{f"n/{i}.txt": b"x" for i in range(12)}),
        "more than 10 entries",
    ),
    "unpacked size": (
        lambda: native_archive(**{"big.txt": np.random.bytes(4 * 1024**2 + 1)}),
        "unpacks to more than 4194304 bytes",
    ),
    "zip bomb": (lambda: native_archive(kind="zip", **{"z.txt": bytes(2 * 1024**2)}), "zip bomb"),
    "pickled .bin": (lambda: native_archive(**{"pytorch_model.bin": b"\x80\x04K\x01."}), "pickle"),
    "pickle inside zip": (
        lambda: native_archive(kind="zip", **{"archive/data.pkl": pickle.dumps([1])}),
        "pickle",
    ),
    "pickled content": (
        lambda: native_archive(**{"notes.txt": pickle.dumps({"a": 1}, protocol=5)}),
        "pickled data",
    ),
    "safetensors header over limit": (
        lambda: with_weights(weights_file(b"{" + b" " * 5000 + b"}", b"")),
        "over the 4096-byte limit",
    ),
    "malformed safetensors header": (
        lambda: with_weights(weights_file(b'{"w": {"dtype": "F32"', b"")),
        "not valid JSON",
    ),
    "offsets outside the file": (
        lambda: with_weights(
            weights_file({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}, bytes(8))
        ),
        "outside the 8-byte data section",
    ),
    "overlapping tensors": (
        lambda: with_weights(
            weights_file(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
                },
                bytes(12),
            )
        ),
        "overlaps another tensor",
    ),
    "dtype/shape vs byte length": (
        lambda: with_weights(
            weights_file(
                {"w": {"dtype": "F16", "shape": [3, 3], "data_offsets": [0, 16]}}, bytes(16)
            )
        ),
        "need 18 bytes but data_offsets span 16",
    ),
    "missing config and index": (
        lambda: archive_bytes({"weights.safetensors": st_save({"w": np.zeros(2, np.float32)})}),
        "neither model_index.json",
    ),
    "missing model_index component": (
        lambda: archive_bytes(
            {
                "model_index.json": json.dumps(
                    {"_class_name": "P", "unet": ["diffusers", "UNet2DModel"]}
                ).encode(),
                "other/config.json": b"{}",
            }
        ),
        "no unet/ folder",
    ),
    "unknown paradigm": (
        lambda: native_archive(config=native_config(paradigm="gan")),
        "paradigm must be one of ['diffusion', 'score', 'flow', 'video'], got 'gan'",
    ),
    "absurd resolution": (
        lambda: native_archive(config=native_config(resolution=65536)),
        "resolution must be an integer in [8, 512], got 65536",
    ),
    "absurd frame count": (
        lambda: native_archive(config=native_config(frames=100000)),
        "frames must be 1 for images, got 100000",
    ),
    "task differs from the model": (
        lambda: native_archive(config=reference_native_config(VIDEO_SPEC)),
        "does not match the model's task 'text-to-image'",
    ),
    "not loadable by the generator": (
        lambda: native_archive(config=native_config(architecture={"type": "mlp"})),
        "architecture.type must be 'unet'",
    ),
    "bad sampler override": (
        lambda: native_archive(config=native_config(sampler={"name": "ddpm", "steps": 5})),
        "does not fit paradigm 'flow'",
    ),
    "not an archive": (lambda: b"\x80\x04" + b"pickle?" * 100, "not a readable .zip or .tar"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_every_rejection_leaves_a_reason_and_nothing_stored(api, media, settings, case):
    settings.CHECKPOINT_MAX_FILES = 10
    settings.CHECKPOINT_MAX_UNPACKED_BYTES = 4 * 1024**2
    settings.CHECKPOINT_MAX_COMPRESSION_RATIO = 20.0
    settings.SAFETENSORS_MAX_HEADER_BYTES = 4096
    build, fragment = REJECTIONS[case]
    version_id = submit(api, build())
    assert_rejected(api, version_id, fragment, media)


def test_a_rejected_version_takes_a_new_upload_that_can_pass(api, media):
    version_id = submit(api, native_archive(config=native_config(paradigm="gan")))
    assert ModelVersion.objects.get(pk=version_id).status == VersionStatus.REJECTED
    upload_all(api, version_id, native_archive())
    pipeline_validate(version_id=version_id)
    version = ModelVersion.objects.get(pk=version_id)
    assert version.status == VersionStatus.READY and version.status_reason == ""
    assert VersionStage.objects.get(version=version, stage="validate").state == StageState.DONE


# --- a real worker ---------------------------------------------------------------------------


def test_validation_runs_on_a_real_celery_worker(child_env, celery_workers, media):
    env = dict(child_env, MEDIA_ROOT=str(media))
    celery_workers.start(env, queues="default", name="registry")
    api = token_client(make_user("carol"))
    create_model(api, "tiny-flow")
    good = create_version(api, "tiny-flow", "good")
    bad = create_version(api, "tiny-flow", "bad")
    upload_all(api, good["id"], native_archive())
    upload_all(api, bad["id"], native_archive(**{"model.ckpt": b"\x80\x04."}))

    def finished(version_id: int):
        version = ModelVersion.objects.get(pk=version_id)
        return version if version.status not in ("validating", "uploading") else None

    ready = wait_for(lambda: finished(good["id"]), timeout=120, message="validation of 'good'")
    rejected = wait_for(lambda: finished(bad["id"]), timeout=120, message="validation of 'bad'")
    # Validation passed: the version is ready and its pipeline has already started to move it on.
    assert ready.status in ("ready", "generating"), ready.status_reason
    assert VersionStage.objects.get(version=ready, stage="validate").state == StageState.DONE
    assert rejected.status == "rejected" and "pickle" in rejected.status_reason
    assert (media / f"checkpoints/unpacked/{good['id']}/model.safetensors").exists()
    assert not (media / f"checkpoints/unpacked/{bad['id']}").exists()

    def statuses() -> dict:
        rows = TaskResult.objects.filter(
            task_name="workers.tasks.validate_checkpoint", status="SUCCESS"
        )
        results = [json.loads(row.result) for row in rows]
        found = {r["version_id"]: r["status"] for r in results}
        return found if {good["id"], bad["id"]} <= set(found) else None

    found = wait_for(statuses, timeout=60, message="both task results to be stored")
    assert found[good["id"]] == "ready" and found[bad["id"]] == "rejected"
    assert "workers.tasks.validate_checkpoint" in celery_workers.log("registry")
