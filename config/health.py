"""/healthz: database and broker reachability as JSON (200 when both are up, 503 otherwise)."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def database_status() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # any driver error means "down"; report it, do not raise
        return {"ok": False, "vendor": connection.vendor, "error": str(exc).splitlines()[0][:200]}


def broker_status() -> dict:
    from django.conf import settings
    from kombu import Connection

    url = settings.CELERY_BROKER_URL
    transport = url.split("://", 1)[0]
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    try:
        with Connection(url, transport_options=options, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": transport}
    except Exception as exc:  # kombu raises transport-specific errors
        return {"ok": False, "transport": transport, "error": str(exc).splitlines()[0][:200]}


@never_cache
@require_GET
def healthz(request):
    db, broker = database_status(), broker_status()
    healthy = db["ok"] and broker["ok"]
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "database": db, "broker": broker},
        status=200 if healthy else 503,
    )
