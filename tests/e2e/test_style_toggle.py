"""The leaderboard's style-control toggle in Chromium: it reorders the rows in place by the
style-controlled rank, updates its label, pressed state and the address, and toggles back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arena.rating_snapshots import latest_snapshot, refresh_rating_snapshots
from tests.e2e.test_arena_browser import (  # noqa: F401 - fixtures
    CHROMIUM,
    allow_orm_beside_playwright,
    browser,
)
from tests.integration.test_style_control_board import TASK, board  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install chromium"),
]


def row_order(page) -> list[str]:
    return page.eval_on_selector_all(
        "#leaderboard tbody tr", "rows => rows.map(r => r.dataset.model)"
    )


def test_the_toggle_orders_by_style_control_and_back(browser, live_server, board):  # noqa: F811
    refresh_rating_snapshots(task=TASK)
    snapshot = latest_snapshot(task=TASK)
    plain = [row["model"] for row in sorted(snapshot.rows, key=lambda r: r["rank"])]
    styled = [r["model"] for r in sorted(snapshot.extra["style"]["rows"], key=lambda r: r["rank"])]
    assert plain != styled  # the confounded board: brightness moves "glow" down

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/leaderboard/{TASK}/")
    page.wait_for_load_state("load")
    toggle = page.locator("#style-toggle")
    assert row_order(page) == plain and toggle.get_attribute("aria-pressed") == "false"

    page.evaluate("() => { window.sameDocument = true; }")  # gone if the link navigated
    toggle.click()
    assert page.evaluate("() => window.sameDocument === true"), "the toggle reloaded the page"
    assert row_order(page) == styled
    assert toggle.get_attribute("aria-pressed") == "true"
    assert toggle.inner_text() == "Order by rating"
    assert re.search(r"\?view=style$", page.url)  # a reload keeps the ordering

    toggle.click()
    assert page.evaluate("() => window.sameDocument === true")
    assert row_order(page) == plain
    assert toggle.get_attribute("aria-pressed") == "false"
    assert not page.url.endswith("view=style")
