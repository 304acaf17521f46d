"""Fuzz the published OpenAPI schema with schemathesis against a live server: no 5xx, ever."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from models_registry.models import GenerativeModel, ModelVersion
from models_registry.services import api_token_create, upload_start
from tests.integration.registry_support import make_user


@pytest.fixture
def author_token(live_server, settings, tmp_path) -> str:
    settings.MEDIA_ROOT = tmp_path / "media"
    alice = make_user("alice")
    _, key = api_token_create(user=alice)
    # Real objects with small ids, so generated ids sometimes hit something that exists.
    model = GenerativeModel.objects.create(
        slug="tiny", display_name="Tiny", task="text-to-image", paradigm="flow", owner=alice
    )
    ModelVersion.objects.create(model=model, tag="draft")
    uploading = ModelVersion.objects.create(model=model, tag="up")
    upload_start(version=uploading, user=alice, filename="c.tar", total_size=1024)
    return key


@pytest.fixture
def api_schema(live_server, author_token):
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.include(path_regex="^/api/v1/").parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_answers_5xx(case, author_token):
    case.call_and_validate(
        headers={"Authorization": f"Token {author_token}"}, checks=[not_a_server_error]
    )
