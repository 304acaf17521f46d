"""CACHE_URL: sessions and leaderboard pages in Redis, shared by every web process."""

from __future__ import annotations

import secrets
import socket

import pytest
import redis
from django.contrib.sessions.backends.cached_db import SessionStore
from django.core.cache import caches
from django.test import Client, override_settings

from arena.models import Rater
from config.env import cache_from_url
from tests.integration.arena_support import configure_arena, make_arena

REDIS_URL = "redis://127.0.0.1:6379/7"


def redis_is_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not redis_is_up(), reason="needs Redis on 127.0.0.1:6379"),
]


@pytest.fixture
def shared_cache(monkeypatch, settings, tmp_path):
    configure_arena(settings, tmp_path)
    monkeypatch.setenv("CACHE_URL", REDIS_URL)
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"test-{secrets.token_hex(4)}")
    with override_settings(
        CACHES={**settings.CACHES, "default": cache_from_url("CACHE_URL")},
        SESSION_ENGINE="django.contrib.sessions.backends.cached_db",
    ):
        yield caches["default"]
        caches["default"].clear()


def test_logged_in_sessions_are_read_from_redis(shared_cache, django_user_model):
    make_arena()
    user = django_user_model.objects.create_user("voter", password="pw")
    client = Client()
    client.force_login(user)
    session_key = client.cookies["sessionid"].value
    assert shared_cache.get(SessionStore(session_key).cache_key)["_auth_user_id"] == str(user.pk)
    assert client.get("/arena/text-to-image/").status_code == 200
    assert Rater.objects.get(user=user).battles.count() == 1


def test_leaderboard_pages_are_cached_in_redis(shared_cache):
    make_arena()
    assert Client().get("/leaderboard/text-to-image/").status_code == 200
    keys = redis.Redis.from_url(REDIS_URL).keys("*arena:leaderboard:*")
    assert len(keys) == 1
