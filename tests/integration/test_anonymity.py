"""Anonymity against a determined rater (issue 23): two disjoint pools made by the generate stage,
a lookup attack run as an outsider would run it, per-rater exclusion, retirement and refills.

The generators are tiny random native networks saved here and loaded through the code users run;
samples come from the real generate stage (`generate_samples`), pages from the real views.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from PIL import Image

from arena import anonymity
from arena.models import Battle, SampleReveal
from evaluation.management.commands.load_prompt_sets import (
    benchmark_edit_sources,
    load_prompt_set,
)
from evaluation.models import RetiredReason, Sample, SamplePool
from evaluation.pools import (
    SHOWCASE_SEED_BASE,
    retire_samples,
    screen_lookalikes,
)
from evaluation.sample_store import battle_pool_refill, generate_samples, store_sample
from models_registry.generators.native import build_model, save_native
from models_registry.generators.synthetic import benchmark_prompts
from models_registry.reference_models import register_reference_model
from tests.integration.arena_support import age_battle, configure_arena
from tests.integration.registry_support import make_user, token_client
from tests.unit.test_generators_edit import save_trained_editor
from tests.unit.test_generators_native import tiny

# The attacker's pixel match: mean absolute difference (0-255) at the battle media's size, after
# undoing the published copy's whole-pixel upscale (area average) or resampling it (box filter).
MATCH_MAD = 6.0

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def anonymity_settings(settings, tmp_path):
    configure_arena(settings, tmp_path)
    settings.ARENA_RETIRE_AFTER_REVEALS = 5  # the defaults (tests/conftest.py turns them off)
    settings.ARENA_EXCLUDE_SEEN_BY_ADDRESS = False  # on where a test says so
    settings.C2PA_DEMO_DIR = tmp_path / "c2pa"
    settings.C2PA_DEMO_SIGNER = True
    settings.C2PA_SIGNING_CERT = settings.C2PA_SIGNING_KEY = None
    settings.ARENA_LEADERBOARD_CACHE_SECONDS = 0
    settings.GENERATOR_SEEDS_PER_PROMPT = 2
    settings.GENERATOR_SHOWCASE_SEEDS_PER_PROMPT = 2
    return settings


# --- building arenas through the generate stage -------------------------------------------------


def _register(tmp_path: Path, slug: str, *, task: str, seed: int):
    import torch

    if task == "image-edit":
        directory = save_trained_editor(tmp_path / slug, seed=seed)
    else:
        paradigm = "video" if task == "text-to-video" else "flow"
        config = tiny(paradigm, {"name": "euler", "steps": 2, "guidance_scale": 2.0})
        torch.manual_seed(seed)
        model = build_model(config)
        with torch.no_grad():  # a random head, so that each model draws its own pictures
            for parameter in model.parameters():
                parameter.add_(0.3 * torch.randn_like(parameter))
        directory = tmp_path / slug
        save_native(directory, model=model, config=config)
    version, created = register_reference_model(
        directory=directory, slug=slug, display_name=slug.replace("-", " ").title(), description=""
    )
    assert created and version.arena_approved
    return version


def _prompt_set(task: str, n: int = 3) -> str:
    slug = f"tiny-{task}"
    load_prompt_set(
        slug=slug,
        name=slug,
        task=task,
        description="",
        prompts=benchmark_prompts(task, n),
        sources=benchmark_edit_sources(n) if task == "image-edit" else None,
    )
    return slug


def generated_arena(tmp_path: Path, task: str, n_models: int) -> list:
    """`n_models` tiny generators of `task`, each run through the generate stage (both pools)."""
    prompt_set = _prompt_set(task)
    versions = []
    for k in range(n_models):
        version = _register(tmp_path, f"{task[:8]}-gen-{k}", task=task, seed=11 + k)
        report = generate_samples(version_id=version.pk, prompt_set_slug=prompt_set, device="cpu")
        assert report.complete
        versions.append(version)
    return versions


# --- the outsider ---------------------------------------------------------------------------------


def decode(data: bytes) -> np.ndarray | None:
    """uint8 [H, W, 3] of an image, or of a clip's first frame; None for anything else."""
    try:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except Exception:
        pass
    try:
        with av.open(io.BytesIO(data)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except Exception:
        return None


def mad_after_resampling(public: np.ndarray, battle: np.ndarray) -> float:
    """Mean absolute difference of `public` brought to `battle`'s size, as an attacker would:
    a whole-pixel upscale undone by area averaging, any other size by a box resample."""
    h, w = battle.shape[:2]
    H, W = public.shape[:2]
    if (H, W) == (h, w):
        small = public.astype(np.float64)
    elif H % h == 0 and W % w == 0 and H // h == W // w:
        f = H // h
        small = public.reshape(h, f, w, f, 3).astype(np.float64).mean(axis=(1, 3))
    else:
        small = np.asarray(Image.fromarray(public).resize((w, h), Image.BOX), dtype=np.float64)
    return float(np.abs(small - battle.astype(np.float64)).mean())


@dataclass
class Outsider:
    """Saves every public page, gallery, sample page, manifest and API listing it can reach, with
    an API token of its own, and keeps each picture with the model it was shown under."""

    client: Client
    api: object
    tasks: tuple[str, ...]
    pages: dict[str, bytes] = field(default_factory=dict)
    media: list[tuple[str, str, np.ndarray]] = field(default_factory=list)  # (slug, sha, pixels)

    LINK = re.compile(r'(?:src|href)="(/[^"#]*)"')

    def crawl(self) -> Outsider:
        self.pages.clear()
        self.media.clear()
        todo = ["/", *[f"/leaderboard/{t}/" for t in self.tasks]]
        todo += [f"/leaderboard/{t}.json" for t in self.tasks]
        todo += [f"/leaderboard/{t}.csv" for t in self.tasks]
        seen: set[str] = set()
        while todo:
            url = todo.pop()
            if url in seen or url.startswith(("/static/", "/arena/", "/admin/", "/api/")):
                continue
            seen.add(url)
            response = self.client.get(url)
            if response.status_code != 200:
                continue
            body = b"".join(response.streaming_content) if response.streaming else response.content
            self.pages[url] = body
            kind = response.get("Content-Type", "")
            if kind.startswith(("image/", "video/")):
                continue
            text = body.decode(errors="replace")
            owner = self._owner(url, text)
            for link in self.LINK.findall(text):
                todo.append(link)
                if owner and link not in seen:
                    self._fetch_media(link, owner)
        self._crawl_api()
        return self

    def _owner(self, url: str, text: str) -> str:
        """The model a page shows its media under: a model page's slug, a sample page's model."""
        if url.startswith("/models/"):
            return url.split("/")[2]
        found = re.search(r'<h1>Sample of <a href="/models/([^/"]+)/"', text)
        return found.group(1) if found else ""

    def _fetch_media(self, url: str, owner: str) -> None:
        response = self.client.get(url)
        if response.status_code != 200:
            return
        kind = response.get("Content-Type", "")
        if not kind.startswith(("image/", "video/")):
            return
        data = b"".join(response.streaming_content) if response.streaming else response.content
        pixels = decode(data)
        if pixels is not None:
            self.media.append((owner, hashlib.sha256(data).hexdigest(), pixels))

    def _crawl_api(self) -> None:
        url = "/api/v1/models/"
        models = []
        while url:
            body = self.api.get(url).json()
            models += body["results"] if isinstance(body, dict) else body
            url = body.get("next") if isinstance(body, dict) else None
        for model in models:
            slug = model["slug"]
            versions = self.api.get(f"/api/v1/models/{slug}/versions/").json()
            versions = versions["results"] if isinstance(versions, dict) else versions
            for version in versions:
                for path in ("", "metrics/", "stages/"):
                    response = self.api.get(f"/api/v1/versions/{version['id']}/{path}")
                    self.pages[f"api:{version['id']}:{path}"] = response.content
                listing = self.api.get(f"/api/v1/versions/{version['id']}/samples/").json()
                rows = listing["results"] if isinstance(listing, dict) else listing
                for row in rows:
                    for key in ("media_url", "published_url"):
                        link = row.get(key) or ""
                        link = re.sub(r"^https?://[^/]+", "", link)
                        if link:
                            self._fetch_media(link, slug)

    def identify(self, battle_media: bytes) -> set[str]:
        """The models whose public pictures match this battle medium, by hash or by pixels."""
        digest = hashlib.sha256(battle_media).hexdigest()
        pixels = decode(battle_media)
        found = set()
        for slug, sha, public in self.media:
            if sha == digest or (
                pixels is not None and mad_after_resampling(public, pixels) < MATCH_MAD
            ):
                found.add(slug)
        return found

    def text(self) -> str:
        return b"\n".join(self.pages.values()).decode(errors="replace")


@dataclass
class ServedBattle:
    token: str
    media: list[bytes]
    samples: list[Sample]


def serve_battles(client: Client, task: str, n: int, k: int = 2) -> list[ServedBattle]:
    """A rater's battles, media saved before any vote."""
    client.get(f"/arena/{task}/")
    csrf = client.cookies["csrftoken"].value
    out = []
    for _ in range(n):
        body = client.post(
            f"/arena/{task}/battles?k={k}", HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=csrf
        ).json()
        assert "token" in body, body
        media = []
        for item in body["media"]:
            response = client.get(item["url"])
            assert response.status_code == 200
            media.append(b"".join(response.streaming_content))
        battle = Battle.objects.get(token=body["token"])
        samples = [battle.sample_a, battle.sample_b] + [
            extra.sample for extra in battle.extra_samples.order_by("position")
        ]
        assert len(samples) == len(media) == body["size"]
        out.append(ServedBattle(body["token"], media, samples))
    return out


def attack(outsider: Outsider, battles: list[ServedBattle]) -> tuple[int, int, int]:
    """(samples identified correctly, samples matched to a wrong model, samples tried)."""
    right = wrong = tried = 0
    for battle in battles:
        for data, sample in zip(battle.media, battle.samples, strict=True):
            tried += 1
            found = outsider.identify(data)
            right += sample.version.model.slug in found
            wrong += bool(found - {sample.version.model.slug})
    return right, wrong, tried


LOOKUP_CASES = [
    ("text-to-image", 3, 2),
    ("text-to-image", 4, 4),
    ("text-to-video", 2, 2),
    ("image-edit", 2, 2),
]


@pytest.mark.parametrize(("task", "n_models", "k"), LOOKUP_CASES)
def test_a_lookup_attack_identifies_no_model_before_the_vote(tmp_path, task, n_models, k):
    versions = generated_arena(tmp_path, task, n_models)
    owner = make_user("outsider")
    outsider = Outsider(Client(), token_client(owner), (task,)).crawl()
    slugs = {v.model.slug for v in versions}
    # The crawl is not empty: every model shows its showcase publicly, by page and by API.
    assert {slug for slug, _, _ in outsider.media} == slugs
    assert all(s.pool == SamplePool.SHOWCASE for s in Sample.objects.public())
    rater = Client()
    battles = serve_battles(rater, task, n=8, k=k)
    assert {len(b.media) for b in battles} == {k}
    right, wrong, tried = attack(outsider, battles)
    assert (right, wrong) == (0, 0), f"{right} of {tried} battle samples identified"
    # Nothing identifying in any public page or listing: no battle sample's public id, file name
    # or hash.
    public_text = outsider.text()
    for battle in battles:
        for sample in battle.samples:
            assert str(sample.public_id) not in public_text
            assert sample.sha256 not in public_text
            assert sample.media.name.rsplit("/", 1)[-1] not in public_text

    # The control: once the battle pools retire they are public, and the very same attack names
    # the model of every battle sample it saw. It is the pools that protect, not a weak attack.
    # (Every live sample retires: these random networks draw the same picture for a seed
    # whatever the prompt, so the lookalike screen would rightly withhold a lone retiree.)
    live = Sample.objects.live_battle().filter(version__in=versions)
    assert retire_samples(sample_ids=list(live.values_list("pk", flat=True)), reason="reveals")
    outsider.crawl()
    right, wrong, tried = attack(outsider, battles)
    assert right == tried
    # Two editors trained for 3 steps both return nearly their source: they also match each
    # other. The generators of the other tasks are told apart.
    assert wrong == (tried if task == "image-edit" else 0)


def test_the_generate_stage_makes_two_disjoint_pools_and_public_reads_show_the_showcase(
    tmp_path, client
):
    (version,) = generated_arena(tmp_path, "text-to-image", 1)
    samples = list(Sample.objects.filter(version=version))
    battle = [s for s in samples if s.pool == SamplePool.BATTLE]
    showcase = [s for s in samples if s.pool == SamplePool.SHOWCASE]
    assert sorted({s.seed for s in battle}) == [0, 1]
    assert sorted({s.seed for s in showcase}) == [SHOWCASE_SEED_BASE, SHOWCASE_SEED_BASE + 1]
    assert len(battle) == len(showcase) == 6
    assert not {s.sha256 for s in battle} & {s.sha256 for s in showcase}
    assert not any(s.withheld for s in showcase)  # screened when the set was complete

    api = token_client(make_user("reader"))
    listed = api.get(f"/api/v1/versions/{version.pk}/samples/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert {row["public_id"] for row in rows} == {str(s.public_id) for s in showcase}
    page = client.get(f"/models/{version.model.slug}/").content.decode()
    for sample in showcase:
        assert str(sample.public_id) in page
    for sample in battle:
        assert str(sample.public_id) not in page
        for url in (
            f"/samples/{sample.public_id}/",
            f"/samples/{sample.public_id}/media",
            f"/samples/{sample.public_id}/manifest.json",
            f"/models/{version.model.slug}/samples/{sample.public_id}",
        ):
            assert client.get(url).status_code == 404, url


def _vote(client: Client, token: str) -> dict:
    battle = age_battle(Battle.objects.get(token=token), 5)
    response = client.post(
        f"/arena/battles/{battle.token}/vote",
        {"outcome": "model_a"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_a_rater_never_meets_a_sample_they_have_seen_and_is_told_when_none_is_left(
    tmp_path, settings
):
    versions = generated_arena(tmp_path, "text-to-image", 2)
    pool = Sample.objects.live_battle().filter(version__in=versions).count()  # 12
    rater = Client()
    shown: list[int] = []
    while True:
        rater.get("/arena/text-to-image/")
        csrf = rater.cookies["csrftoken"].value
        response = rater.post(
            "/arena/text-to-image/battles", HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=csrf
        )
        if response.status_code == 503:
            break
        assert response.status_code == 201, response.content
        token = response.json()["token"]
        battle = Battle.objects.get(token=token)
        pair = [battle.sample_a_id, battle.sample_b_id]
        assert not set(pair) & set(shown), "a sample whose model this rater has seen came back"
        revealed = _vote(rater, token)
        assert {m["slug"] for m in revealed["models"]} == {v.model.slug for v in versions}
        shown += pair
    body = response.json()
    assert response.status_code == 503 and body["error"] == "pool_exhausted"
    assert "Fresh samples are being generated" in body["message"]
    assert len(shown) == pool  # every live battle sample, each once
    report = {row["model"]: row for row in anonymity.pool_report(task="text-to-image")}
    assert all(row["raters_exhausted"] == 1 and row["unseen_min"] == 0 for row in report.values())
    rater_id = SampleReveal.objects.values_list("rater_id", flat=True).first()
    mine = anonymity.pool_report(task="text-to-image", rater_id=rater_id)
    assert [row["unseen"] for row in mine] == [0, 0]
    out = io.StringIO()
    call_command("arena_pool", "--task", "text-to-image", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split("\t") == [
        "model",
        "live_battle",
        "retired",
        "showcase_public",
        "withheld",
        "raters_with_reveals",
        "unseen_min",
        "unseen_median",
        "raters_exhausted",
    ]
    assert [line.split("\t")[1:] for line in lines[1:]] == [
        ["6", "0", "6", "0", "1", "0", "0.0", "1"]
    ] * 2

    # Another rater still gets battles; a new cookie from the same address does not, unless
    # the address rule is off.
    assert Client(REMOTE_ADDR="10.0.0.9").get("/arena/text-to-image/").context["battle"]
    settings.ARENA_EXCLUDE_SEEN_BY_ADDRESS = True
    fresh_cookie = Client()
    fresh_cookie.get("/arena/text-to-image/")
    csrf = fresh_cookie.cookies["csrftoken"].value
    refused = fresh_cookie.post(
        "/arena/text-to-image/battles", HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert refused.status_code == 503 and refused.json()["error"] == "pool_exhausted"


def test_a_battle_sample_retires_after_r_reveals_and_only_then_is_public(tmp_path, settings):
    settings.ARENA_RETIRE_AFTER_REVEALS = 2
    versions = generated_arena(tmp_path, "text-to-image", 2)
    api = token_client(make_user("reader"))
    voters = [Client(REMOTE_ADDR=f"10.0.1.{k}") for k in range(12)]
    retired_seen = set()
    for voter in voters:
        for battle in serve_battles(voter, "text-to-image", n=1):
            live_before = {s.pk for s in battle.samples if s.retired_at is None}
            assert live_before == {s.pk for s in battle.samples}, "a retired sample was served"
            _vote(voter, battle.token)
        retired_seen |= set(
            Sample.objects.filter(retired_at__isnull=False).values_list("pk", flat=True)
        )
    retired = list(Sample.objects.filter(retired_at__isnull=False))
    assert retired and all(s.retired_reason == RetiredReason.REVEALS for s in retired)
    for sample in retired:
        assert sample.reveals.filter(rater_kind="human").count() >= 2
        assert Client().get(f"/samples/{sample.public_id}/").status_code == 200
    listed = set()
    for version in versions:
        body = api.get(f"/api/v1/versions/{version.pk}/samples/").json()
        listed |= {
            row["public_id"] for row in (body["results"] if isinstance(body, dict) else body)
        }
    assert {str(s.public_id) for s in retired} <= listed
    live = Sample.objects.live_battle().filter(version__in=versions)
    assert not {str(s.public_id) for s in live} & listed
    # A retired sample never comes back into a battle.
    served = set()
    for voter in [Client(REMOTE_ADDR=f"10.0.2.{k}") for k in range(6)]:
        try:
            for battle in serve_battles(voter, "text-to-image", n=1):
                served |= {s.pk for s in battle.samples}
        except AssertionError:
            break  # the pool ran out
    assert not served & {s.pk for s in retired}


def test_a_version_that_leaves_the_arena_retires_its_battle_pool(tmp_path):
    from models_registry.services import version_revoke_arena

    first, second = generated_arena(tmp_path, "text-to-image", 2)
    serve_battles(Client(), "text-to-image", n=1)  # both have been served
    assert anonymity.retire_departed() == []  # both still in the arena
    # A newer version of `second` awaiting approval keeps its pool for when it joins.
    from models_registry.models import ModelVersion

    pending = ModelVersion.objects.create(
        model=second.model, tag="next", status="evaluating", arena_approved=False
    )
    noise = np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    store_sample(
        version=pending,
        prompt=Sample.objects.filter(version=second).first().prompt,
        seed=0,
        pixels=noise,
        generation_seconds=0.1,
    )
    assert anonymity.retire_departed() == []
    pending.delete()
    version_revoke_arena(version=first)
    # Beat runs the retirement with the rating refresh's period.
    from django.conf import settings

    from workers.tasks import retire_departed_samples

    entry = settings.CELERY_BEAT_SCHEDULE["retire-departed-samples"]
    assert entry["task"] == retire_departed_samples.name
    assert retire_departed_samples() == {"retired": 6}
    assert anonymity.retire_departed() == []  # idempotent
    retired = list(Sample.objects.filter(retired_at__isnull=False).values_list("pk", flat=True))
    assert set(retired) == set(
        Sample.objects.filter(version=first, pool=SamplePool.BATTLE).values_list("pk", flat=True)
    )
    assert all(
        s.retired_reason == RetiredReason.LEFT_ARENA for s in Sample.objects.filter(pk__in=retired)
    )
    assert Sample.objects.live_battle().filter(version=second).count() == 6  # untouched


def test_a_model_whose_pictures_ignore_the_seed_shows_no_showcase_while_it_battles(tmp_path):
    """A collapsed model makes the same picture from every seed: its showcase would give its
    battles away, so the screen withholds it until the battle samples retire."""
    from models_registry.models import ModelVersion

    prompt_set = _prompt_set("text-to-image")
    (version,) = generated_arena(tmp_path, "text-to-image", 1)
    collapsed = ModelVersion.objects.create(
        model=version.model, tag="collapsed", status="published", arena_approved=True
    )
    picture = np.full((16, 16, 3), 90, dtype=np.uint8)
    picture[4:12, 4:12] = (200, 30, 30)
    from evaluation.models import Prompt

    for prompt in Prompt.objects.filter(prompt_set__slug=prompt_set):
        for seed in (0, 1, SHOWCASE_SEED_BASE):
            noise = np.random.default_rng(seed).integers(0, 3, picture.shape, dtype=np.uint8)
            store_sample(
                version=collapsed,
                prompt=prompt,
                seed=seed,
                pixels=picture + noise,
                generation_seconds=0.1,
            )
    report = screen_lookalikes(version_id=collapsed.pk)
    assert report.withheld == 3 and report.live_battle == 6
    assert not Sample.objects.public().filter(version=collapsed).exists()
    assert Client().get(f"/models/{version.model.slug}/").status_code == 200
    assert (
        anonymity.retire_departed()
        and not Sample.objects.live_battle().filter(version=version).exists()
    )  # the older version is superseded by the collapsed one
    retire_samples(
        sample_ids=list(
            Sample.objects.live_battle().filter(version=collapsed).values_list("pk", flat=True)
        ),
        reason=RetiredReason.LEFT_ARENA,
    )
    assert Sample.objects.public().filter(version=collapsed).count() == 9


def test_a_refill_adds_fresh_battle_seeds_and_low_pools_are_queued(tmp_path, settings):
    (version,) = generated_arena(tmp_path, "text-to-image", 1)
    live = list(Sample.objects.live_battle().filter(version=version).values_list("pk", flat=True))
    assert anonymity.refill_if_low(version_ids=[version.pk]) == []  # a full pool
    retire_samples(sample_ids=live[:4], reason=RetiredReason.REVEALS)  # 2 of 6 left
    assert anonymity.refill_if_low(version_ids=[version.pk]) == [version.pk]
    assert anonymity.refill_if_low(version_ids=[version.pk]) == []  # debounced
    report = battle_pool_refill(version_id=version.pk)  # what the gpu task runs
    assert report.created == 6 and report.complete
    seeds = set(Sample.objects.live_battle().filter(version=version).values_list("seed", flat=True))
    assert {2, 3} <= seeds
    settings.ARENA_POOL_MAX_SEEDS = 4
    assert battle_pool_refill(version_id=version.pk) is None  # no seed left under the cap


def test_the_voters_reveal_links_open_the_sample_for_them_only(tmp_path):
    generated_arena(tmp_path, "text-to-image", 2)
    rater = Client()
    (battle,) = serve_battles(rater, "text-to-image", n=1)
    before = rater.get(f"/arena/battles/{battle.token}/reveal/A")
    assert before.status_code == 404  # not before the vote
    revealed = _vote(rater, battle.token)
    page = rater.get(revealed["samples"][0]["url"])
    assert page.status_code == 200 and page["Cache-Control"] == "private, no-store"
    html = page.content.decode()
    media = f"/arena/battles/{battle.token}/reveal/A/media"
    assert media in html and rater.get(media).status_code == 200
    assert rater.get(revealed["samples"][0]["manifest_url"]).status_code == 200
    outsider = Client()
    for url in (revealed["samples"][0]["url"], media, f"/samples/{battle.samples[0].public_id}/"):
        assert outsider.get(url).status_code == 404
