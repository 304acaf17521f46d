"""Sign media with a C2PA manifest and read one back, validated (c2pa-python).

A manifest we sign holds the C2PA "created" action with IPTC digital source type
``trainedAlgorithmicMedia`` and the model as its software agent, and our assertion
``GENERATION_LABEL`` with model, version, checkpoint sha256, prompt, seed and sampler settings.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field

from evaluation.provenance.credentials import SigningCredentials

GENERATION_LABEL = "org.genarena.generation"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CLAIM_GENERATOR = "genarena"
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "mp4": "video/mp4", "webp": "image/webp"}
# No thumbnail in the manifest: it would double a small sample's bytes for nothing.
_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


class ManifestError(Exception):
    """The media cannot be signed (unsupported type, credentials refused by c2pa)."""


@dataclass
class ManifestReport:
    """What a reader learns from one asset's C2PA data."""

    present: bool
    validation_state: str = ""  # "Invalid", "Valid" or "Trusted"; "" when no manifest
    signer: dict = field(default_factory=dict)  # issuer, common_name, alg, cert_serial_number
    claim_generator: str = ""
    digital_source_type: str = ""
    generation: dict = field(default_factory=dict)  # our GENERATION_LABEL assertion, if any
    assertions: list[str] = field(default_factory=list)  # labels
    failures: list[dict] = field(default_factory=list)  # validation codes + explanations
    error: str = ""

    @property
    def valid(self) -> bool:
        return self.validation_state in ("Valid", "Trusted")

    def as_dict(self) -> dict:
        return {**asdict(self), "valid": self.valid}


def _context(trust_anchors: bytes = b""):
    import c2pa

    settings = dict(_SETTINGS)
    if trust_anchors:
        settings["trust"] = {"user_anchors": trust_anchors.decode()}
    return c2pa.Context.from_dict(settings)


def manifest_definition(*, title: str, mime: str, generation: dict, software_agent: str) -> dict:
    """The manifest JSON c2pa's Builder takes (created action + our generation assertion)."""
    return {
        "claim_generator_info": [{"name": CLAIM_GENERATOR, "version": "1"}],
        "title": title,
        "format": mime,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": software_agent},
                        }
                    ]
                },
            },
            {"label": GENERATION_LABEL, "data": generation},
        ],
    }


def sign_media(
    data: bytes,
    *,
    mime: str,
    credentials: SigningCredentials,
    generation: dict,
    title: str,
    software_agent: str,
) -> bytes:
    """`data` (PNG / JPEG / MP4 bytes) with an embedded, signed C2PA manifest.

    generation: JSON-able facts (model, version, checkpoint_sha256, prompt, seed, sampler, ...).
    """
    import c2pa

    if mime not in MIME_TYPES.values():
        raise ManifestError(f"cannot sign {mime!r}; signable: {', '.join(MIME_TYPES.values())}")
    definition = manifest_definition(
        title=title, mime=mime, generation=generation, software_agent=software_agent
    )
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(
                credentials.algorithm, credentials.chain_pem, credentials.key_pem, None
            )
        )
        with signer, c2pa.Builder(json.dumps(definition), context=_context()) as builder:
            out = io.BytesIO()
            builder.sign(signer, mime, io.BytesIO(data), out)
    except c2pa.C2paError as exc:
        raise ManifestError(f"C2PA signing failed: {exc}") from exc
    return out.getvalue()


def read_manifest(data: bytes, *, trust_anchors: bytes = b"") -> ManifestReport:
    """The active manifest of `data`, validated (hashes, signature; trust against `trust_anchors`).

    An asset with no C2PA data gives ``present=False``; an unreadable or tampered one gives the
    failure codes and ``validation_state`` "Invalid" (or ``error`` when c2pa cannot parse it).
    """
    import c2pa

    try:
        with c2pa.Reader(io.BytesIO(data), context=_context(trust_anchors)) as reader:
            active = reader.get_active_manifest() or {}
            state = reader.get_validation_state() or ""
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        text = str(exc)
        if "ManifestNotFound" in type(exc).__name__ or "NotSupported" in text:
            return ManifestReport(present=False, error=text[:500])
        return ManifestReport(present=True, validation_state="Invalid", error=text[:500])
    if not active:
        return ManifestReport(present=False)
    report = ManifestReport(
        present=True,
        validation_state=state,
        signer=dict(active.get("signature_info") or {}),
        claim_generator=", ".join(
            info.get("name", "") for info in active.get("claim_generator_info") or []
        ),
        assertions=[a.get("label", "") for a in active.get("assertions") or []],
        failures=[
            {"code": f.get("code", ""), "explanation": f.get("explanation", "")}
            for f in (results.get("activeManifest") or {}).get("failure") or []
        ],
    )
    for assertion in active.get("assertions") or []:
        label, payload = assertion.get("label", ""), assertion.get("data") or {}
        if label == GENERATION_LABEL:
            report.generation = payload
        elif label.startswith("c2pa.actions"):
            for action in payload.get("actions") or []:
                if action.get("action") == "c2pa.created":
                    report.digital_source_type = action.get("digitalSourceType", "")
    return report
