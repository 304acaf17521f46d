"""The platform skeleton: configuration, health, migrations, deploy checks, real Celery workers."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django_celery_results.models import TaskResult

from tests.conftest import ROOT, wait_for


def run_manage(*args: str, env_overrides: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_malformed_database_url_fails_with_one_line_naming_the_variable():
    result = run_manage("check", env_overrides={"DATABASE_URL": "postgres://[broken", "DEBUG": "1"})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]


def test_unknown_database_scheme_fails_naming_the_variable():
    result = run_manage("check", env_overrides={"DATABASE_URL": "nosuchdb://x/y", "DEBUG": "1"})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CACHE_URL", "memcached://127.0.0.1:11211"),
        ("DATABASE_PREPARE_THRESHOLD", "sometimes"),
        ("DATABASE_HEALTH_CHECKS", "maybe"),
    ],
)
def test_bad_cache_and_database_options_name_the_variable(variable, value):
    overrides = {variable: value, "DEBUG": "1"}
    if variable == "DATABASE_PREPARE_THRESHOLD":
        overrides["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/test"
    result = run_manage("check", env_overrides=overrides)
    assert result.returncode != 0
    assert f"configuration error: {variable}:" in result.stderr.strip().splitlines()[-1]


def test_postgresql_reuses_plans_unless_told_not_to(monkeypatch):
    from config.env import database_from_url

    url = "postgres://arena@db.internal:5432/arena"
    monkeypatch.delenv("DATABASE_PREPARE_THRESHOLD", raising=False)
    assert database_from_url("UNSET_URL", url)["OPTIONS"]["prepare_threshold"] == 5
    monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", "off")  # behind an old PgBouncer
    assert database_from_url("UNSET_URL", url)["OPTIONS"]["prepare_threshold"] is None
    assert "OPTIONS" not in database_from_url("UNSET_URL", "sqlite:///x.sqlite3")


def test_missing_secret_key_in_production_fails_with_one_line():
    result = run_manage("check", env_overrides={"SECRET_KEY": None, "DEBUG": "0"})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SECRET_KEY" in lines[0]


def test_bad_boolean_names_the_variable():
    result = run_manage("check", env_overrides={"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


def test_check_deploy_passes_with_production_environment(tmp_path):
    from evaluation.provenance.credentials import make_demo_chain

    # Production signs published samples with its own C2PA certificate (no demo signer).
    chain_pem, key_pem, _ = make_demo_chain(organization="arena.example.org")
    (tmp_path / "chain.pem").write_bytes(chain_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    production = {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "arena.example.org",
        "C2PA_SIGNING_CERT": str(tmp_path / "chain.pem"),
        "C2PA_SIGNING_KEY": str(tmp_path / "key.pem"),
    }
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=production)
    assert result.returncode == 0, result.stdout + result.stderr
    # Without a certificate the check says how to configure one.
    del production["C2PA_SIGNING_CERT"], production["C2PA_SIGNING_KEY"]
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=production)
    assert result.returncode != 0 and "evaluation.W001" in result.stdout + result.stderr


def test_migrations_are_complete():
    result = run_manage("makemigrations", "--check", "--dry-run", env_overrides={"DEBUG": "1"})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["vendor"] == (
        "sqlite" if "sqlite" in settings.DATABASES["default"]["ENGINE"] else "postgresql"
    )
    assert body["broker"]["ok"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["broker"]["ok"] is False and body["database"]["ok"] is True


def test_celery_routes_gpu_tasks_to_gpu_queue_and_never_uses_pickle():
    from config.celery import app

    router = app.amqp.router
    assert router.route({}, "workers.tasks.gpu_generate_samples")["queue"].name == "gpu"
    assert router.route({}, "workers.tasks.ping")["queue"].name == "default"
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1


def _send_ping_and_read_result(app: Celery, payload: str) -> dict:
    result = app.send_task(
        "workers.tasks.ping", args=[payload], queue="default", routing_key="default"
    )
    row = wait_for(
        lambda: TaskResult.objects.filter(task_id=result.id, status="SUCCESS").first(),
        timeout=90,
        message=f"the worker to store the ping result of task {result.id}",
    )
    return json.loads(row.result)


def test_task_runs_on_a_real_worker_through_the_configured_broker(child_env, celery_workers):
    from config.celery import app

    celery_workers.start(child_env, queues="default", name="configured")
    payload = secrets.token_hex(8)
    value = _send_ping_and_read_result(app, payload)
    assert value["payload"] == payload
    assert value["pid"] != os.getpid()


def test_task_runs_on_a_real_worker_through_the_embedded_filesystem_broker(
    child_env, celery_workers, tmp_path, monkeypatch
):
    broker_dir = tmp_path / "broker"
    for sub in ("queue", "processed", "control"):
        (broker_dir / sub).mkdir(parents=True)
    # The worker reads the embedded default (filesystem://) with its folders under VAR_DIR.
    env = dict(child_env, CELERY_BROKER_URL="filesystem://", VAR_DIR=str(tmp_path))
    celery_workers.start(env, queues="default", name="embedded")

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery lets the env var win
    sender = Celery("sender", broker="filesystem://", set_as_current=False)
    sender.conf.broker_transport_options = {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "processed_folder": str(broker_dir / "processed"),
        "control_folder": str(broker_dir / "control"),
    }
    sender.conf.task_serializer = "json"
    payload = secrets.token_hex(8)
    value = _send_ping_and_read_result(sender, payload)
    assert value["payload"] == payload
    assert Path(tmp_path / "broker" / "queue").exists()


def test_manage_py_works_on_a_fresh_checkout_without_any_environment():
    result = run_manage(
        "makemigrations", "--check", "--dry-run", env_overrides={"DEBUG": None, "SECRET_KEY": None}
    )
    assert result.returncode == 0, result.stdout + result.stderr
