"""Pure checkpoint checks: archive safety, safetensors headers, config schema (no Django)."""

from __future__ import annotations

import io
import json
import pickle
import re
import stat
import struct
import tarfile
import zipfile

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from models_registry.checkpoint_packing import archive_bytes
from models_registry.checkpoint_validation import (
    ArchiveLimits,
    CheckpointRejected,
    check_native_config,
    diffusers_generator_config,
    native_generator_config,
    parse_safetensors_header,
    safe_member_path,
    validate_archive,
)
from models_registry.generators.reference import REFERENCE_SPECS, reference_spec
from models_registry.generators.reference import native_config as reference_native_config

LIMITS = ArchiveLimits(
    max_files=20,
    max_unpacked_bytes=8 * 1024**2,
    max_compression_ratio=50.0,
    max_json_bytes=64 * 1024,
    max_safetensors_header_bytes=4096,
)


def native_config(**changes) -> dict:
    """A config.json the generator loader accepts (the reference DDPM model's)."""
    config = reference_native_config(reference_spec("ref-ddpm"))
    config.update(changes)
    return config


def weights(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return st_save(
        {
            "net.weight": rng.standard_normal((8, 4)).astype(np.float32),
            "net.bias": rng.standard_normal(8).astype(np.float16),
        }
    )


def native_files(**config_changes) -> dict[str, bytes]:
    return {
        "config.json": json.dumps(native_config(**config_changes)).encode(),
        "model.safetensors": weights(),
    }


def raw_safetensors(header: dict | bytes, data: bytes, header_len: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(raw) if header_len is None else header_len
    return struct.pack("<Q", length) + raw + data


class MemorySink:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def __call__(self, path: str, stream) -> int:
        chunks = []
        while block := stream.read(7):  # odd block size exercises the replay readers
            chunks.append(block)
        self.files[path] = b"".join(chunks)
        return len(self.files[path])


def validate(data: bytes, limits: ArchiveLimits = LIMITS):
    sink = MemorySink()
    summary = validate_archive(io.BytesIO(data), archive_bytes=len(data), limits=limits, sink=sink)
    return summary, sink


def rejected(data: bytes, limits: ArchiveLimits = LIMITS) -> str:
    with pytest.raises(CheckpointRejected) as info:
        validate(data, limits)
    return str(info.value)


# --- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_native_checkpoint_is_accepted_and_unpacked_byte_for_byte(kind):
    files = native_files()
    summary, sink = validate(archive_bytes(files, kind=kind))
    assert summary.format == "native"
    assert sink.files == files
    assert summary.tensors == {"model.safetensors": 2}
    assert summary.config["resolution"] == 32


def test_single_top_folder_is_stripped():
    files = {f"my-model/{name}": content for name, content in native_files().items()}
    summary, sink = validate(archive_bytes(files))
    assert set(sink.files) == {"config.json", "model.safetensors"}
    assert summary.format == "native"


def diffusers_files() -> dict[str, bytes]:
    index = {
        "_class_name": "DDPMPipeline",
        "_diffusers_version": "0.30.0",
        "unet": ["diffusers", "UNet2DModel"],
        "scheduler": ["diffusers", "DDPMScheduler"],
        "safety_checker": [None, None],
    }
    return {
        "model_index.json": json.dumps(index).encode(),
        "unet/config.json": json.dumps({"sample_size": 32}).encode(),
        "unet/diffusion_pytorch_model.safetensors": weights(1),
        "scheduler/scheduler_config.json": json.dumps({"num_train_timesteps": 1000}).encode(),
        "README.md": b"# a tiny pipeline\n",
    }


def test_diffusers_pipeline_is_accepted():
    summary, sink = validate(archive_bytes(diffusers_files(), kind="tar.gz"))
    assert summary.format == "diffusers"
    assert summary.components == {"unet": "UNet2DModel", "scheduler": "DDPMScheduler"}
    assert sink.files["unet/diffusion_pytorch_model.safetensors"] == weights(1)


def test_pixel_space_pipeline_resolution_is_the_unets_sample_size():
    summary, _ = validate(archive_bytes(diffusers_files()))
    config = diffusers_generator_config(summary, task="text-to-image", overrides={})
    assert config["resolution"] == 32  # DDPMPipeline: no VAE, the UNet works on pixels
    override = diffusers_generator_config(
        summary, task="text-to-image", overrides={"resolution": 64}
    )
    assert override["resolution"] == 64


def test_latent_pipeline_whose_vae_config_hides_its_factor_needs_a_resolution():
    files = diffusers_files()
    index = json.loads(files["model_index.json"])
    index["vae"] = ["diffusers", "AutoencoderKL"]
    files["model_index.json"] = json.dumps(index).encode()
    files["vae/config.json"] = b"{}"
    files["vae/diffusion_pytorch_model.safetensors"] = weights(2)
    summary, _ = validate(archive_bytes(files))
    with pytest.raises(CheckpointRejected, match="cannot tell the pipeline's output resolution"):
        diffusers_generator_config(summary, task="text-to-image", overrides={})
    files["vae/config.json"] = json.dumps({"block_out_channels": [8, 16, 32]}).encode()
    summary, _ = validate(archive_bytes(files))
    config = diffusers_generator_config(summary, task="text-to-image", overrides={})
    assert config["resolution"] == 32 * 4


def test_header_parser_agrees_with_the_safetensors_library():
    rng = np.random.default_rng(3)
    tensors = {
        "a": rng.standard_normal((3, 5)).astype(np.float64),
        "b": rng.integers(0, 9, size=(2, 2, 2)).astype(np.int64),
        "c": np.zeros((0, 4), dtype=np.float32),
        "d": np.array([True, False]),
    }
    data = st_save(tensors, metadata={"source": "test"})
    metadata, parsed = parse_safetensors_header(
        io.BytesIO(data), file_size=len(data), max_header_bytes=4096
    )
    reference = st_load(data)
    assert metadata == {"source": "test"}
    assert {t.name: t.shape for t in parsed} == {k: v.shape for k, v in reference.items()}


# --- archive safety --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../evil.json", "a/../../evil.json", "/etc/passwd", "C:\\evil.json", "..\\evil.json"]
)
def test_unsafe_paths_are_rejected(name):
    with pytest.raises(CheckpointRejected, match="path traversal|absolute path"):
        safe_member_path(name)


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_path_traversal_in_archive_is_rejected(kind):
    files = dict(native_files(), **{"../../outside.json": b"{}"})
    assert "path traversal" in rejected(archive_bytes(files, kind=kind))


def test_absolute_path_in_tar_is_rejected():
    files = dict(native_files(), **{"/tmp/owned.json": b"{}"})
    assert "absolute path" in rejected(archive_bytes(files, kind="tar"))


def _tar_with(member: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in native_files().items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        archive.addfile(member)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("member_type", "word"),
    [
        (tarfile.SYMTYPE, "symlink"),
        (tarfile.LNKTYPE, "hardlink"),
        (tarfile.CHRTYPE, "device"),
        (tarfile.BLKTYPE, "device"),
        (tarfile.FIFOTYPE, "FIFO"),
    ],
)
def test_links_and_devices_in_tar_are_rejected(member_type, word):
    member = tarfile.TarInfo("extra.json")
    member.type = member_type
    member.linkname = "/etc/passwd"
    assert word in rejected(_tar_with(member))


def test_symlink_in_zip_is_rejected():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in native_files().items():
            archive.writestr(name, content)
        info = zipfile.ZipInfo("extra.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    assert "symlink" in rejected(buffer.getvalue())


def test_too_many_files_is_rejected():
    files = dict(native_files(), **{f"notes/{i}.txt": b"x" for i in range(LIMITS.max_files)})
    assert f"more than {LIMITS.max_files} entries" in rejected(archive_bytes(files))


def test_unpacked_size_over_the_limit_is_rejected():
    files = dict(native_files(), **{"big.txt": np.random.bytes(LIMITS.max_unpacked_bytes)})
    assert "unpacks to more than" in rejected(archive_bytes(files, kind="tar"))


def test_zip_bomb_compression_ratio_is_rejected():
    files = dict(native_files(), **{"zeros.txt": bytes(4 * 1024**2)})
    message = rejected(archive_bytes(files, kind="zip"))
    assert "zip bomb" in message and "zeros.txt" in message


def test_gzip_bomb_ratio_over_the_whole_archive_is_rejected():
    files = dict(native_files(), **{"zeros.txt": bytes(4 * 1024**2)})
    assert "zip bomb" in rejected(archive_bytes(files, kind="tar.gz"))


@pytest.mark.parametrize(
    "name", ["model.bin", "unet/model.pt", "weights.pth", "sd.ckpt", "x.pkl", "arr.npy"]
)
def test_pickle_based_files_are_rejected_by_name(name):
    files = dict(native_files(), **{name: b"whatever"})
    message = rejected(archive_bytes(files))
    assert "pickle" in message and name in message


def test_pickled_content_under_an_innocent_name_is_rejected():
    files = dict(native_files(), **{"notes.txt": pickle.dumps({"a": 1}, protocol=4)})
    assert "pickled data" in rejected(archive_bytes(files))


def test_torch_zip_checkpoint_disguised_as_safetensors_is_rejected():
    inner = archive_bytes({"archive/data.pkl": pickle.dumps([1, 2])})
    files = {"config.json": native_files()["config.json"], "model.safetensors": inner}
    assert "zip container" in rejected(archive_bytes(files, kind="tar"))


def test_data_pkl_inside_the_archive_is_rejected():
    files = dict(native_files(), **{"archive/data.pkl": pickle.dumps([1])})
    assert "pickle" in rejected(archive_bytes(files))


def test_unknown_file_types_are_rejected():
    files = dict(native_files(), **{"run.sh": b"rm -rf /"})
    assert "file type that is not accepted" in rejected(archive_bytes(files))


def test_not_an_archive_is_rejected():
    assert "not a readable .zip or .tar" in rejected(b"just some bytes" * 100)


def test_truncated_archive_is_rejected():
    data = archive_bytes(native_files(), kind="tar.gz")
    assert "corrupt" in rejected(data[: len(data) // 2])


# --- safetensors ---------------------------------------------------------------------------


def header_rejected(content: bytes, limit: int = 4096) -> str:
    files = {"config.json": native_files()["config.json"], "model.safetensors": content}
    limits = ArchiveLimits(**{**LIMITS.__dict__, "max_safetensors_header_bytes": limit})
    return rejected(archive_bytes(files, kind="tar"), limits)


def test_safetensors_header_over_the_limit_is_rejected():
    header = {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    padded = json.dumps(header).encode() + b" " * 5000
    assert "over the 4096-byte limit" in header_rejected(raw_safetensors(padded, b"\0" * 4))


def test_safetensors_header_length_past_end_of_file_is_rejected():
    assert "past the end" in header_rejected(raw_safetensors(b"{}", b"", header_len=1000))


def test_malformed_json_header_is_rejected():
    assert "not valid JSON" in header_rejected(raw_safetensors(b'{"w": [1, 2', b""))


def test_header_that_is_not_an_object_is_rejected():
    assert "must be a JSON object" in header_rejected(raw_safetensors(b"[1, 2, 3]", b""))


def test_offsets_outside_the_file_are_rejected():
    header = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    assert "outside the 8-byte data section" in header_rejected(raw_safetensors(header, b"\0" * 8))


def test_overlapping_tensors_are_rejected():
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }
    assert "overlaps" in header_rejected(raw_safetensors(header, b"\0" * 12))


def test_dtype_shape_not_matching_byte_length_is_rejected():
    header = {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    message = header_rejected(raw_safetensors(header, b"\0" * 8))
    assert "need 12 bytes but data_offsets span 8" in message


def test_unknown_dtype_is_rejected():
    header = {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}
    assert "unknown dtype 'F128'" in header_rejected(raw_safetensors(header, b"\0" * 16))


def test_gaps_and_trailing_bytes_are_rejected():
    gap = {"w": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}}
    assert "unreferenced bytes" in header_rejected(raw_safetensors(gap, b"\0" * 8))
    trailing = {"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}
    assert "not referenced" in header_rejected(raw_safetensors(trailing, b"\0" * 8))


def test_negative_or_boolean_shapes_are_rejected():
    header = {"w": {"dtype": "U8", "shape": [True, -1], "data_offsets": [0, 0]}}
    assert "non-negative integers" in header_rejected(raw_safetensors(header, b""))


# --- layout and config schema ----------------------------------------------------------------


def test_missing_config_and_index_is_rejected():
    message = rejected(archive_bytes({"weights.safetensors": weights()}))
    assert "model_index.json" in message and "config.json" in message


def test_native_without_config_json_is_rejected():
    message = rejected(archive_bytes({"model.safetensors": weights()}))
    assert "missing config.json" in message


def test_diffusers_component_folder_missing_is_rejected():
    files = diffusers_files()
    del files["scheduler/scheduler_config.json"]
    assert "no scheduler/ folder" in rejected(archive_bytes(files))


def test_diffusers_with_pickled_component_weights_is_rejected():
    files = diffusers_files()
    files["unet/diffusion_pytorch_model.bin"] = files.pop(
        "unet/diffusion_pytorch_model.safetensors"
    )
    assert "pickle" in rejected(archive_bytes(files))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"paradigm": "gan"}, "paradigm must be one of ['diffusion', 'score', 'flow', 'video']"),
        ({"resolution": 100000}, "resolution must be an integer in [8, 512], got 100000"),
        ({"resolution": 4}, "resolution must be an integer in [8, 512], got 4"),
        ({"resolution": "64"}, "resolution must be an integer in [8, 512], got '64'"),
        ({"resolution": 36}, "resolution must be a multiple of"),
        ({"frames": 2}, "frames must be 1 for images, got 2"),
        (
            {"task": "text-to-video"},
            "task must be 'text-to-image' or 'image-edit' for paradigm 'diffusion'",
        ),
        (
            {"task": "text-to-audio"},
            "task must be one of ['text-to-image', 'text-to-video', 'image-edit']",
        ),
        ({"format": "pickle"}, "format must be 'native'"),
        ({"paradigm": "video"}, "task must be 'text-to-video' for paradigm 'video'"),
        ({"architecture": [1, 2]}, "architecture.type must be 'unet'"),
        ({"surprise": 1}, "unknown keys ['surprise']"),
        ({"sampler": {"name": "euler", "steps": 8, "guidance_scale": 1.0}}, "does not fit"),
    ],
)
def test_config_values_outside_the_schema_are_rejected(changes, fragment):
    assert fragment in rejected(archive_bytes(native_files(**changes)))


def test_config_missing_required_keys_is_rejected():
    config = native_config()
    del config["resolution"], config["architecture"]
    with pytest.raises(CheckpointRejected, match="missing required keys: architecture, resolution"):
        check_native_config(config)


def test_video_config_is_accepted():
    spec = next(s for s in REFERENCE_SPECS if s.paradigm == "video")
    config = check_native_config(reference_native_config(spec))
    assert config["task"] == "text-to-video" and config["frames"] >= 2


def test_version_generator_config_is_merged_by_the_loaders_rules():
    summary, _ = validate(archive_bytes(native_files()))
    config = native_generator_config(
        summary, task="text-to-image", overrides={"sampler": {"name": "ddim"}, "steps": 7}
    )
    # Another sampler keeps the checkpoint's guidance scale (ref-ddpm: ancestral, CFG 5).
    assert config["sampler"] == {"name": "ddim", "steps": 7, "guidance_scale": 5.0}
    for overrides, fragment in [
        ({"steps": 2000}, "sampler.steps must be an integer in [1, 1000], got 2000"),
        ({"sampler": "euler"}, "sampler.name 'euler' does not fit paradigm 'diffusion'"),
        ({"resolution": 36}, "resolution must be a multiple of 8"),
        ({"frames": 8}, "frames must be 1 for images, got 8"),
    ]:
        with pytest.raises(CheckpointRejected, match=re.escape(fragment)):
            native_generator_config(summary, task="text-to-image", overrides=overrides)


def test_config_json_that_is_not_json_is_rejected():
    files = dict(native_files(), **{"config.json": b"{not json"})
    assert "'config.json' is not valid JSON" in rejected(archive_bytes(files))
