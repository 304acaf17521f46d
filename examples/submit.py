"""Submit a checkpoint to the arena: create the model and version, upload in resumable chunks
with a progress bar, finalize with the sha256, and poll until the version is ready or rejected.

    python examples/submit.py --url http://127.0.0.1:8000 --token "$TOKEN" \
        --model tiny-flow --tag v1 --task text-to-image --paradigm flow path/to/checkpoint

CHECKPOINT is a .zip/.tar/.tar.gz archive or a folder (packed into a .tar first): either
config.json + model.safetensors (native) or a diffusers pipeline folder with .safetensors weights.
Run it again after an interruption: it finds the open upload and resumes from the server's offset.
Exit status: 0 ready (or queued with --no-wait), 1 rejected or failed, 2 usage/HTTP error.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx
from tqdm import tqdm

DONE_STATUSES = {"ready", "rejected", "failed", "generating", "evaluating", "published"}


def pack_folder(folder: Path, destination: Path) -> Path:
    """Pack a checkpoint folder as an uncompressed .tar (regular files only, relative paths)."""
    with tarfile.open(destination, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return destination


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024**2), b""):
            digest.update(block)
    return digest.hexdigest()


def fail(response: httpx.Response) -> None:
    try:
        detail = response.json()
    except ValueError:
        detail = response.text[:500]
    sys.exit(f"HTTP {response.status_code} {response.request.method} {response.url}: {detail}")


def ensure_model(api: httpx.Client, args: argparse.Namespace) -> None:
    response = api.get(f"/api/v1/models/{args.model}/")
    if response.status_code == 200:
        return
    body = {
        "slug": args.model,
        "display_name": args.display_name or args.model,
        "task": args.task,
        "paradigm": args.paradigm,
        "visibility": args.visibility,
    }
    response = api.post("/api/v1/models/", json=body)
    if response.status_code != 201:
        fail(response)


def ensure_version(api: httpx.Client, args: argparse.Namespace) -> dict:
    body = {"tag": args.tag}
    if args.base_version:  # a LoRA adapter on this diffusers version
        body["base_version"] = args.base_version
    response = api.post(f"/api/v1/models/{args.model}/versions/", json=body)
    if response.status_code == 201:
        return response.json()
    if response.status_code != 409:
        fail(response)
    versions = api.get(f"/api/v1/models/{args.model}/versions/", params={"limit": 1000})
    for version in versions.json()["results"]:
        if version["tag"] == args.tag:
            return version
    fail(response)
    raise AssertionError("unreachable")


def open_upload(api: httpx.Client, version_id: int, archive: Path) -> dict:
    """Start an upload, or find the one already open for this version (to resume it)."""
    response = api.post(
        f"/api/v1/versions/{version_id}/uploads/",
        json={"filename": archive.name, "total_size": archive.stat().st_size},
    )
    if response.status_code == 201:
        return response.json()
    if response.status_code == 409 and "upload_id" in response.json():
        upload = api.get(f"/api/v1/uploads/{response.json()['upload_id']}/").json()
        if upload["total_size"] == archive.stat().st_size:
            print(f"resuming upload {upload['id']} at byte {upload['next_offset']}")
            return upload
        sys.exit(f"version has an open upload of a different file; abort it: {response.json()}")
    fail(response)
    raise AssertionError("unreachable")


def send_chunks(api: httpx.Client, upload: dict, archive: Path, chunk_bytes: int) -> None:
    total = upload["total_size"]
    offset = upload["next_offset"]
    url = f"/api/v1/uploads/{upload['id']}/"
    retries = 0
    with (
        open(archive, "rb") as handle,
        tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=archive.name) as bar,
    ):
        while offset < total:
            handle.seek(offset)
            data = handle.read(min(chunk_bytes, total - offset))
            headers = {
                "Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{total}",
                "Content-Type": "application/octet-stream",
            }
            try:
                response = api.put(url, content=data, headers=headers)
            except httpx.TransportError as exc:
                retries += 1
                if retries > 5:
                    raise
                time.sleep(min(2**retries, 30))
                tqdm.write(f"connection problem ({exc}); asking the server where to resume")
                response = api.get(url)
            if response.status_code in (200, 409) and "next_offset" in response.json():
                new_offset = response.json()["next_offset"]
            elif response.status_code == 409 and "offset" in response.json():
                new_offset = response.json()["offset"]
            else:
                fail(response)
            bar.update(new_offset - offset)
            offset = new_offset
            retries = 0 if response.status_code == 200 else retries


def poll(api: httpx.Client, version_id: int, interval: float, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        version = api.get(f"/api/v1/versions/{version_id}/").json()
        if version["status"] in DONE_STATUSES or time.monotonic() > deadline:
            return version
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="archive (.zip/.tar/.tar.gz) or folder")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="API token (manage.py create_api_token)")
    parser.add_argument("--model", required=True, help="model slug")
    parser.add_argument("--tag", required=True, help="version tag, e.g. v1")
    parser.add_argument("--display-name", default="")
    parser.add_argument(
        "--base-version",
        default="",
        help="upload a LoRA adapter (pytorch_lora_weights.safetensors) on this diffusers "
        "version: <model-slug>@<tag> or its id",
    )
    parser.add_argument(
        "--task",
        default="text-to-image",
        choices=["text-to-image", "text-to-video", "image-edit"],
    )
    parser.add_argument("--paradigm", default="diffusion")
    parser.add_argument(
        "--visibility", default="private", choices=["public", "unlisted", "private"]
    )
    parser.add_argument("--chunk-mb", type=float, default=16.0)
    parser.add_argument("--no-wait", action="store_true", help="do not poll after finalizing")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to poll")
    args = parser.parse_args(argv)

    api = httpx.Client(
        base_url=args.url, headers={"Authorization": f"Token {args.token}"}, timeout=120
    )
    with tempfile.TemporaryDirectory() as scratch:
        archive = args.checkpoint
        if archive.is_dir():
            archive = pack_folder(archive, Path(scratch) / f"{args.model}-{args.tag}.tar")
        ensure_model(api, args)
        version = ensure_version(api, args)
        if version["status"] not in ("draft", "uploading", "rejected"):
            print(f"version {args.tag} is already {version['status']}")
        else:
            upload = open_upload(api, version["id"], archive)
            send_chunks(api, upload, archive, int(args.chunk_mb * 1024**2))
            response = api.post(
                f"/api/v1/uploads/{upload['id']}/finalize/", json={"sha256": file_sha256(archive)}
            )
            if response.status_code != 202:
                fail(response)
            print(f"finalized; version {version['id']} is validating")
    if args.no_wait:
        return 0
    version = poll(api, version["id"], interval=2.0, timeout=args.timeout)
    print(f"version {version['id']}: {version['status']} {version['status_reason']}".strip())
    return 0 if version["status"] not in ("rejected", "failed") else 1


if __name__ == "__main__":
    sys.exit(main())
