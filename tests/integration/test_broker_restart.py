"""The broker restarting while tasks are queued loses no task (Redis with append-only persistence)."""

from __future__ import annotations

import pytest
from celery import Celery
from django_celery_results.models import TaskResult

from tests.conftest import wait_for
from tests.integration.redis_support import REDIS, RedisServer, free_port


@pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")
def test_tasks_queued_before_a_broker_restart_all_run(
    child_env, celery_workers, tmp_path, monkeypatch
):
    server = RedisServer(tmp_path, free_port())
    server.start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        sender = Celery("sender", broker=url, set_as_current=False)
        sender.conf.task_serializer = "json"
        ids = [
            sender.send_task(
                "workers.tasks.ping", args=[f"job-{i}"], queue="default", routing_key="default"
            ).id
            for i in range(20)
        ]
        sender.pool.force_close_all()

        server.stop()  # the broker goes away with 20 tasks queued and no worker running
        assert not server.ping()
        server.start()

        celery_workers.start(
            dict(child_env, CELERY_BROKER_URL=url), queues="default", name="after-restart"
        )
        wait_for(
            lambda: (
                TaskResult.objects.filter(task_id__in=ids, status="SUCCESS").count() == len(ids)
            ),
            timeout=120,
            message="all 20 tasks queued before the restart to run",
        )
        payloads = sorted(row.result for row in TaskResult.objects.filter(task_id__in=ids))
        assert len(payloads) == 20 and all('"job-' in p for p in payloads)
    finally:
        server.stop()
