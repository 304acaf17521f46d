"""Provenance core: C2PA sign/read round trip and tampering, the watermark and its survival,
metadata stripping, the reproducibility manifest."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from cryptography import x509
from PIL import Image, PngImagePlugin

from evaluation.provenance.credentials import (
    CredentialsError,
    configured_credentials,
    demo_credentials,
)
from evaluation.provenance.manifest import (
    GENERATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    ManifestError,
    read_manifest,
    sign_media,
)
from evaluation.provenance.rendition import (
    PIXEL_CHUNKS,
    UnreadableImage,
    decode_image,
    png_chunk_types,
    publication_pixels,
    publication_scale,
    strip_metadata,
)
from evaluation.provenance.reproducibility import library_versions, reproducibility_manifest
from evaluation.provenance.watermark import (
    KNOWN_WATERMARKS,
    bit_accuracy,
    bits_id,
    decode_bits,
    embed_bits,
    embed_watermark,
    id_bits,
    known_watermark,
    match_ids,
    readings,
    resize_rgb,
)
from models_registry.generators.synthetic import render_image_dataset

GENERATION = {
    "model": "tiny-ddpm",
    "version": "v1",
    "checkpoint_sha256": "ab" * 32,
    "prompt": "a red circle on a blue background",
    "seed": 3,
    "sampler": {"sampler": "ddim", "steps": 20},
}


def png_bytes(pixels: np.ndarray, **text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def jpeg(pixels: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def sign(data: bytes, credentials, *, mime: str = "image/png", **fields: str) -> bytes:
    """`data` signed with GENERATION (title "t", agent "x" unless given)."""
    fields = {"title": "t", "software_agent": "x"} | fields
    return sign_media(data, mime=mime, credentials=credentials, generation=GENERATION, **fields)


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    return demo_credentials(tmp_path_factory.mktemp("c2pa"))


@pytest.fixture(scope="module")
def renders() -> list[np.ndarray]:
    """Demo-domain images (32 px renders of the synthetic grammar), upscaled as published."""
    media, _, _ = render_image_dataset(6, 0, size=32)
    return [np.repeat(np.repeat(np.asarray(m), 8, 0), 8, 1) for m in media]


# --- C2PA ----------------------------------------------------------------------------------


def test_demo_chain_is_a_ca_issuing_a_signing_certificate(credentials, tmp_path):
    leaf, ca = x509.load_pem_x509_certificates(credentials.chain_pem)
    assert leaf.issuer == ca.subject != leaf.subject  # not self-signed: C2PA refuses that
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert credentials.demo and credentials.algorithm == "es256"
    # Made once per directory: a second call reads the same files.
    first = demo_credentials(tmp_path)
    assert first.chain_pem != credentials.chain_pem
    assert demo_credentials(tmp_path).key_pem == first.key_pem
    assert oct((tmp_path / "signer-key.pem").stat().st_mode & 0o777) == "0o600"


def test_sign_and_read_round_trip(credentials, renders):
    data = png_bytes(renders[0])
    signed = sign(data, credentials, software_agent="Tiny DDPM (tiny-ddpm@v1)")
    report = read_manifest(signed)
    assert report.present and report.valid and report.validation_state == "Valid"
    assert report.generation == GENERATION
    assert report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert GENERATION_LABEL in report.assertions
    assert report.signer["common_name"] == "arena sample signer"
    # The signed file shows the same pixels.
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(signed)).convert("RGB")), renders[0])
    # Trust: untrusted by default, trusted once the demo CA is an anchor.
    assert any(f["code"] == "signingCredential.untrusted" for f in report.failures)
    trusted = read_manifest(signed, trust_anchors=credentials.anchor_pem)
    assert trusted.validation_state == "Trusted" and not trusted.failures


def test_tampered_pixels_are_detected(credentials, renders):
    signed = sign(png_bytes(renders[1]), credentials)
    tampered = bytearray(signed)
    tampered[signed.find(b"IDAT") + 40] ^= 0xFF
    report = read_manifest(bytes(tampered), trust_anchors=credentials.anchor_pem)
    assert report.present and not report.valid and report.validation_state == "Invalid"
    assert any(f["code"] == "assertion.dataHash.mismatch" for f in report.failures)


def test_unsigned_and_non_media_bytes_have_no_manifest(renders):
    assert not read_manifest(png_bytes(renders[0])).present
    assert not read_manifest(b"not an image at all").present


def test_sign_refuses_unknown_types(credentials):
    with pytest.raises(ManifestError, match="cannot sign 'text/plain'"):
        sign_media(
            b"x",
            mime="text/plain",
            credentials=credentials,
            generation={},
            title="t",
            software_agent="x",
        )


def test_configured_credentials_checks_the_pair(credentials, tmp_path):
    cert, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.write_bytes(credentials.chain_pem)
    key.write_bytes(credentials.key_pem)
    loaded = configured_credentials(cert_path=cert, key_path=key)
    assert loaded.algorithm == "es256" and not loaded.demo
    other = demo_credentials(tmp_path / "other")
    key.write_bytes(other.key_pem)
    with pytest.raises(CredentialsError, match="does not belong"):
        configured_credentials(cert_path=cert, key_path=key)
    with pytest.raises(CredentialsError, match="C2PA_SIGNING_CERT=.*missing.pem"):
        configured_credentials(cert_path=tmp_path / "missing.pem", key_path=key)


# --- watermark -----------------------------------------------------------------------------


def test_id_bits_round_trip():
    for value in (0, 1, 2**63 - 1, 2**64 - 1, 0x0123456789ABCDEF):
        assert bits_id(id_bits(value)) == value
    with pytest.raises(ValueError):
        id_bits(2**64)


def test_watermark_embed_detect_jpeg_and_resize(renders):
    """Every bit back clean and after a 3/4 resize; >= 7/8 of them after JPEG q75 (measured
    mean over the demo renders: 0.98)."""
    rng = np.random.default_rng(0)
    clean, after_jpeg, after_resize = [], [], []
    for image in renders:
        wid = int(rng.integers(0, 2**63))
        marked = embed_watermark(image, wid)
        psnr = 10 * math.log10(255**2 / np.mean((marked.astype(float) - image) ** 2))
        assert psnr > 32  # invisible: chroma changes only, ~37 dB
        expected = id_bits(wid)
        clean.append(bit_accuracy(decode_bits(marked), expected))
        after_jpeg.append(bit_accuracy(decode_bits(jpeg(marked)), expected))
        small = resize_rgb(marked, 192, 192)
        after_resize.append(bit_accuracy(decode_bits(resize_rgb(small, 256, 256)), expected))
    assert min(clean) == 1.0
    assert min(after_resize) >= 0.95
    assert np.mean(after_jpeg) >= 0.9 and min(after_jpeg) >= 0.85


def test_unmarked_images_stay_below_the_threshold(renders):
    """Nearest of 10,000 random ids to bits read from unmarked images: far below 0.875 (the
    chance level of a best match of 64 fair bits among 10^4 ids is ~0.73)."""
    ids = np.random.default_rng(1).integers(0, 2**63, size=10_000).astype(np.uint64)
    noise = np.random.default_rng(2).integers(0, 256, (256, 256, 3)).astype(np.uint8)
    flat = np.full((256, 256, 3), 128, np.uint8)
    for image in [*renders, noise, flat]:
        match = match_ids(readings(image), ids, threshold=0.875)
        assert not match.detected and match.bit_accuracy < 0.875


def test_match_finds_the_id_after_a_resize_at_a_candidate_size(renders):
    wid = 0x1234_5678_9ABC_DEF
    marked = embed_watermark(renders[2], wid)
    shrunk = resize_rgb(marked, 200, 200)  # read back at the published 256 x 256
    others = np.random.default_rng(3).integers(0, 2**63, size=1000).astype(np.uint64)
    ids = np.concatenate([others, np.array([wid], dtype=np.uint64)])
    match = match_ids(readings(shrunk, [(256, 256)]), ids, threshold=0.875)
    assert match.detected and match.watermark_id == wid and match.size == (256, 256)


def test_known_public_watermark_is_recognised(renders):
    from imwatermark import WatermarkEncoder

    bits = KNOWN_WATERMARKS["stable-diffusion-xl"]
    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", bits)
    noise = np.random.default_rng(4).integers(40, 216, (256, 256, 3)).astype(np.uint8)
    marked = encoder.encode(noise[:, :, ::-1].copy(), "dwtDct")[:, :, ::-1].copy()
    name, accuracy = known_watermark(marked, threshold=0.875)
    assert name == "stable-diffusion-xl" and accuracy >= 0.875
    assert known_watermark(noise, threshold=0.875)[0] == ""
    assert known_watermark(np.zeros((32, 32, 3), np.uint8), threshold=0.875) == ("", 0.0)


def test_custom_bits_and_small_images():
    with pytest.raises(ValueError, match="too small"):
        embed_bits(np.zeros((64, 64, 3), np.uint8), [1, 0])


# --- renditions and metadata ---------------------------------------------------------------


def test_publication_pixels_upscale_by_blocks():
    assert publication_scale(32, 32) == 8 and publication_scale(512, 300) == 1
    assert publication_scale(40, 100) == 7
    pixels = np.random.default_rng(5).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    out = publication_pixels(pixels, watermark_id=42)
    assert out.shape == (256, 256, 3)
    assert bits_id(decode_bits(out)) == 42


def test_strip_metadata_leaves_pixels_only(credentials, renders):
    signed = sign(png_bytes(renders[0], Author="tiny-ddpm", Comment="model tiny-ddpm"), credentials)
    assert {"tEXt", "caBX"} & set(png_chunk_types(signed))
    stripped = strip_metadata(signed)
    assert set(png_chunk_types(stripped)) <= PIXEL_CHUNKS
    assert b"tiny-ddpm" not in stripped and not read_manifest(stripped).present
    assert np.array_equal(decode_image(stripped, max_pixels=10**6)[0], renders[0])


def test_decode_image_refuses_bombs_and_garbage():
    big = png_bytes(np.zeros((300, 300, 3), np.uint8))
    with pytest.raises(UnreadableImage, match="300x300; at most 10000 pixels"):
        decode_image(big, max_pixels=10_000)
    with pytest.raises(UnreadableImage, match="not a readable image"):
        decode_image(b"%PDF-1.4 hello", max_pixels=10_000)


# --- reproducibility -----------------------------------------------------------------------


def test_reproducibility_manifest_names_versions_and_settings():
    import numpy
    import torch

    versions = library_versions()
    assert versions["numpy"] == numpy.__version__
    assert versions["torch"] == torch.__version__  # the build, e.g. 2.4.1+cu121
    assert versions["cuda"] == (torch.version.cuda or "")
    assert versions["python"].count(".") == 2
    manifest = reproducibility_manifest(
        backbone="inception-v3-tf-pool3",
        weights_sha256="cd" * 32,
        resize_mode="PIL bicubic to 299x299",
        dtype="float32",
        device="cpu",
        batch_size=16,
        seeds={"sample_seeds": [0, 1]},
        reference={"slug": "r"},
        samples={"n": 4},
        options={},
    )
    for key in ("libraries", "resize_mode", "dtype", "device", "batch_size", "weights_sha256"):
        assert manifest[key]


def test_clips_are_signed_too(credentials):
    from evaluation.sample_store import encode_mp4

    clip = np.random.default_rng(6).integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    signed = sign(encode_mp4(clip), credentials, mime="video/mp4", title="clip")
    report = read_manifest(signed, trust_anchors=credentials.anchor_pem)
    assert report.validation_state == "Trusted" and report.generation == GENERATION
