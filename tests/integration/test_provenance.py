"""Provenance end to end: signed publication, anonymous battle media, /verify, the provenance
column and the reproducibility manifest of metric results."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.test import Client
from PIL import Image

from arena.models import Battle
from evaluation.models import MetricResult, MetricStatus, VersionProvenance
from evaluation.pools import SHOWCASE_SEED_BASE, screen_lookalikes
from evaluation.provenance.manifest import TRAINED_ALGORITHMIC_MEDIA, read_manifest, sign_media
from evaluation.provenance.rendition import PIXEL_CHUNKS, png_chunk_types, strip_metadata
from evaluation.provenance.watermark import KNOWN_WATERMARKS, bits_id, decode_bits
from evaluation.publication import (
    sample_publish,
    signing_credentials,
    version_provenance_check,
)
from evaluation.sample_store import store_sample
from models_registry.generators.synthetic import render_image_dataset
from models_registry.models import Checkpoint
from tests.integration.arena_support import add_model, age_battle, configure_arena, make_arena

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def provenance_settings(settings, tmp_path):
    configure_arena(settings, tmp_path)
    settings.C2PA_DEMO_DIR = tmp_path / "c2pa"
    settings.C2PA_DEMO_SIGNER = True
    settings.C2PA_SIGNING_CERT = settings.C2PA_SIGNING_KEY = None
    settings.ARENA_LEADERBOARD_CACHE_SECONDS = 0
    return settings


def rendered_version(arena, *, n: int = 3, generator_config: dict | None = None):
    """A published model whose showcase samples (public: sample pages, /verify) are stored by
    sample_store from demo-domain renders, then screened as the generate stage does."""
    model = add_model(arena, seeds=0)  # no placeholder samples: real renders below
    version = arena.versions[-1]
    version.generator_config = generator_config or {"sampler": "ddim", "steps": 12}
    version.save(update_fields=["generator_config"])
    Checkpoint.objects.create(
        version=version,
        file=ContentFile(b"weights", "ckpt.safetensors"),
        format="native",
        size=7,
        sha256=hashlib.sha256(b"weights").hexdigest(),
    )
    media, _, _ = render_image_dataset(n, model.pk, size=32)
    samples = []
    for k, pixels in enumerate(media):
        sample, _ = store_sample(
            version=version,
            prompt=arena.prompts[k % len(arena.prompts)],
            seed=SHOWCASE_SEED_BASE + k,
            pixels=np.asarray(pixels, dtype=np.uint8),
            generation_seconds=0.1,
        )
        samples.append(sample)
    screen_lookalikes(version_id=version.pk)
    for sample in samples:
        sample.refresh_from_db()
    return model, version, samples


def published_bytes(provenance) -> bytes:
    with provenance.media.open("rb") as handle:
        return handle.read()


def test_a_published_sample_is_watermarked_and_signed_with_the_right_claims():
    arena = make_arena(n_models=0)
    model, version, samples = rendered_version(arena)
    sample = samples[0]
    provenance = sample_publish(sample=sample)
    assert sample_publish(sample=sample).pk == provenance.pk  # idempotent
    data = published_bytes(provenance)
    assert hashlib.sha256(data).hexdigest() == provenance.sha256
    report = read_manifest(data, trust_anchors=signing_credentials().anchor_pem)
    assert report.validation_state == "Trusted" and provenance.demo_signer
    assert report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    claims = report.generation
    assert claims["model"] == model.slug and claims["version"] == version.tag
    assert claims["checkpoint_sha256"] == version.checkpoint.sha256
    assert claims["prompt"] == sample.prompt.text and claims["seed"] == sample.seed
    assert claims["sampler"]["sampler"] == "ddim" and claims["sampler"]["steps"] == 12
    assert claims["sample"] == str(sample.public_id)
    assert claims["watermark_id"] == f"{provenance.watermark_id:016x}"
    # The pixels: the 32 px sample upscaled x8, carrying the watermark id.
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert pixels.shape == (256, 256, 3) == (provenance.height, provenance.width, 3)
    assert bits_id(decode_bits(pixels)) == provenance.watermark_id
    # The stored original is untouched: pixels only, no manifest.
    with sample.media.open("rb") as handle:
        original = handle.read()
    assert set(png_chunk_types(original)) <= PIXEL_CHUNKS and not read_manifest(original).present
    # The sample page and the export API point at the signed file.
    client = Client()
    page = client.get(f"/samples/{sample.public_id}/")
    assert page.status_code == 200 and "Trusted" in page.content.decode()
    media = client.get(f"/samples/{sample.public_id}/media")
    assert b"".join(media.streaming_content) == data
    manifest = client.get(f"/samples/{sample.public_id}/manifest.json").json()
    assert manifest["manifest"]["generation"]["model"] == model.slug
    gallery = client.get(f"/models/{model.slug}/samples/{sample.public_id}")
    assert b"".join(gallery.streaming_content) == data
    client.force_login(arena.owner)
    listed = client.get(f"/api/v1/versions/{version.pk}/samples/")
    row = next(r for r in listed.json()["results"] if r["public_id"] == str(sample.public_id))
    assert row["published_url"] == f"/samples/{sample.public_id}/media"


def test_production_without_a_certificate_refuses_to_publish(settings):
    settings.C2PA_DEMO_SIGNER = False
    arena = make_arena(n_models=0)
    _, _, samples = rendered_version(arena, n=1)
    with pytest.raises(ImproperlyConfigured, match="C2PA_SIGNING_CERT and C2PA_SIGNING_KEY"):
        sample_publish(sample=samples[0])
    response = Client().get(f"/samples/{samples[0].public_id}/media")
    assert response.status_code == 503 and b"C2PA_SIGNING_CERT" in response.content


def test_battle_media_carries_no_identity_and_the_reveal_links_the_manifest():
    arena = make_arena(n_models=3)
    for sample in arena.samples:  # published renditions exist; battles still serve originals
        sample_publish(sample=sample)
    client = Client()
    client.get("/arena/text-to-image/")
    battle = Battle.objects.get()
    secrets_ = arena.identities()
    for token, sample in (
        (battle.media_token_a, battle.sample_a),
        (battle.media_token_b, battle.sample_b),
    ):
        response = client.get(f"/arena/media/{token}")
        data = b"".join(response.streaming_content)
        assert set(png_chunk_types(data)) <= PIXEL_CHUNKS  # no tEXt, iTXt, eXIf, caBX
        assert not read_manifest(data).present
        for secret in secrets_:
            assert secret.encode() not in data
        assert data != published_bytes(sample.provenance)
        # Nothing to find: the original carries no watermark.
        verdict = client.post(
            "/verify", {"image": ContentFile(data, "a.png")}, HTTP_ACCEPT="application/json"
        ).json()
        assert verdict["sample"] is None and not verdict["watermark"]["detected"]
    # Before the vote the reveal links lead nowhere, also for the rater of the battle.
    assert client.get(f"/arena/battles/{battle.token}/reveal/A").status_code == 404
    age_battle(battle, 5)
    token = client.cookies["csrftoken"].value
    reveal = client.post(
        f"/arena/battles/{battle.token}/vote",
        {"outcome": "model_a"},
        HTTP_ACCEPT="application/json",
        HTTP_X_CSRFTOKEN=token,
    ).json()
    links = {s["side"]: s for s in reveal["samples"]}
    assert sorted(links) == ["A", "B"]
    # The voter's page of a sample, through the battle's token (a live battle sample has no
    # public page).
    page = client.get(links["A"]["url"])
    assert page.status_code == 200
    assert battle.sample_a.version.model.display_name in page.content.decode()
    assert Client().get(f"/samples/{battle.sample_a.public_id}/").status_code == 404
    assert Client().get(links["A"]["url"]).status_code == 404  # another browser: nothing
    manifest = client.get(links["B"]["manifest_url"]).json()
    assert manifest["manifest"]["generation"]["model"] == battle.sample_b.version.model.slug
    assert manifest["manifest"]["valid"]


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_verify_finds_the_sample_from_a_stripped_watermarked_copy():
    arena = make_arena(n_models=0)
    _, _, samples = rendered_version(arena, n=3)
    published = [sample_publish(sample=s) for s in samples]
    target = published[1]
    signed = published_bytes(target)
    client = Client()
    # The signed file: manifest valid and trusted, sample found.
    full = client.post(
        "/verify", {"image": ContentFile(signed, "x.png")}, HTTP_ACCEPT="application/json"
    ).json()
    assert full["manifest"]["validation_state"] == "Trusted"
    assert full["sample"]["public_id"] == str(samples[1].public_id)
    # Metadata stripped, then JPEG q75 and a resize: only the watermark is left.
    stripped = strip_metadata(signed)
    pixels = np.asarray(Image.open(io.BytesIO(stripped)).convert("RGB"))
    small = np.asarray(Image.fromarray(pixels).resize((200, 200), Image.Resampling.BICUBIC))
    for name, data in (
        ("stripped.png", stripped),
        ("q75.jpg", jpeg_bytes(pixels, 75)),
        ("small.png", strip_metadata(jpeg_bytes(small, 95))),
    ):
        verdict = client.post(
            "/verify", {"image": ContentFile(data, name)}, HTTP_ACCEPT="application/json"
        ).json()
        assert not verdict["manifest"]["present"], name
        assert verdict["watermark"]["detected"], name
        assert verdict["watermark"]["payload"] == f"{target.watermark_id:016x}"
        assert verdict["sample"]["public_id"] == str(samples[1].public_id), name
        assert verdict["sample"]["matched_by"] == "watermark"
        assert verdict["sample"]["page_url"] == f"/samples/{samples[1].public_id}/"
    # The HTML form and the REST endpoint say the same.
    html = client.post("/verify", {"image": ContentFile(stripped, "s.png")}).content.decode()
    assert f"/samples/{samples[1].public_id}/" in html and "detected" in html
    api = client.post("/api/v1/verify", {"image": ContentFile(stripped, "s.png")})
    assert api.status_code == 200 and api.json()["sample"]["seed"] == samples[1].seed


def test_verify_refuses_what_is_not_an_image(settings):
    settings.VERIFY_PER_MINUTE_PER_IP = 0  # counted below, on its own
    client = Client()
    bad = client.post(
        "/verify", {"image": ContentFile(b"%PDF-1.4", "x.pdf")}, HTTP_ACCEPT="application/json"
    )
    assert bad.status_code == 400 and bad.json()["field"] == "image"
    assert "not a readable image" in bad.json()["message"]
    missing = client.post("/verify", {}, HTTP_ACCEPT="application/json")
    assert missing.status_code == 400 and "field 'image'" in missing.json()["message"]
    settings.VERIFY_MAX_BYTES = 100
    big = client.post("/api/v1/verify", {"image": ContentFile(b"\x89PNG" + b"0" * 200, "b.png")})
    assert big.status_code == 413 and "over the limit of 100 bytes" in big.json()["image"][0]
    settings.VERIFY_MAX_BYTES, settings.VERIFY_MAX_PIXELS = 10**7, 100
    huge = io.BytesIO()
    Image.new("RGB", (64, 64)).save(huge, format="PNG")
    page = client.post("/verify", {"image": ContentFile(huge.getvalue(), "h.png")})
    assert page.status_code == 400 and "64x64; at most 100 pixels" in page.content.decode()
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    settings.VERIFY_MAX_PIXELS = 10**6
    refused = client.post("/api/v1/verify", {"image": ContentFile(gif.getvalue(), "g.gif")})
    assert refused.status_code == 400 and "gif is not accepted" in refused.json()["image"][0]


def test_provenance_column_reports_own_marks_and_survival(settings):
    from imwatermark import WatermarkEncoder

    settings.ARENA_LEADERBOARD_CACHE_SECONDS = 600  # a cached board must not hide a new check
    arena = make_arena(n_models=0)
    model, version, samples = rendered_version(arena, n=2)
    client = Client()
    before = client.get("/leaderboard/text-to-image.json").json()["rows"]
    assert [row["provenance"] for row in before] == [None]
    # A second generator whose raw outputs carry SDXL's public watermark and a C2PA manifest.
    other = add_model(arena, seeds=0)
    other_version = arena.versions[-1]
    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", KNOWN_WATERMARKS["stable-diffusion-xl"])
    noise = np.random.default_rng(0).integers(40, 216, (256, 256, 3)).astype(np.uint8)
    marked = encoder.encode(noise[:, :, ::-1].copy(), "dwtDct")[:, :, ::-1].copy()
    own, _ = store_sample(
        version=other_version,
        prompt=arena.prompts[0],
        seed=0,
        pixels=marked,
        generation_seconds=0.1,
    )
    with own.media.open("rb") as handle:
        signed_raw = sign_media(
            handle.read(),
            mime="image/png",
            credentials=signing_credentials(),
            generation={"by": "the generator itself"},
            title="raw",
            software_agent="other",
        )
    own.media.save(own.media.name.split("/")[-1], ContentFile(signed_raw), save=True)

    ours = version_provenance_check(version_id=version.pk)
    assert ours.samples_checked == 2 and ours.raw_c2pa == 0 and ours.raw_watermark == ""
    assert ours.clean_bit_accuracy == 1.0
    assert ours.survives_resize and ours.resize_bit_accuracy >= 0.95
    assert ours.jpeg75_bit_accuracy >= 0.85
    theirs = version_provenance_check(version_id=other_version.pk)
    assert theirs.raw_c2pa == 1 and theirs.raw_watermark == "stable-diffusion-xl"
    assert VersionProvenance.objects.count() == 2

    board = client.get("/leaderboard/text-to-image.json").json()
    rows = {row["model"]: row for row in board["rows"]}
    assert rows[model.slug]["provenance"]["survives_resize"] is True
    assert rows[model.slug]["provenance"]["jpeg75_bit_accuracy"] == ours.jpeg75_bit_accuracy
    assert rows[other.slug]["provenance"]["raw_watermark"] == "stable-diffusion-xl"
    assert rows[other.slug]["provenance"]["raw_c2pa"] is True
    table = list(
        csv.DictReader(io.StringIO(client.get("/leaderboard/text-to-image.csv").content.decode()))
    )
    by_model = {row["model"]: row for row in table}
    assert by_model[other.slug]["provenance_raw_watermark"] == "stable-diffusion-xl"
    assert by_model[model.slug]["provenance_survives_resize"] == "True"
    html = client.get("/leaderboard/text-to-image/").content.decode()
    assert "Provenance" in html and "stable-diffusion-xl" in html
    page = client.get(f"/models/{other.slug}/").content.decode()
    assert "carry the stable-diffusion-xl watermark" in page


def test_every_metric_result_records_its_reproducibility_manifest(settings, tmp_path):
    from pipeline.services import pipeline_metrics
    from tests.integration.test_metrics_commands import write_images
    from tests.integration.test_metrics_services import make_version_with_samples
    from tests.unit.test_metrics_backbones import TINY_CLIP_NAME, images, save_tiny_clip

    settings.CLIP_MODEL_NAME = TINY_CLIP_NAME
    settings.CLIP_WEIGHTS_PATH = save_tiny_clip(tmp_path / "clip")
    settings.CLIP_WEIGHTS_CUSTOM = True
    settings.INCEPTION_WEIGHTS_PATH = None
    settings.METRICS_DEVICE = "cpu"
    settings.METRICS_BOOTSTRAP = 20
    settings.METRICS_BATCH_SIZE = 4
    settings.METRICS_BY_TASK = {"text-to-image": ["clip_score", "cmmd", "fid"]}
    settings.METRICS_REFERENCE_DIRS = {
        "text-to-image": write_images(tmp_path / "real", images(1, 6, 32)),
        "text-to-video": None,
    }
    version = make_version_with_samples()
    pipeline_metrics(version_id=version.pk)  # the metrics stage, as the pipeline runs it
    # The stage also filled the provenance column: its 4 first samples checked.
    assert VersionProvenance.objects.get(version=version).samples_checked == 4
    rows = {row.metric: row for row in MetricResult.objects.filter(version=version)}
    import open_clip
    import torch

    for name in ("clip_score", "cmmd"):
        manifest = rows[name].manifest
        assert rows[name].status == MetricStatus.OK
        assert manifest["libraries"]["torch"] == torch.__version__
        assert manifest["libraries"]["open_clip_torch"] == open_clip.__version__
        assert manifest["weights_sha256"] == rows[name].weights_sha256
        assert manifest["backbone"] == rows[name].backbone
        assert manifest["device"] == "cpu" and manifest["dtype"] == "float32"
        assert manifest["batch_size"] == 4 and "bicubic" in manifest["resize_mode"]
        assert manifest["seeds"]["sample_seeds"] == [0] and manifest["samples"]["n"] == 6
    assert rows["cmmd"].manifest["seeds"]["estimator_seed"] == 0
    assert rows["cmmd"].manifest["reference"]["slug"] == rows["cmmd"].reference
    assert rows["cmmd"].manifest["reference"]["n"] == 6
    assert rows["clip_score"].manifest["reference"] == {}
    assert rows["fid"].status == MetricStatus.UNAVAILABLE
    assert rows["fid"].manifest["computed"] is False and rows["fid"].manifest["libraries"]
    owner = Client()
    owner.force_login(version.model.owner)
    api = owner.get(f"/api/v1/versions/{version.pk}/metrics/").json()["results"]
    cmmd = next(r for r in api if r["metric"] == "cmmd")
    assert cmmd["manifest"]["weights_sha256"] == rows["cmmd"].weights_sha256
    page = owner.get(f"/models/{version.model.slug}/").content.decode()
    assert "Reproducibility" in page and rows["cmmd"].manifest["samples"]["sha256"][:16] in page


def test_check_provenance_command_publishes_and_checks():
    from django.core.management import CommandError, call_command

    arena = make_arena(n_models=0)
    _, version, samples = rendered_version(arena, n=3)
    out = io.StringIO()
    call_command("check_provenance", "--publish", "--version-id", str(version.pk), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"version {version.pk}: published 3 (0 were)"
    summary = json.loads(lines[1])
    assert summary["samples_checked"] == 3 and summary["survives_resize"] is True
    assert all(hasattr(s, "provenance") for s in samples)
    with pytest.raises(CommandError, match="--samples must be at least 1"):
        call_command("check_provenance", "--samples", "0")
    with pytest.raises(CommandError, match="version 999999 has no samples"):
        call_command("check_provenance", "--version-id", "999999")


def test_system_check_names_the_signing_settings(settings, tmp_path):
    from evaluation.checks import check_c2pa_signing

    assert check_c2pa_signing() == []  # the demo signer is allowed here
    settings.C2PA_DEMO_SIGNER = False
    assert [m.id for m in check_c2pa_signing()] == ["evaluation.W001"]
    settings.C2PA_SIGNING_CERT = tmp_path / "chain.pem"
    (errors,) = check_c2pa_signing()
    assert errors.id == "evaluation.E002"
    assert errors.msg == "C2PA_SIGNING_CERT, C2PA_SIGNING_KEY: not a readable file"


def test_a_kwise_reveal_links_every_sample_after_the_vote():
    from arena import services
    from arena.services import ArenaRefusal

    make_arena(n_models=4)
    rater = services.rater_for(user=None, anonymous_rater_id=None)
    battle = age_battle(
        services.battle_create(task="text-to-image", rater=rater, ip_hash="", k=4), 5
    )
    shown = [battle.sample_a, battle.sample_b, *(b.sample for b in battle.extra_samples.all())]
    with pytest.raises(ArenaRefusal):
        services.voted_sample_for(token=battle.token, side="C", rater_id=rater.id)
    vote = services.vote_create(
        token=battle.token, rater_id=rater.id, outcome="", ranking="C,A,D,B", ip_hash=""
    )
    reveal = services.battle_reveal(vote=vote)
    assert [s["side"] for s in reveal["samples"]] == ["A", "B", "C", "D"]
    found = [
        services.voted_sample_for(token=battle.token, side=side, rater_id=rater.id)
        for side in "ABCD"
    ]
    assert found == shown
    for side in ("E", "AB", ""):
        with pytest.raises(ArenaRefusal):
            services.voted_sample_for(token=battle.token, side=side, rater_id=rater.id)


def test_verify_is_rate_limited_per_address(settings):
    settings.VERIFY_PER_MINUTE_PER_IP = 2
    client = Client()
    image = ContentFile(png_chunk_free_image(), "x.png")
    for _ in range(2):
        image.seek(0)
        assert client.post("/api/v1/verify", {"image": image}).status_code == 200
    image.seek(0)
    refused = client.post("/api/v1/verify", {"image": image})
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert "at most 2 per minute" in refused.json()["message"]
    page = client.post("/verify", {"image": image})
    assert page.status_code == 429


def png_chunk_free_image() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()
