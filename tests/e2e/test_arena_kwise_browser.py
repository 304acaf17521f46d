"""K-wise battles in a real browser: rank four samples with the keyboard, best-of-K with the
mouse on a 390 px phone (one column), reveal after the vote only."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.models import Vote
from tests.e2e.test_arena_browser import CHROMIUM, browser  # noqa: F401 (fixture)
from tests.integration.arena_support import make_arena

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install chromium"),
]


@pytest.fixture(autouse=True)
def allow_orm_beside_playwright(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def arena(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARENA_POOL_CACHE_SECONDS = 0
    settings.ARENA_MIN_VIEW_SECONDS = 0.5
    settings.ARENA_REFRESH_DEBOUNCE_SECONDS = 0
    settings.ARENA_BATTLES_PER_MINUTE_PER_RATER = 1000
    settings.ARENA_VOTES_PER_MINUTE_PER_RATER = 1000
    return make_arena(n_models=5, n_prompts=2, seeds=8, showcase=1)


def wait_until_pickable(page) -> None:
    page.wait_for_function("() => !document.querySelector('button.pick').disabled")


def test_rank_four_with_the_keyboard_then_next(browser, live_server, arena):  # noqa: F811
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{live_server.url}/arena/text-to-image/?k=4")
    page.wait_for_load_state("load")
    assert page.locator("figure.side").count() == 4
    text = page.content()
    assert not any(identity in text for identity in arena.identities())
    wait_until_pickable(page)
    for key in ("3", "1", "4"):  # C, A, D; B is implied last
        page.keyboard.press(key)
    assert "C > A > D > B" in page.locator("#ranking-text").inner_text()
    assert page.locator("#rank-B").inner_text() == "#4"
    page.keyboard.press("Backspace")  # undo D (and the implied B)
    assert page.locator("#ranking-text").inner_text().startswith("Your ranking: C > A")
    page.keyboard.press("d")
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.getElementById('next').hidden")
    vote = Vote.objects.get()
    assert vote.kind == "ranking" and len(vote.ranking) == 4
    names = [page.locator(f"#name-{s}").inner_text() for s in "ABCD"]
    assert all(n.startswith("— ") for n in names)
    page.keyboard.press("n")
    page.wait_for_function("() => document.getElementById('next').hidden")
    assert page.locator("#name-A").inner_text() == ""
    wait_until_pickable(page)
    page.keyboard.press("2")
    page.keyboard.press("t")  # only the best
    page.wait_for_function("() => !document.getElementById('next').hidden")
    assert Vote.objects.order_by("-id").first().kind == "top1"


def test_best_of_four_on_a_phone_is_one_column(browser, live_server, arena):  # noqa: F811
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(f"{live_server.url}/arena/text-to-image/?k=4")
    page.wait_for_load_state("load")
    boxes = [page.locator(f"#side-{s}").bounding_box() for s in "ABCD"]
    assert all(b["width"] <= 390 for b in boxes)
    assert len({round(b["x"]) for b in boxes}) == 1  # stacked: one column
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    wait_until_pickable(page)
    page.locator("#side-C button.pick").click()
    page.locator("#best-submit").click()
    page.wait_for_function("() => !document.getElementById('next').hidden")
    vote = Vote.objects.get()
    assert vote.kind == "top1"
    assert "C is the best" in page.locator("#status").inner_text()
