"""The arena and leaderboard in a real browser (Playwright driving Debian's headless Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.models import Vote
from arena.rating_snapshots import refresh_rating_snapshots
from tests.integration.arena_support import cast_votes, make_arena


@pytest.fixture(autouse=True)
def allow_orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop; only these tests may touch the ORM beside it."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install chromium"),
]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def arena(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARENA_POOL_CACHE_SECONDS = 0
    settings.ARENA_MIN_VIEW_SECONDS = 0.5
    settings.ARENA_REFRESH_DEBOUNCE_SECONDS = 0
    settings.ARENA_BATTLES_PER_MINUTE_PER_RATER = 1000
    settings.ARENA_VOTES_PER_MINUTE_PER_RATER = 1000
    ARTIFACTS.mkdir(exist_ok=True)
    return make_arena(n_models=3, n_prompts=2, seeds=8, showcase=1)


def wait_until_votable(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('#vote-form button[name=outcome]').disabled"
    )


def images_loaded(page) -> bool:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('img.media'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )


def test_vote_with_mouse_and_keyboard_reveal_and_next(browser, live_server, arena):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{live_server.url}/arena/text-to-image/")
    page.wait_for_load_state("load")
    assert images_loaded(page)
    text = page.content()
    for model in arena.models:
        assert model.display_name not in text and model.slug not in text
    wait_until_votable(page)
    page.get_by_role("button", name="A is better").click()
    page.locator("#next").wait_for(state="visible")
    revealed = page.locator("#name-A").inner_text() + page.locator("#name-B").inner_text()
    assert any(m.display_name in revealed for m in arena.models), (
        revealed,
        page.locator("#status").inner_text(),
    )
    assert "Vote recorded" in page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "arena-revealed.png"), full_page=True)
    first_prompt_src = page.locator("#side-A img").get_attribute("src")

    page.get_by_role("button", name="Next battle").click()
    page.locator("#next").wait_for(state="hidden")
    assert page.locator("#name-A").inner_text() == ""
    assert page.locator("#side-A img").get_attribute("src") != first_prompt_src
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('img.media'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    wait_until_votable(page)
    page.keyboard.press("2")
    page.locator("#next").wait_for(state="visible")
    page.keyboard.press("n")
    page.locator("#next").wait_for(state="hidden")
    wait_until_votable(page)
    page.keyboard.press("4")
    page.locator("#next").wait_for(state="visible")
    assert sorted(Vote.objects.values_list("outcome", flat=True)) == [
        "both_bad",
        "model_a",
        "model_b",
    ]


def test_voting_too_early_shows_the_reason(browser, live_server, arena, settings):
    settings.ARENA_MIN_VIEW_SECONDS = 30
    page = browser.new_page()
    page.goto(f"{live_server.url}/arena/text-to-image/")
    assert page.get_by_role("button", name="Tie").is_disabled()
    assert "voting opens in 30" in page.locator("#status").inner_text()
    page.keyboard.press("3")
    assert "at least 30 seconds" in page.locator("#status").inner_text()
    assert Vote.objects.count() == 0


def test_phone_sized_screen_stacks_the_samples(browser, live_server, arena):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(f"{live_server.url}/arena/text-to-image/")
    a = page.locator("#side-A").bounding_box()
    b = page.locator("#side-B").bounding_box()
    assert b["y"] >= a["y"] + a["height"] - 1  # B below A, not squeezed beside it
    assert a["width"] <= 390
    page.screenshot(path=str(ARTIFACTS / "arena-phone.png"), full_page=True)


def test_leaderboard_renders_with_plots_and_sorts(browser, live_server, arena):
    cast_votes(arena, 45)
    refresh_rating_snapshots(task="text-to-image")
    cast_votes(arena, 15)
    refresh_rating_snapshots(task="text-to-image")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{live_server.url}/leaderboard/text-to-image/")
    rows = page.locator("#leaderboard tbody tr")
    assert rows.count() == 3
    for chart in ("#ci-plot svg", "#heatmap svg", "#history svg"):
        box = page.locator(chart).bounding_box()
        assert box and box["width"] > 200 and box["height"] > 50, chart
    page.get_by_role("button", name="Votes").click()
    votes_header = page.locator("th", has=page.get_by_role("button", name="Votes"))
    assert votes_header.get_attribute("aria-sort") == "ascending"
    counts = [int(rows.nth(k).locator("td").nth(5).inner_text()) for k in range(3)]
    assert counts == sorted(counts)
    page.screenshot(path=str(ARTIFACTS / "leaderboard.png"), full_page=True)
    page.get_by_role("link", name=arena.models[2].display_name).click()
    page.wait_for_url(f"**/models/{arena.models[2].slug}/")
    assert "Head-to-head" in page.content()
    page.screenshot(path=str(ARTIFACTS / "model-page.png"), full_page=True)
