"""LoRA adapter versions end to end: a tiny SD-like base pipeline submitted over the API, a real
peft LoRA adapter for its UNet submitted as a version on it (`base_version`), validated by
loading it onto the base, then generated through the sample store; and every refusal."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from django.db.models import ProtectedError
from PIL import Image

from evaluation.models import Sample
from evaluation.sample_store import generate_samples
from models_registry.checkpoint_packing import archive_bytes
from models_registry.models import ModelVersion, VersionStatus
from models_registry.services import api_token_create
from pipeline.services import pipeline_validate
from tests.integration.registry_support import (
    create_model,
    create_version,
    make_user,
    native_archive,
    token_client,
    upload_all,
)
from tests.integration.test_generation_task import tiny_prompt_set
from tests.unit.test_generators_diffusers import (
    t2i_dir,  # noqa: F401 (fixture)
    tiny_unet,
)

ROOT = Path(__file__).resolve().parents[2]
LORA_FILE = "pytorch_lora_weights.safetensors"
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def make_lora(directory: Path, unet, *, seed: int = 1) -> Path:
    """A peft LoRA on the UNet's attention projections with random non-zero A and B, saved the
    way diffusers training scripts save it (safetensors)."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=TARGETS, init_lora_weights=False))
    StableDiffusionPipeline.save_lora_weights(
        directory, unet_lora_layers=get_peft_model_state_dict(unet), safe_serialization=True
    )
    return directory


@pytest.fixture(scope="module")
def lora_dir(t2i_dir, tmp_path_factory) -> Path:  # noqa: F811
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(t2i_dir / "unet", use_safetensors=True)
    return make_lora(tmp_path_factory.mktemp("lora"), unet)


@pytest.fixture(scope="module")
def wrong_lora_dir(tmp_path_factory) -> Path:
    """An adapter trained for a wider UNet: same layer names, other shapes."""
    return make_lora(tmp_path_factory.mktemp("wrong-lora"), tiny_unet((32, 64)))


