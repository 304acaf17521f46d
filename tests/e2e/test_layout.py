"""No clipped labels or columns (issue 14): every page at a 1280 px desktop and a 390 px phone.

Each page is rendered in Chromium with a full demo-like board (long model names, every metric
column, a judge column, charts), screenshotted into test-artifacts/, and measured: the page must
not scroll sideways, no element may hide overflowing text, every chart label must lie inside its
chart, and at 1280 px every leaderboard column must be visible without scrolling the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.judging import judge_rater
from arena.rating_snapshots import refresh_rating_snapshots
from evaluation.metrics.catalogue import METRICS
from evaluation.models import MetricResult
from tests.e2e.test_arena_browser import (  # noqa: F401 - fixtures
    ARTIFACTS,
    CHROMIUM,
    allow_orm_beside_playwright,
    browser,
)
from tests.integration.arena_support import add_model, cast_votes, judge_vote, make_arena

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install chromium"),
]

WIDTHS = {"desktop": 1280, "phone": 390}

# Problems a page has, measured in the browser (a list of strings; empty = none).
MEASURE = """
(desktopTables) => {
  const problems = [];
  const root = document.scrollingElement;
  if (root.scrollWidth > window.innerWidth + 1) {
    problems.push(`page scrolls sideways: ${root.scrollWidth}px > ${window.innerWidth}px`);
  }
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.visually-hidden') || el.closest('svg')) continue;
    const style = getComputedStyle(el);
    const clips = ['hidden', 'clip'].includes(style.overflowX) || style.textOverflow === 'ellipsis';
    if (clips && el.scrollWidth > el.clientWidth + 1 && el.textContent.trim()) {
      problems.push(`${el.tagName.toLowerCase()}.${el.className} hides overflowing text`);
    }
  }
  for (const cell of document.querySelectorAll('th, td')) {
    if (cell.scrollWidth > cell.clientWidth + 1) {
      problems.push(`cell "${cell.textContent.trim().slice(0, 30)}" overflows its column`);
    }
  }
  for (const svg of document.querySelectorAll('svg.chart')) {
    const box = svg.getBoundingClientRect();  // on screen: rotations and scaling included
    for (const text of svg.querySelectorAll('text')) {
      const b = text.getBoundingClientRect();
      if (b.left < box.left - 1 || b.right > box.right + 1 || b.top < box.top - 1
          || b.bottom > box.bottom + 1) {
        problems.push(`chart label "${text.textContent}" is cut at the chart's edge`);
      }
    }
  }
  if (desktopTables) {
    for (const wrap of document.querySelectorAll('.table-wrap')) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        problems.push(`table needs sideways scrolling: ${wrap.scrollWidth} > ${wrap.clientWidth}`);
      }
    }
  }
  return problems;
}
"""


@pytest.fixture
def demo_board(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARENA_POOL_CACHE_SECONDS = 0
    settings.ARENA_REFRESH_DEBOUNCE_SECONDS = 0
    settings.ARENA_BATTLES_PER_MINUTE_PER_RATER = 10_000
    settings.ARENA_VOTES_PER_MINUTE_PER_RATER = 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    arena = make_arena(n_models=4, n_prompts=3, seeds=4, showcase=1)
    for name in (
        "Reference VE-SDE score model (PC sampler)",
        "Reference 2-rectified flow, 2 steps",
        "Reference DDPM (DDIM sampler)",
    ):
        add_model(arena, name=name)
    cast_votes(arena, 120)
    image_metrics = [m for m, spec in METRICS.items() if "text-to-image" in spec.tasks]
    for k, version in enumerate(arena.versions):
        for j, name in enumerate(image_metrics):
            MetricResult.objects.create(
                version=version,
                metric=name,
                value=1234.5678 / (k + j + 1),
                lower=1000.0 / (k + j + 1),
                upper=1500.0 / (k + j + 1),
                n=96,
            )
    judge = judge_rater(judge_name="synthetic-checker")
    samples = [version.samples.first() for version in arena.versions]
    for k in range(40):
        a, b = samples[k % len(samples)], samples[(k * 3 + 1) % len(samples)]
        if a.version.model_id == b.version.model_id:
            continue
        judge_vote(judge, a, b, "model_a" if k % 3 else "model_b", token=f"layout-{k}")
    refresh_rating_snapshots(task="text-to-image")
    from models_registry.reference_training import training_jobs_queue
    from pipeline.seeding import demo_seed_jobs

    training_jobs_queue(jobs=demo_seed_jobs())  # the home page's progress table, long labels
    return arena


def pages(arena) -> dict[str, str]:
    return {
        "home": "/",
        "arena": "/arena/text-to-image/",
        "video-arena": "/arena/text-to-video/",
        "leaderboard": "/leaderboard/text-to-image/",
        "video-leaderboard": "/leaderboard/text-to-video/",
        "model": f"/models/{arena.models[-1].slug}/",
        "sample": f"/samples/{arena.samples[-1].public_id}/",
        "verify": "/verify",
    }


@pytest.mark.parametrize("device", sorted(WIDTHS))
def test_no_page_clips_labels_or_columns(browser, live_server, demo_board, device):  # noqa: F811
    page = browser.new_page(viewport={"width": WIDTHS[device], "height": 900})
    found = {}
    for name, path in pages(demo_board).items():
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
        page.screenshot(path=str(ARTIFACTS / f"layout-{name}-{device}.png"), full_page=True)
        problems = page.evaluate(MEASURE, device == "desktop")
        if problems:
            found[name] = problems
    assert not found, found
