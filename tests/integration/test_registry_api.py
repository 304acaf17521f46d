"""Registry REST API: tokens, access rules, models/versions, the chunked upload protocol."""

from __future__ import annotations

import socket
import subprocess
import sys
from io import StringIO
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from evaluation.models import MetricResult, Prompt, PromptSet, Sample
from models_registry.authentication import hash_token_key
from models_registry.models import (
    ApiToken,
    GenerativeModel,
    ModelVersion,
    Upload,
    VersionStatus,
)
from models_registry.services import api_token_create
from pipeline.models import VersionStage
from tests.conftest import ROOT
from tests.integration.registry_support import (
    create_model,
    create_version,
    make_user,
    native_archive,
    put_chunk,
    sha256,
    start_upload,
    stored_files,
    token_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def alice():
    return make_user("alice")


@pytest.fixture
def alice_api(alice):
    return token_client(alice)


# --- tokens and authentication ---------------------------------------------------------------


def test_no_token_is_401_and_bad_token_is_401():
    assert APIClient().get("/api/v1/models/").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    response = client.get("/api/v1/models/")
    assert response.status_code == 401
    assert "Invalid or revoked" in response.json()["detail"]


def test_create_api_token_command_prints_the_key_once_and_stores_only_its_hash(alice):
    with pytest.raises(CommandError, match="no user named 'nobody-here'"):
        call_command("create_api_token", "nobody-here")
    out = StringIO()
    call_command("create_api_token", "alice", "--name", "laptop", stdout=out, stderr=StringIO())
    key = out.getvalue().strip()
    token = ApiToken.objects.get(user=alice, name="laptop")
    assert token.key_hash == hash_token_key(key) and key not in token.key_hash
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/models/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


# --- models, versions and visibility -----------------------------------------------------------


def test_owner_creates_lists_retrieves_and_updates_a_model(alice_api):
    created = create_model(alice_api, "tiny-flow")
    assert created["owner"] == "alice" and created["visibility"] == "private"
    listing = alice_api.get("/api/v1/models/").json()
    assert [m["slug"] for m in listing["results"]] == ["tiny-flow"]
    response = alice_api.patch(
        "/api/v1/models/tiny-flow/", {"description": "a flow model"}, format="json"
    )
    assert response.status_code == 200 and response.json()["description"] == "a flow model"
    response = alice_api.patch("/api/v1/models/tiny-flow/", {"paradigm": "gan"}, format="json")
    assert response.status_code == 400 and "paradigm" in response.json()
    duplicate = alice_api.post(
        "/api/v1/models/",
        {"slug": "tiny-flow", "display_name": "x", "task": "text-to-image", "paradigm": "flow"},
        format="json",
    )
    assert duplicate.status_code == 400 and "slug" in duplicate.json()


def test_private_models_are_invisible_to_other_users_everywhere(alice_api):
    model = create_model(alice_api, "secret")
    version = create_version(alice_api, "secret")
    bob_api = token_client(make_user("bob"))
    assert bob_api.get("/api/v1/models/").json()["results"] == []
    for url in [
        "/api/v1/models/secret/",
        "/api/v1/models/secret/versions/",
        f"/api/v1/versions/{version['id']}/",
        f"/api/v1/versions/{version['id']}/samples/",
        f"/api/v1/versions/{version['id']}/metrics/",
        f"/api/v1/versions/{version['id']}/stages/",
    ]:
        assert bob_api.get(url).status_code == 404, url
    # Writes to another author's model are 404 too, never 403.
    assert bob_api.patch("/api/v1/models/secret/", {"description": "x"}).status_code == 404
    assert bob_api.post("/api/v1/models/secret/versions/", {"tag": "v9"}).status_code == 404
    assert bob_api.patch(f"/api/v1/versions/{version['id']}/", {"tag": "b"}).status_code == 404
    response = start_upload(bob_api, version["id"], b"x" * 10)
    assert response.status_code == 404
    staff_api = token_client(make_user("root", staff=True))
    assert staff_api.get("/api/v1/models/secret/").status_code == 200
    assert [m["slug"] for m in staff_api.get("/api/v1/models/").json()["results"]] == ["secret"]
    assert model["slug"] == "secret"


def test_public_model_is_readable_but_not_writable_by_others(alice_api):
    create_model(alice_api, "open-model", visibility="public")
    create_model(alice_api, "hidden-link", visibility="unlisted")
    bob_api = token_client(make_user("bob"))
    slugs = [m["slug"] for m in bob_api.get("/api/v1/models/").json()["results"]]
    assert slugs == ["open-model"]  # unlisted is not listed ...
    assert bob_api.get("/api/v1/models/hidden-link/").status_code == 200  # ... but opens by slug
    assert bob_api.patch("/api/v1/models/open-model/", {"description": "x"}).status_code == 404


def test_version_lists_its_samples_metric_results_and_stages(alice_api):
    create_model(alice_api, "tiny-flow", visibility="public")
    version = ModelVersion.objects.get(pk=create_version(alice_api, "tiny-flow")["id"])
    prompts = PromptSet.objects.create(slug="p", name="p", task="text-to-image")
    prompt = Prompt.objects.create(prompt_set=prompts, text="a red cube", category="objects")
    for seed, pool in ((7, "showcase"), (0, "battle")):  # the battle sample is never listed
        Sample.objects.create(
            version=version,
            prompt=prompt,
            seed=seed,
            pool=pool,
            media=f"samples/x{seed}.png",
            media_kind="image",
            width=16,
            height=16,
            sha256=f"{seed}" * 64,
        )
    MetricResult.objects.create(version=version, metric="fid", value=12.5, backbone="inception")
    VersionStage.objects.create(version=version, stage="generate", state="running", total=4)
    bob_api = token_client(make_user("bob"))
    samples = bob_api.get(f"/api/v1/versions/{version.pk}/samples/").json()["results"]
    assert len(samples) == 1
    assert samples[0]["prompt"] == "a red cube" and samples[0]["seed"] == 7
    metrics = bob_api.get(f"/api/v1/versions/{version.pk}/metrics/").json()["results"]
    assert metrics[0]["metric"] == "fid" and metrics[0]["value"] == 12.5
    stages = bob_api.get(f"/api/v1/versions/{version.pk}/stages/").json()["results"]
    assert stages[0]["stage"] == "generate" and stages[0]["total"] == 4


def test_version_generator_config_is_validated(alice_api):
    create_model(alice_api, "tiny-flow")
    response = alice_api.post(
        "/api/v1/models/tiny-flow/versions/",
        {"tag": "v1", "generator_config": {"resolution": 99999}},
        format="json",
    )
    assert response.status_code == 400
    assert "'resolution' must be an integer from 8 to 1024" in response.json()["detail"]
    assert not ModelVersion.objects.exists()
    create_version(alice_api, "tiny-flow", "v1")
    response = alice_api.post("/api/v1/models/tiny-flow/versions/", {"tag": "v1"}, format="json")
    assert (
        response.status_code == 409
        and "already has a version tagged 'v1'" in (response.json()["detail"])
    )


# --- chunked upload protocol -------------------------------------------------------------------


@pytest.fixture
def version(alice_api):
    create_model(alice_api, "tiny-flow")
    return create_version(alice_api, "tiny-flow")


def test_upload_start_returns_offset_zero_and_stores_nothing_yet(alice_api, version, media):
    data = native_archive()
    response = start_upload(alice_api, version["id"], data)
    assert response.status_code == 201
    body = response.json()
    assert body["next_offset"] == 0 and body["total_size"] == len(data)
    assert response["Location"] == f"/api/v1/uploads/{body['id']}/"
    assert ModelVersion.objects.get(pk=version["id"]).status == VersionStatus.UPLOADING
    assert stored_files(media) == []  # each chunk is stored as it arrives


def _send_then_drop(url: str, headers: dict[str, str], body: bytes) -> None:
    """Send a request whose body stops early, then close the connection (a dropped upload)."""
    parts = urlsplit(url)
    head = [f"PUT {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)  # the server answers (or closes) once it sees the body end


def test_interrupted_upload_resumes_from_the_reported_offset_with_the_right_sha256(
    live_server, media
):
    alice = make_user("alice")
    _, key = api_token_create(user=alice)
    auth = {"Authorization": f"Token {key}"}
    api = httpx.Client(base_url=live_server.url, headers=auth, timeout=30)
    api.post(
        "/api/v1/models/",
        json={
            "slug": "tiny-flow",
            "display_name": "T",
            "task": "text-to-image",
            "paradigm": "flow",
        },
    ).raise_for_status()
    version_id = api.post("/api/v1/models/tiny-flow/versions/", json={"tag": "v1"}).json()["id"]
    data = native_archive()
    total, half = len(data), len(data) // 2
    upload = api.post(
        f"/api/v1/versions/{version_id}/uploads/", json={"filename": "c.tar", "total_size": total}
    ).json()
    url = f"/api/v1/uploads/{upload['id']}/"

    def put(start: int, chunk: bytes) -> httpx.Response:
        end = start + len(chunk) - 1
        return api.put(
            url, content=chunk, headers={"Content-Range": f"bytes {start}-{end}/{total}"}
        )

    assert put(0, data[:1000]).json()["next_offset"] == 1000
    assert put(1000, data[1000:half]).json()["next_offset"] == half
    # The connection drops 100 bytes into a 5000-byte chunk.
    _send_then_drop(
        live_server.url + url,
        {
            **auth,
            "Content-Type": "application/octet-stream",
            "Content-Length": "5000",
            "Content-Range": f"bytes {half}-{half + 4999}/{total}",
        },
        data[half : half + 100],
    )
    # The client asks where to resume and sends the rest.
    assert api.get(url).json()["next_offset"] == half
    assert put(half, data[half:]).json()["next_offset"] == total
    response = api.post(url + "finalize/", json={"sha256": sha256(data)})
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "validating"
    assert Upload.objects.get(pk=upload["id"]).sha256 == sha256(data)
    assert stored_files(media)[0].read_bytes() == data


def test_out_of_order_and_overlapping_chunks_are_409_with_the_expected_offset(
    alice_api, version, media
):
    data = native_archive()
    upload_id = start_upload(alice_api, version["id"], data).json()["id"]
    put_chunk(alice_api, upload_id, data[:2000], 0, len(data))
    ahead = put_chunk(alice_api, upload_id, data[3000:4000], 3000, len(data))
    assert ahead.status_code == 409
    assert ahead.json()["offset"] == 2000 and "out of order" in ahead.json()["detail"]
    overlap = put_chunk(alice_api, upload_id, data[1500:2500], 1500, len(data))
    assert overlap.status_code == 409
    assert overlap.json()["offset"] == 2000 and "overlaps" in overlap.json()["detail"]
    # Rejected chunks wrote nothing.
    assert Upload.objects.get(pk=upload_id).received == 2000
    assert stored_files(media)[0].read_bytes()[:2000] == data[:2000]
    assert stored_files(media)[0].stat().st_size == 2000


@pytest.mark.parametrize(
    ("header", "status", "fragment"),
    [
        ("bytes=0-9", 400, "must be 'bytes START-END/TOTAL'"),
        ("bytes 0-9/7", 416, "does not match the upload's total_size"),
        ("bytes 9-2/{total}", 416, "is not a range inside the upload"),
        ("bytes 0-{total}/{total}", 416, "is not a range inside the upload"),
    ],
)
def test_bad_content_range_is_rejected(alice_api, version, header, status, fragment):
    data = native_archive()
    upload_id = start_upload(alice_api, version["id"], data).json()["id"]
    response = alice_api.generic(
        "PUT",
        f"/api/v1/uploads/{upload_id}/",
        data[:10],
        content_type="application/octet-stream",
        HTTP_CONTENT_RANGE=header.format(total=len(data)),
    )
    assert response.status_code == status and fragment in response.json()["detail"]


def test_chunk_over_the_chunk_limit_is_413(alice_api, version, settings):
    settings.UPLOAD_CHUNK_MAX_BYTES = 1000
    data = native_archive()
    upload_id = start_upload(alice_api, version["id"], data).json()["id"]
    response = put_chunk(alice_api, upload_id, data[:1001], 0, len(data))
    assert response.status_code == 413 and "chunk limit" in response.json()["detail"]


def test_sha256_mismatch_is_rejected_and_every_byte_and_row_removed(alice_api, version, media):
    data = native_archive()
    upload_id = start_upload(alice_api, version["id"], data).json()["id"]
    put_chunk(alice_api, upload_id, data, 0, len(data))
    response = alice_api.post(
        f"/api/v1/uploads/{upload_id}/finalize/", {"sha256": "ab" * 32}, format="json"
    )
    assert response.status_code == 400
    assert f"the uploaded bytes hash to {sha256(data)}" in response.json()["detail"]
    assert stored_files(media) == []
    assert not Upload.objects.exists()
    row = ModelVersion.objects.get(pk=version["id"])
    assert row.status == VersionStatus.REJECTED and "sha256 mismatch" in row.status_reason
    # A rejected version takes a fresh upload.
    assert start_upload(alice_api, version["id"], data).status_code == 201


def test_finalize_before_all_bytes_arrived_is_409(alice_api, version):
    data = native_archive()
    upload_id = start_upload(alice_api, version["id"], data).json()["id"]
    put_chunk(alice_api, upload_id, data[:100], 0, len(data))
    response = alice_api.post(
        f"/api/v1/uploads/{upload_id}/finalize/", {"sha256": sha256(data)}, format="json"
    )
    assert response.status_code == 409 and response.json()["offset"] == 100


def test_upload_over_the_user_quota_is_413_and_leaves_nothing(alice_api, version, settings, media):
    settings.UPLOAD_USER_QUOTA_BYTES = 10_000
    other = create_version(alice_api, "tiny-flow", "v2")
    assert start_upload(alice_api, other["id"], b"x" * 6000).status_code == 201
    response = start_upload(alice_api, version["id"], b"x" * 6000)
    assert response.status_code == 413
    assert "exceed your quota: 6000 of 10000 bytes already used" in response.json()["detail"]
    assert Upload.objects.count() == 1 and stored_files(media) == []
    assert ModelVersion.objects.get(pk=version["id"]).status == VersionStatus.DRAFT


def test_checkpoint_over_the_size_limit_is_413(alice_api, version, settings):
    settings.UPLOAD_MAX_CHECKPOINT_BYTES = 100
    response = start_upload(alice_api, version["id"], b"x" * 101)
    assert response.status_code == 413 and "limit for one checkpoint" in response.json()["detail"]


@pytest.mark.parametrize(
    ("filename", "fragment"),
    [("model.ckpt", "pickle-based"), ("weights.pt", "pickle-based"), ("model.exe", "must end")],
)
def test_upload_of_a_non_archive_name_is_rejected_at_start(alice_api, version, filename, fragment):
    response = start_upload(alice_api, version["id"], b"x" * 10, filename=filename)
    assert response.status_code == 400 and fragment in response.json()["detail"]
    assert not Upload.objects.exists()


def test_second_upload_while_one_is_open_is_409_and_abort_cleans_up(alice_api, version, media):
    data = native_archive()
    upload_id = start_upload(alice_api, version["id"], data).json()["id"]
    put_chunk(alice_api, upload_id, data[:50], 0, len(data))
    again = start_upload(alice_api, version["id"], data)
    assert again.status_code == 409
    assert again.json()["upload_id"] == upload_id and again.json()["offset"] == 50
    assert alice_api.delete(f"/api/v1/uploads/{upload_id}/").status_code == 204
    assert stored_files(media) == [] and not Upload.objects.exists()
    assert ModelVersion.objects.get(pk=version["id"]).status == VersionStatus.DRAFT


def test_other_users_cannot_see_or_touch_an_upload(alice_api, version):
    data = native_archive()
    upload_id = start_upload(alice_api, version["id"], data).json()["id"]
    bob_api = token_client(make_user("bob"))
    assert bob_api.get(f"/api/v1/uploads/{upload_id}/").status_code == 404
    assert put_chunk(bob_api, upload_id, data, 0, len(data)).status_code == 404
    assert bob_api.delete(f"/api/v1/uploads/{upload_id}/").status_code == 404


# --- admin -------------------------------------------------------------------------------------


def test_staff_approves_a_ready_public_version_for_the_arena_in_the_admin(alice):
    root = make_user("root", staff=True)
    root.is_superuser = True
    root.save()
    model = GenerativeModel.objects.create(
        slug="m", display_name="m", task="text-to-image", paradigm="flow", owner=alice
    )
    draft = ModelVersion.objects.create(model=model, tag="draft")
    ready = ModelVersion.objects.create(model=model, tag="ready", status=VersionStatus.READY)
    client = Client()
    client.force_login(root)
    url = "/admin/models_registry/modelversion/"
    action = {"action": "approve_for_arena", "_selected_action": [ready.pk]}
    response = client.post(url, action, follow=True)
    assert "is private" in response.content.decode()
    ready.refresh_from_db()
    assert not ready.arena_approved
    model.visibility = "public"
    model.save()
    client.post(url, {"action": "approve_for_arena", "_selected_action": [ready.pk, draft.pk]})
    ready.refresh_from_db()
    draft.refresh_from_db()
    assert ready.arena_approved and ready.approved_by == root
    assert not draft.arena_approved


def test_admin_token_creation_shows_the_key_once():
    root = make_user("root", staff=True)
    root.is_superuser = True
    root.save()
    client = Client()
    client.force_login(root)
    response = client.post(
        "/admin/models_registry/apitoken/add/", {"user": root.pk, "name": "ci"}, follow=True
    )
    page = response.content.decode()
    token = ApiToken.objects.get(name="ci")
    assert f"API token for {root}" in page
    key = page.split("API token for root: ")[1].split(" ")[0]
    assert hash_token_key(key) == token.key_hash


def test_example_client_resumes_an_interrupted_upload_and_finalizes(live_server, media, tmp_path):
    alice = make_user("alice")
    _, key = api_token_create(user=alice)
    data = native_archive()
    archive = tmp_path / "ckpt.tar"
    archive.write_bytes(data)
    # A first attempt created everything and got 1000 bytes through before dying.
    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Token {key}"})
    api.post(
        "/api/v1/models/",
        json={"slug": "tiny", "display_name": "T", "task": "text-to-image", "paradigm": "flow"},
    ).raise_for_status()
    version_id = api.post("/api/v1/models/tiny/versions/", json={"tag": "v1"}).json()["id"]
    upload = api.post(
        f"/api/v1/versions/{version_id}/uploads/",
        json={"filename": "ckpt.tar", "total_size": len(data)},
    ).json()
    api.put(
        f"/api/v1/uploads/{upload['id']}/",
        content=data[:1000],
        headers={"Content-Range": f"bytes 0-999/{len(data)}"},
    ).raise_for_status()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "submit.py"),
            "--url",
            live_server.url,
            "--token",
            key,
            "--model",
            "tiny",
            "--tag",
            "v1",
            "--chunk-mb",
            "0.002",
            "--no-wait",
            str(archive),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resuming upload {upload['id']} at byte 1000" in result.stdout
    row = Upload.objects.get(pk=upload["id"])
    assert row.status == "finalized" and row.sha256 == sha256(data)
    assert ModelVersion.objects.get(pk=version_id).status == VersionStatus.VALIDATING


def test_huge_page_parameters_are_clamped_not_a_server_error(alice_api):
    """Found by schemathesis: ?limit=7479420817984854163456 overflowed the database's integer."""
    create_model(alice_api, "tiny-flow", visibility="public")
    for query in (
        "limit=7479420817984854163456&offset=-129135694174",
        "limit=5&offset=99999999999999999999999",
    ):
        response = alice_api.get(f"/api/v1/models/?{query}")
        assert response.status_code == 200, query
    assert len(alice_api.get("/api/v1/models/?limit=7479420817984854163456").json()["results"]) == 1
    assert (
        alice_api.get("/api/v1/models/?limit=5&offset=99999999999999999999999").json()["results"]
        == []
    )
