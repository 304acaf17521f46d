"""Helpers shared by the registry integration tests: users with tokens, checkpoints, uploads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from safetensors.numpy import save as st_save

from models_registry.checkpoint_packing import archive_bytes
from models_registry.generators.reference import native_config as reference_native_config
from models_registry.generators.reference import reference_spec
from models_registry.services import api_token_create


def make_user(username: str, *, staff: bool = False):
    return get_user_model().objects.create_user(username=username, password="x", is_staff=staff)


def token_client(user) -> APIClient:
    _, key = api_token_create(user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def native_config(**changes) -> dict:
    """A config.json the generator loader accepts (the under-trained reference flow model)."""
    config = reference_native_config(reference_spec("ref-flow-undertrained"))
    config.update(changes)
    return config


def native_archive(*, kind: str = "tar", config: dict | None = None, **extra: bytes) -> bytes:
    rng = np.random.default_rng(0)
    files = {
        "config.json": json.dumps(config or native_config()).encode(),
        "model.safetensors": st_save({"w": rng.standard_normal((16, 16)).astype(np.float32)}),
        **extra,
    }
    return archive_bytes(files, kind=kind)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def create_model(client: APIClient, slug: str = "tiny-flow", **fields) -> dict:
    body = {
        "slug": slug,
        "display_name": slug.title(),
        "task": "text-to-image",
        "paradigm": "flow",
        "visibility": "private",
        **fields,
    }
    response = client.post("/api/v1/models/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def create_version(client: APIClient, slug: str, tag: str = "v1", **fields) -> dict:
    response = client.post(
        f"/api/v1/models/{slug}/versions/", {"tag": tag, **fields}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def start_upload(client: APIClient, version_id: int, data: bytes, filename: str = "ckpt.tar"):
    return client.post(
        f"/api/v1/versions/{version_id}/uploads/",
        {"filename": filename, "total_size": len(data)},
        format="json",
    )


def put_chunk(client: APIClient, upload_id: int, data: bytes, start: int, total: int):
    end = start + len(data) - 1
    return client.generic(
        "PUT",
        f"/api/v1/uploads/{upload_id}/",
        data,
        content_type="application/octet-stream",
        HTTP_CONTENT_RANGE=f"bytes {start}-{end}/{total}",
    )


def upload_all(client: APIClient, version_id: int, data: bytes, *, chunk: int = 4096) -> dict:
    """Start, send in chunks and finalize; returns the finalize response body."""
    response = start_upload(client, version_id, data)
    assert response.status_code == 201, response.json()
    upload_id = response.json()["id"]
    for start in range(0, len(data), chunk):
        response = put_chunk(client, upload_id, data[start : start + chunk], start, len(data))
        assert response.status_code == 200, response.json()
    response = client.post(
        f"/api/v1/uploads/{upload_id}/finalize/", {"sha256": sha256(data)}, format="json"
    )
    assert response.status_code == 202, response.json()
    return response.json()


def stored_files(media_root: Path) -> list[Path]:
    """Every file under the checkpoints folder of the media root."""
    root = Path(media_root) / "checkpoints"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []
