"""Peak memory of the web process while a 2 GB checkpoint is uploaded in chunks.

Starts a real gunicorn server (one sync worker) on a scratch SQLite database and media folder,
writes a native checkpoint archive of ``--gb`` GB (config.json + a model.safetensors filled with
a repeating pattern), uploads it through the REST API in ``--chunk-mb`` chunks, finalizes it
(the server joins the stored chunks into one file, hashing them as it goes), then reads the peak resident set size
(VmHWM) of the gunicorn worker from /proc. The issue's budget is 200 MB.

    .venv/bin/python benchmarks/upload_memory.py            # 2 GB, 32 MiB chunks
    .venv/bin/python benchmarks/upload_memory.py --gb 0.2   # a quick run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere in the checkout

from models_registry.checkpoint_packing import write_safetensors_stream  # noqa: E402
from models_registry.generators.reference import native_config, reference_spec  # noqa: E402

BUDGET_MB = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def build_archive(folder: Path, gigabytes: float) -> Path:
    # A config the native schema accepts (the under-trained reference flow model's); the
    # weights are filler, so validation rejects the tensors, not the config.
    config = native_config(reference_spec("ref-flow-undertrained"))
    (folder / "config.json").write_text(json.dumps(config))
    n_floats = int(gigabytes * 1024**3) // 4
    rows = max(1, n_floats // 4096)
    write_safetensors_stream(
        folder / "model.safetensors", [("w", "F32", [rows, 4096])], fill=bytes(range(256))
    )
    archive = folder / "checkpoint.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder / "config.json", arcname="config.json")
        tar.add(folder / "model.safetensors", arcname="model.safetensors")
    (folder / "model.safetensors").unlink()
    return archive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=2.0, help="checkpoint size in GB")
    parser.add_argument("--chunk-mb", type=float, default=32.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="upload-bench-") as scratch:
        scratch_path = Path(scratch)
        env = dict(
            os.environ,
            DEBUG="1",
            VAR_DIR=str(scratch_path / "var"),
            UPLOAD_MAX_CHECKPOINT_BYTES=str(64 * 1024**3),
            UPLOAD_USER_QUOTA_BYTES=str(64 * 1024**3),
            UPLOAD_CHUNK_MAX_BYTES=str(int(args.chunk_mb * 1024**2)),
        )
        env.pop("DATABASE_URL", None)
        env.pop("CELERY_BROKER_URL", None)  # embedded filesystem broker: finalize just enqueues
        manage = [sys.executable, "manage.py"]
        run = dict(cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        subprocess.run([*manage, "migrate", "--noinput"], **run)
        subprocess.run(
            [
                *manage,
                "shell",
                "-c",
                "from django.contrib.auth.models import User; User.objects.create_user('bench')",
            ],
            **run,
        )
        token = subprocess.run([*manage, "create_api_token", "bench"], **run).stdout.strip()

        print(f"writing a {args.gb:g} GB checkpoint archive ...", flush=True)
        archive = build_archive(scratch_path, args.gb)
        total = archive.stat().st_size
        digest = hashlib.sha256()
        with open(archive, "rb") as handle:
            for block in iter(lambda: handle.read(8 * 1024**2), b""):
                digest.update(block)

        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--timeout",
                "600",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            api = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Token {token}"},
                timeout=600,
            )
            for _ in range(100):
                try:
                    api.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            workers = worker_pids(server.pid)
            idle = max(peak_rss_mb(pid) for pid in workers)
            api.post(
                "/api/v1/models/",
                json={
                    "slug": "bench",
                    "display_name": "Bench",
                    "task": "text-to-image",
                    "paradigm": "flow",
                },
            ).raise_for_status()
            version = api.post("/api/v1/models/bench/versions/", json={"tag": "v1"}).json()
            upload = api.post(
                f"/api/v1/versions/{version['id']}/uploads/",
                json={"filename": "checkpoint.tar", "total_size": total},
            ).json()
            chunk = int(args.chunk_mb * 1024**2)
            started = time.perf_counter()
            with open(archive, "rb") as handle:
                offset = 0
                while offset < total:
                    data = handle.read(chunk)
                    end = offset + len(data) - 1
                    response = api.put(
                        f"/api/v1/uploads/{upload['id']}/",
                        content=data,
                        headers={"Content-Range": f"bytes {offset}-{end}/{total}"},
                    )
                    response.raise_for_status()
                    offset = response.json()["next_offset"]
            upload_s = time.perf_counter() - started
            response = api.post(
                f"/api/v1/uploads/{upload['id']}/finalize/", json={"sha256": digest.hexdigest()}
            )
            assert response.status_code == 202, response.text
            finalize_s = time.perf_counter() - started - upload_s
            peaks = {pid: peak_rss_mb(pid) for pid in worker_pids(server.pid)}
            master_peak = peak_rss_mb(server.pid)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    peak = max(peaks.values())
    print(f"checkpoint: {total / 1024**3:.2f} GiB in {args.chunk_mb:g} MiB chunks")
    print(
        f"upload: {upload_s:.1f} s ({total / 1024**2 / upload_s:.0f} MiB/s); "
        f"finalize (server-side sha256): {finalize_s:.1f} s"
    )
    print(
        f"gunicorn worker peak RSS: {peak:.0f} MiB (idle before upload: {idle:.0f} MiB); "
        f"master: {master_peak:.0f} MiB"
    )
    print(f"budget: {BUDGET_MB} MB -> {'OK' if peak < BUDGET_MB else 'OVER BUDGET'}")
    return 0 if peak < BUDGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
