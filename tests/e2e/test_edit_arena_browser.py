"""The image-edit arena in a real browser: the instruction, the source image and two edits, a
vote, and the next battle bringing its own source."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from arena.models import Vote
from evaluation.models import PromptSet
from tests.e2e.test_arena_browser import ARTIFACTS, CHROMIUM, browser, wait_until_votable
from tests.integration.arena_support import Arena, add_model

__all__ = ["browser"]  # the fixture, shared with the other browser tests

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="chromium"),
]


@pytest.fixture(autouse=True)
def allow_orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def edit_arena(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARENA_POOL_CACHE_SECONDS = 0
    settings.ARENA_MIN_VIEW_SECONDS = 0.5
    settings.ARENA_REFRESH_DEBOUNCE_SECONDS = 0
    settings.ARENA_BATTLES_PER_MINUTE_PER_RATER = 1000
    settings.ARENA_VOTES_PER_MINUTE_PER_RATER = 1000
    ARTIFACTS.mkdir(exist_ok=True)
    call_command("load_prompt_sets", stdout=io.StringIO())
    prompt_set = PromptSet.objects.get(slug="edit-benchmark")
    owner = get_user_model().objects.create_user("edit-owner", password="pw")
    arena = Arena(task="image-edit", owner=owner, prompt_set=prompt_set)
    arena.prompts = list(prompt_set.prompts.order_by("position")[:2])
    for _ in range(2):
        add_model(arena)
    return arena


def sources_and_edits_loaded(page) -> bool:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('img.media, img.source-media'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )


def test_an_edit_battle_shows_instruction_source_and_two_edits_and_takes_a_vote(
    browser, live_server, edit_arena
):
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(f"{live_server.url}/arena/image-edit/")
    page.wait_for_load_state("load")
    assert sources_and_edits_loaded(page)
    assert page.locator(".prompt-label").inner_text() == "Instruction:"
    instruction = page.locator("#prompt-text").inner_text()
    assert instruction in {p.text for p in edit_arena.prompts}
    source = page.locator("#source img")
    assert source.get_attribute("alt") == "Source image to edit"
    assert page.locator("img.media").count() == 2
    # The source sits above the two edits.
    assert source.bounding_box()["y"] < page.locator("#side-A").bounding_box()["y"]
    wait_until_votable(page)
    page.keyboard.press("1")
    page.locator("#next").wait_for(state="visible")
    page.screenshot(path=str(ARTIFACTS / "arena-edit-revealed.png"), full_page=True)
    first_source = source.get_attribute("src")

    page.keyboard.press("n")
    page.locator("#next").wait_for(state="hidden")
    assert source.get_attribute("src") != first_source  # the next battle's own source
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('img.media, img.source-media'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    wait_until_votable(page)
    page.keyboard.press("2")
    page.locator("#next").wait_for(state="visible")
    assert sorted(Vote.objects.values_list("task", "outcome")) == [
        ("image-edit", "model_a"),
        ("image-edit", "model_b"),
    ]