def tar_of(directory: Path) -> bytes:
    files = {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    return archive_bytes(files, kind="tar")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def alice(db):
    return token_client(make_user("alice"))


def submit(client, slug: str, tag: str, data: bytes, **fields) -> dict:
    version = create_version(client, slug, tag, **fields)
    upload_all(client, version["id"], data)
    pipeline_validate(version_id=version["id"])
    return client.get(f"/api/v1/versions/{version['id']}/").json()


@pytest.fixture
def base(alice, t2i_dir) -> dict:  # noqa: F811
    create_model(alice, "tiny-sd", paradigm="diffusion")
    body = submit(
        alice, "tiny-sd", "v1", tar_of(t2i_dir), generator_config={"sampler": {"steps": 2}}
    )
    assert body["status"] == "ready", body["status_reason"]
    return body


def pixels(version_id: int) -> dict[tuple[str, int], np.ndarray]:
    return {
        (sample.prompt.text, sample.seed): np.asarray(Image.open(sample.media.open("rb")))
        for sample in Sample.objects.filter(version_id=version_id).select_related("prompt")
    }


def test_lora_version_validates_on_its_base_and_generates_what_a_manual_load_gives(
    alice,
    base,
    lora_dir,
    t2i_dir,  # noqa: F811
):
    from diffusers import StableDiffusionPipeline

    body = submit(
        alice,
        "tiny-sd",
        "v1-style",
        tar_of(lora_dir),
        base_version="tiny-sd@v1",
        generator_config={"lora_scale": 0.8},
    )
    assert body["status"] == "ready", body["status_reason"]
    assert body["base_version"] == "tiny-sd@v1"
    assert body["checkpoint"]["format"] == "lora"
    config = body["generator_config"]
    assert config["format"] == "lora" and config["base_version"] == "tiny-sd@v1"
    assert (
        config["lora_scale"] == 0.8
        and config["resolution"] == base["generator_config"]["resolution"]
    )
    assert config["sampler"] == {"steps": 2}  # inherited from the base version

    prompt_set = tiny_prompt_set(n=2)
    for version_id in (base["id"], body["id"]):
        report = generate_samples(
            version_id=version_id, prompt_set_slug=prompt_set.slug, seeds=[0], device="cpu"
        )
        assert report.complete
    base_pixels, lora_pixels = pixels(base["id"]), pixels(body["id"])
    assert base_pixels.keys() == lora_pixels.keys() and len(lora_pixels) == 2

    manual = StableDiffusionPipeline.from_pretrained(t2i_dir, use_safetensors=True)
    manual.load_lora_weights(lora_dir, weight_name=LORA_FILE, adapter_name="style")
    manual.set_adapters(["style"], adapter_weights=[0.8])
    manual.set_progress_bar_config(disable=True)
    for (prompt, seed), image in lora_pixels.items():
        out = manual(
            prompt=[prompt],
            num_inference_steps=2,
            guidance_scale=5.0,
            height=32,
            width=32,
            generator=[torch.Generator().manual_seed(seed)],
            output_type="np",
        ).images
        expected = np.clip(np.rint(out[0] * 255.0), 0, 255).astype(np.uint8)
        assert np.array_equal(image, expected)
        # The adapter changes the pictures.
        diff = np.abs(image.astype(int) - base_pixels[(prompt, seed)].astype(int))
        assert diff.mean() > 1.0, diff.mean()
    # The base cannot be deleted from under its adapter.
    with pytest.raises(ProtectedError):
        ModelVersion.objects.get(pk=base["id"]).delete()


def _rejected(client, version_id: int, fragment: str) -> None:
    body = client.get(f"/api/v1/versions/{version_id}/").json()
    assert body["status"] == "rejected", body
    assert fragment in body["status_reason"], body["status_reason"]
    assert body["checkpoint"] is None


def test_adapters_that_do_not_fit_are_rejected_with_the_reason(
    alice,
    base,
    lora_dir,
    wrong_lora_dir,
    t2i_dir,  # noqa: F811
):
    from safetensors.torch import load_file, save

    # A pickled adapter: refused before anything is loaded.
    pickled = archive_bytes({"pytorch_lora_weights.bin": pickle.dumps({"w": 1})}, kind="tar")
    body = submit(alice, "tiny-sd", "pickled", pickled, base_version="tiny-sd@v1")
    _rejected(alice, body["id"], "pickle-based file")
    # Pickle bytes under the safetensors name: not a safetensors header.
    disguised = archive_bytes({LORA_FILE: pickle.dumps({"w": 1})}, kind="tar")
    body = submit(alice, "tiny-sd", "disguised", disguised, base_version="tiny-sd@v1")
    assert body["status"] == "rejected" and LORA_FILE in body["status_reason"]

    # An adapter for another UNet: the shapes do not match.
    body = submit(alice, "tiny-sd", "wrong", tar_of(wrong_lora_dir), base_version="tiny-sd@v1")
    _rejected(alice, body["id"], "the LoRA adapter does not fit the base pipeline")
    assert "size mismatch" in body["status_reason"]

    # An adapter with tensors for layers the base does not have (diffusers would only warn).
    tensors = load_file(lora_dir / LORA_FILE)
    tensors["unet.no_such_block.to_q.lora_A.weight"] = torch.ones(4, 32)
    tensors["unet.no_such_block.to_q.lora_B.weight"] = torch.ones(32, 4)
    extra = archive_bytes({LORA_FILE: save(tensors)}, kind="tar")
    body = submit(alice, "tiny-sd", "extra", extra, base_version="tiny-sd@v1")
    _rejected(alice, body["id"], "2 of its 66 tensors match no layer of the base")
    assert "unet.no_such_block.to_q.lora_A.weight" in body["status_reason"]

    # A full pipeline uploaded as an adapter, and an adapter uploaded to a full version.
    body = submit(alice, "tiny-sd", "full", tar_of(t2i_dir), base_version="tiny-sd@v1")
    _rejected(alice, body["id"], "upload an archive holding pytorch_lora_weights.safetensors")
    body = submit(alice, "tiny-sd", "no-base", tar_of(lora_dir))
    _rejected(alice, body["id"], "create the version with base_version")


def test_bases_the_author_may_not_use_are_refused_at_creation(alice, base, db):
    def refused(slug: str, fields: dict, fragment: str) -> None:
        response = alice.post(
            f"/api/v1/models/{slug}/versions/", {"tag": "lora", **fields}, format="json"
        )
        assert response.status_code == 400, response.json()
        assert fragment in response.json()["detail"], response.json()
        field = "generator_config" if "generator_config" in fields else "base_version"
        assert response.json()["field"] == field

    # Another owner's private model: it does not exist for alice.
    bob = token_client(make_user("bob"))
    create_model(bob, "bob-sd", paradigm="diffusion")
    bob_version = create_version(bob, "bob-sd", "v1")
    ModelVersion.objects.filter(pk=bob_version["id"]).update(status=VersionStatus.READY)
    refused("tiny-sd", {"base_version": "bob-sd@v1"}, "no such version among the models you can")
    refused("tiny-sd", {"base_version": bob_version["id"]}, "no such version among the models")
    # A native (non-diffusers) base.
    create_model(alice, "tiny-flow")
    native = submit(alice, "tiny-flow", "v1", native_archive())
    assert native["status"] == "ready", native["status_reason"]
    refused("tiny-flow", {"base_version": "tiny-flow@v1"}, "is a native checkpoint")
    # Another task, a base not validated yet, a malformed reference, lora_scale on a full version.
    create_model(alice, "tiny-t2v", task="text-to-video", paradigm="diffusion")
    refused("tiny-t2v", {"base_version": "tiny-sd@v1"}, "generates text-to-image but")
    create_version(alice, "tiny-sd", "draft")
    refused("tiny-sd", {"base_version": "tiny-sd@draft"}, "is draft; only a validated version")
    refused("tiny-sd", {"base_version": "tiny-sd"}, "must be a version id or '<model-slug>@<tag>'")
    refused("tiny-sd", {"base_version": "\u00b2"}, "must be a version id")  # a non-ASCII digit
    refused("tiny-sd", {"base_version": "9" * 25}, "no such version among the models")
    refused("tiny-sd", {"generator_config": {"lora_scale": 0.5}}, "applies only to a LoRA")
    refused(
        "tiny-sd",
        {"base_version": "tiny-sd@v1", "generator_config": {"lora_scale": 5}},
        "lora_scale must be a number from 0.0 to 2.0",
    )


def test_runtime_options_are_refused_on_native_checkpoints(alice):
    create_model(alice, "tiny-flow")
    body = submit(
        alice, "tiny-flow", "v1", native_archive(), generator_config={"vae_slicing": True}
    )
    _rejected(alice, body["id"], "vae_slicing apply only to diffusers pipelines")


def test_example_client_submits_an_adapter_folder_on_a_base(live_server, base, lora_dir):
    alice_user = ModelVersion.objects.get(pk=base["id"]).model.owner
    _, key = api_token_create(user=alice_user)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "submit.py"),
            *("--url", live_server.url, "--token", key, "--model", "tiny-sd"),
            *("--tag", "v1-style", "--base-version", "tiny-sd@v1", "--no-wait"),
            str(lora_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    version = ModelVersion.objects.get(model__slug="tiny-sd", tag="v1-style")
    assert version.base_version_id == base["id"]
    pipeline_validate(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == VersionStatus.READY, version.status_reason
    assert version.checkpoint.format == "lora"
