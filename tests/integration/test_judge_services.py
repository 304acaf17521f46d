"""VLM-judge services on the database: single-sample scores, judge votes on battles, agreement,
the `judge` command — against a loopback OpenAI-compatible server and a tiny local VLM — and the
synthetic checker as a pairwise judge that needs no VLM."""

from __future__ import annotations

import hashlib
import io
import json
import math
import secrets
from datetime import timedelta

import av
import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from arena.judging import judge_battles, judge_human_agreement
from arena.models import Battle, Rater, RaterKind, Vote
from evaluation.judging import JudgeNotConfigured, judge_version_samples
from evaluation.models import JudgeCacheEntry, JudgeResult, MetricResult, Prompt, PromptSet, Sample
from evaluation.sample_store import store_sample
from models_registry.generators.synthetic import (
    benchmark_prompts,
    parse_caption,
    render_image,
    render_video,
)
from models_registry.models import GenerativeModel, ModelVersion
from tests.unit.test_judge_support import (
    OpenAICompatibleServer,
    build_tiny_llava,
    completion,
    is_red,
    request_images,
    request_text,
    solid_png,
)

RED, BLUE = (230, 20, 20), (20, 20, 230)


def make_version(slug: str, task: str = "text-to-image") -> ModelVersion:
    owner, _ = get_user_model().objects.get_or_create(username="author")
    model = GenerativeModel.objects.create(
        slug=slug,
        display_name=slug,
        task=task,
        paradigm="diffusion",
        owner=owner,
        visibility="public",
    )
    return ModelVersion.objects.create(model=model, tag="v1", status="published")


def make_prompts(n: int, task: str = "text-to-image") -> list[Prompt]:
    prompt_set, _ = PromptSet.objects.get_or_create(
        slug=f"judge-{task}", defaults={"name": "judge", "task": task}
    )
    return [
        Prompt.objects.get_or_create(
            prompt_set=prompt_set,
            text=f"a red square number {i}",
            defaults={"category": "colour", "position": i},
        )[0]
        for i in range(n)
    ]


def make_image_sample(version: ModelVersion, prompt: Prompt, color, seed: int = 0) -> Sample:
    data = solid_png(color, size=(32, 32))
    return Sample.objects.create(
        version=version,
        prompt=prompt,
        seed=seed,
        media=ContentFile(data, name=f"judge-{secrets.token_hex(6)}.png"),
        media_kind="image",
        width=32,
        height=32,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def mp4_bytes(colors: list[tuple[int, int, int]]) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for color in colors:
            frame = av.VideoFrame.from_ndarray(
                np.full((32, 32, 3), color, dtype=np.uint8), format="rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def rubric_for_red(request, attempt):
    """A judge that scores red samples 9 / 8 and anything else 2 / 8."""
    images = request_images(request)
    sc = 9 if all(is_red(png) for png in images) else 2
    return completion(
        json.dumps({"semantic_consistency": sc, "perceptual_quality": 8, "rationale": "colour"})
    )


def prefers_red(request, attempt):
    images = request_images(request)
    half = len(images) // 2
    first_red, second_red = is_red(images[0]), is_red(images[half])
    winner = "tie" if first_red == second_red else ("A" if first_red else "B")
    return completion(json.dumps({"winner": winner, "rationale": "the red one matches"}))


@pytest.fixture
def api_judge(settings):
    def configure(respond, **kwargs):
        server = OpenAICompatibleServer(respond, **kwargs).__enter__()
        servers.append(server)
        settings.JUDGE_BACKEND = "api"
        settings.JUDGE_API_BASE_URL = server.url
        settings.JUDGE_API_MODEL = "tiny-judge"
        settings.JUDGE_API_BACKOFF_SECONDS = 0.01
        settings.JUDGE_API_BACKOFF_MAX_SECONDS = 0.05
        settings.JUDGE_NAME = ""
        return server

    servers: list[OpenAICompatibleServer] = []
    yield configure
    for server in servers:
        server.__exit__(None, None, None)


@pytest.mark.django_db
def test_rubric_judging_stores_results_and_a_metric_and_a_rerun_is_free(api_judge):
    server = api_judge(rubric_for_red)
    version = make_version("red-model")
    prompts = make_prompts(3)
    for prompt in prompts:
        make_image_sample(version, prompt, RED)
    seen = []
    summary = judge_version_samples(version=version, mode="rubric", progress=seen.append)
    assert (summary.ok, summary.failed, summary.cached, sum(seen)) == (3, 0, 0, 3)
    assert server.attempts == 3 and summary.prompt_tokens == 33 and summary.completion_tokens == 21
    results = JudgeResult.objects.filter(sample__version=version, judge="tiny-judge", mode="rubric")
    assert results.count() == 3 and {r.status for r in results} == {"ok"}
    assert [r.score for r in results] == pytest.approx([math.sqrt(9 * 8)] * 3)
    assert all(r.rationale == "colour" and r.prompt_tokens == 11 for r in results)
    metric = MetricResult.objects.get(version=version, metric="viescore", backbone="tiny-judge")
    assert metric.status == "ok" and metric.n == 3 and metric.value == pytest.approx(math.sqrt(72))
    assert JudgeCacheEntry.objects.filter(judge="tiny-judge").count() == 3

    again = judge_version_samples(version=version, mode="rubric")
    assert again.skipped == 3 and server.attempts == 3  # already judged: nothing asked
    forced = judge_version_samples(version=version, mode="rubric", force=True)
    assert (
        forced.cached == 3 and forced.prompt_tokens == 0 and server.attempts == 3
    )  # from the cache
    assert JudgeResult.objects.filter(sample__version=version).count() == 3  # no duplicates


@pytest.mark.django_db
def test_failed_verdicts_are_stored_with_their_reason_and_retried_next_time(api_judge):
    state = {"broken": True}

    def flaky_on_blue(request, attempt):
        if state["broken"] and not is_red(request_images(request)[0]):
            return completion("The image is lovely.")  # no scores: a malformed verdict
        return rubric_for_red(request, attempt)

    api_judge(flaky_on_blue)
    version = make_version("mixed-model")
    red_prompt, blue_prompt = make_prompts(2)
    make_image_sample(version, red_prompt, RED)
    blue = make_image_sample(version, blue_prompt, BLUE)
    summary = judge_version_samples(version=version, mode="rubric")
    assert (summary.ok, summary.failed) == (1, 1)
    failed = JudgeResult.objects.get(sample=blue)
    assert (
        failed.status == "failed"
        and failed.score is None
        and "semantic_consistency" in failed.error
    )
    assert failed.raw["answers"] == ["The image is lovely."]
    metric = MetricResult.objects.get(version=version, metric="viescore")
    assert metric.status == "ok" and metric.n == 1 and "1 of 2 samples failed" in metric.message

    state["broken"] = False
    retry = judge_version_samples(version=version, mode="rubric")
    assert (retry.skipped, retry.ok) == (1, 1)
    assert JudgeResult.objects.get(sample=blue).score == pytest.approx(math.sqrt(2 * 8))
    metric.refresh_from_db()
    assert metric.n == 2 and metric.message == ""
    assert metric.lower < metric.value < metric.upper


@pytest.mark.django_db
def test_video_samples_are_judged_on_evenly_sampled_frames(api_judge, settings):
    server = api_judge(rubric_for_red)
    settings.JUDGE_VIDEO_FRAMES = 4
    version = make_version("video-model", task="text-to-video")
    (prompt,) = make_prompts(1, task="text-to-video")
    data = mp4_bytes([RED] * 12)
    Sample.objects.create(
        version=version,
        prompt=prompt,
        seed=0,
        media=ContentFile(data, name="judge-video.mp4"),
        media_kind="video",
        width=32,
        height=32,
        frames=12,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    summary = judge_version_samples(version=version, mode="rubric")
    assert summary.ok == 1
    frames = request_images(server.requests[0])
    assert len(frames) == 4 and all(is_red(frame) for frame in frames)
    assert "4 frames sampled evenly" in request_text(server.requests[0])


@pytest.mark.django_db
def test_vqascore_with_the_local_vlm_is_stored_as_a_metric_with_the_weights_hash(
    settings, tmp_path
):
    from evaluation.judges.vqascore import weights_sha256

    directory = build_tiny_llava(tmp_path / "tiny-llava")
    settings.JUDGE_BACKEND = ""
    settings.JUDGE_API_BASE_URL = ""
    settings.JUDGE_LOCAL_VLM_PATH = directory
    settings.JUDGE_LOCAL_DEVICE = "cpu"
    settings.JUDGE_NAME = ""
    version = make_version("local-judged")
    for prompt, color in zip(make_prompts(2), [RED, BLUE], strict=True):
        make_image_sample(version, prompt, color)
    summary = judge_version_samples(version=version)  # local backend, VQAScore by default
    assert summary.mode == "vqascore" and summary.ok == 2 and summary.judge == "tiny-llava"
    scores = list(JudgeResult.objects.filter(mode="vqascore").values_list("score", flat=True))
    assert all(0.0 <= s <= 1.0 for s in scores)
    metric = MetricResult.objects.get(version=version, metric="vqascore", backbone="tiny-llava")
    assert metric.value == pytest.approx(np.mean(scores)) and metric.n == 2
    assert metric.weights_sha256 == weights_sha256(directory)


def human_vote(
    prompt: Prompt, sample_a: Sample, sample_b: Sample, outcome: str, rater: Rater
) -> Vote:
    now = timezone.now()
    battle = Battle.objects.create(
        token=secrets.token_urlsafe(32),
        task=prompt.prompt_set.task,
        prompt=prompt,
        sample_a=sample_a,
        sample_b=sample_b,
        served_to=rater,
        served_at=now,
        expires_at=now + timedelta(minutes=30),
    )
    return Vote.objects.create(
        battle=battle,
        rater=rater,
        rater_kind=RaterKind.HUMAN,
        outcome=outcome,
        task=battle.task,
        category=prompt.category,
        model_a=sample_a.version.model,
        model_b=sample_b.version.model,
    )


@pytest.fixture
def arena_with_human_votes(db):
    """Four prompts, a red and a blue model; human votes with known majorities per pair."""
    red_version, blue_version = make_version("red-gen"), make_version("blue-gen")
    prompts = make_prompts(4)
    red = [make_image_sample(red_version, p, RED) for p in prompts]
    blue = [make_image_sample(blue_version, p, BLUE) for p in prompts]
    humans = [Rater.objects.create(kind=RaterKind.HUMAN, session_key=f"s{i}") for i in range(3)]
    # Pair 0: red wins 2-1 (majority red). Pair 1: shown blue-first, red wins (majority red).
    human_vote(prompts[0], red[0], blue[0], "model_a", humans[0])
    human_vote(prompts[0], red[0], blue[0], "model_a", humans[1])
    human_vote(prompts[0], blue[0], red[0], "model_a", humans[2])
    human_vote(prompts[1], blue[1], red[1], "model_b", humans[0])
    # Pair 2: two ties (one "both bad") and one red win: majority tie. Pair 3: 1-1, no majority.
    human_vote(prompts[2], red[2], blue[2], "tie", humans[0])
    human_vote(prompts[2], blue[2], red[2], "both_bad", humans[1])
    human_vote(prompts[2], red[2], blue[2], "model_a", humans[2])
    human_vote(prompts[3], red[3], blue[3], "model_a", humans[0])
    human_vote(prompts[3], red[3], blue[3], "model_b", humans[1])
    return {"prompts": prompts, "red": red, "blue": blue, "red_model": red_version.model}


@pytest.mark.django_db
def test_battles_are_judged_in_both_orders_into_separate_judge_votes(
    api_judge, arena_with_human_votes
):
    server = api_judge(prefers_red)
    human_votes = Vote.objects.filter(rater_kind=RaterKind.HUMAN).count()
    progress = []
    summary = judge_battles(task="text-to-image", progress=progress.append)
    assert (summary.pairs, summary.ok, summary.failed, sum(progress)) == (4, 4, 0, 4)
    assert server.attempts == 8  # two orders per distinct pair
    rater = Rater.objects.get(judge_name="tiny-judge")
    assert rater.kind == RaterKind.JUDGE
    judge_votes = Vote.objects.filter(rater=rater)
    assert judge_votes.count() == 4 and set(judge_votes.values_list("rater_kind", flat=True)) == {
        "judge"
    }
    for vote in judge_votes.select_related("battle"):
        assert vote.battle.served_to == rater
        winner = vote.model_a if vote.outcome == "model_a" else vote.model_b
        assert (
            vote.outcome in ("model_a", "model_b") and winner == arena_with_human_votes["red_model"]
        )
    assert Vote.objects.filter(rater_kind=RaterKind.HUMAN).count() == human_votes

    again = judge_battles(task="text-to-image")
    assert again.pairs == 0 and server.attempts == 8 and judge_votes.count() == 4


@pytest.mark.django_db
def test_judge_human_agreement_on_votes_with_a_known_answer(api_judge, arena_with_human_votes):
    api_judge(prefers_red)
    judge_battles(task="text-to-image")
    result = judge_human_agreement(task="text-to-image")
    # The judge picks red everywhere: right on pairs 0 and 1, wrong on pair 2 (humans: tie);
    # pair 3 has no human majority.
    assert result["judge"] == "tiny-judge" and (result["items"], result["no_majority"]) == (4, 1)
    assert (result["with_ties"]["n"], result["with_ties"]["correct"]) == (3, 2)
    assert result["with_ties"]["accuracy"] == pytest.approx(2 / 3)
    assert result["with_ties"]["lower"] < 2 / 3 < result["with_ties"]["upper"]
    assert (result["without_ties"]["n"], result["without_ties"]["correct"]) == (2, 2)
    assert judge_human_agreement(task="text-to-video")["with_ties"]["accuracy"] is None


@pytest.mark.django_db
def test_judge_command_runs_with_a_progress_bar_and_reports(api_judge, capsys):
    server = api_judge(rubric_for_red)
    version = make_version("cli-model")
    for prompt in make_prompts(2):
        make_image_sample(version, prompt, RED)
    out = io.StringIO()
    call_command(
        "judge", "--version", "cli-model@v1", "--mode", "rubric", "--backend", "api", stdout=out
    )
    assert "2 ok, 0 failed" in out.getvalue() and "viescore = 8.4853" in out.getvalue()
    assert "2/2" in capsys.readouterr().err  # tqdm's bar
    assert server.attempts == 2

    out = io.StringIO()
    call_command("judge", "--agreement", "--task", "text-to-image", stdout=out)
    assert json.loads(out.getvalue())["task"] == "text-to-image"


@pytest.mark.django_db
def test_judge_command_errors_name_what_is_wrong(settings):
    settings.JUDGE_BACKEND = ""
    settings.JUDGE_API_BASE_URL = ""
    settings.JUDGE_LOCAL_VLM_PATH = None
    with pytest.raises(CommandError, match="expected <model-slug>@<tag>"):
        call_command("judge", "--version", "no-tag")
    with pytest.raises(CommandError, match="no such model version"):
        call_command("judge", "--version", "ghost@v9")
    version = make_version("unjudged")
    make_image_sample(version, make_prompts(1)[0], RED)
    with pytest.raises(CommandError, match="JUDGE_API_BASE_URL.*JUDGE_LOCAL_VLM_PATH"):
        call_command("judge", "--version", "unjudged@v1")
    with pytest.raises(CommandError, match="JUDGE_API_BASE_URL"):
        call_command("judge", "--version", "unjudged@v1", "--backend", "api")
    with pytest.raises(CommandError, match="--agreement needs --task"):
        call_command("judge", "--agreement")
    assert not JudgeResult.objects.exists() and not MetricResult.objects.exists()


# --- the synthetic checker as a pairwise judge (no VLM) -----------------------------------------
@pytest.fixture(scope="module")
def checker_weights(tmp_path_factory):
    return tmp_path_factory.mktemp("checker") / "prompt-checker.safetensors"


@pytest.fixture
def checker_only(settings, checker_weights):
    """No VLM judge at all; the checker's weights fitted on first use at their path."""
    settings.JUDGE_BACKEND = ""
    settings.JUDGE_API_BASE_URL = ""
    settings.JUDGE_API_MODEL = ""
    settings.JUDGE_LOCAL_VLM_PATH = None
    settings.PROMPT_CHECKER_WEIGHTS_PATH = checker_weights
    return checker_weights


def synthetic_prompts(task: str, n: int) -> list[Prompt]:
    prompt_set, _ = PromptSet.objects.get_or_create(
        slug=f"synthetic-{task}", defaults={"name": "synthetic", "task": task}
    )
    return [
        Prompt.objects.create(prompt_set=prompt_set, text=text, category=category, position=i)
        for i, (text, category) in enumerate(benchmark_prompts(task, n))
    ]


def rendered(prompt: Prompt, **changes) -> np.ndarray:
    """The render of the prompt's caption (with `changes` to its attributes)."""
    attrs = {k: v for k, v in parse_caption(prompt.text).items() if v is not None}
    if "direction" in attrs:
        return render_video(**{**attrs, **changes}, frames=8)
    return render_image(**{**attrs, **changes})


def noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def stored(version: ModelVersion, prompt: Prompt, pixels: np.ndarray) -> Sample:
    return store_sample(
        version=version, prompt=prompt, seed=0, pixels=pixels, generation_seconds=0
    )[0]


@pytest.mark.django_db
def test_the_checker_judges_battles_without_a_vlm_preferring_the_render(checker_only):
    renders, other_renders = make_version("renders"), make_version("renders-too")
    noisy, noisier = make_version("noisy"), make_version("noisier")
    prompts = synthetic_prompts("text-to-image", 4)
    (free_text,) = make_prompts(1)  # "a red square number 0": outside the grammar
    human = Rater.objects.create(kind=RaterKind.HUMAN, session_key="h")
    good = [stored(renders, p, rendered(p)) for p in prompts]
    bad = [stored(noisy, p, noise(i)) for i, p in enumerate(prompts)]
    # Render vs noise, both ways round, on prompts 0 and 1: the render wins.
    human_vote(prompts[0], good[0], bad[0], "model_b", human)
    human_vote(prompts[1], bad[1], good[1], "model_a", human)
    # Two correct renders: a tie. Two noise images: both bad.
    human_vote(
        prompts[2], good[2], stored(other_renders, prompts[2], rendered(prompts[2])), "tie", human
    )
    human_vote(prompts[3], bad[3], stored(noisier, prompts[3], noise(99)), "tie", human)
    # A prompt the checker cannot read: no verdict, no vote.
    human_vote(
        free_text,
        make_image_sample(renders, free_text, RED),
        make_image_sample(noisy, free_text, BLUE),
        "model_a",
        human,
    )
    human_votes = Vote.objects.filter(rater_kind=RaterKind.HUMAN).count()

    summary = judge_battles(task="text-to-image", backend="checker")
    assert summary.judge == "synthetic-checker"
    assert (summary.pairs, summary.ok, summary.failed, summary.unjudgeable) == (4, 4, 0, 1)
    assert summary.votes == {"model_a": 1, "model_b": 1, "tie": 1, "both_bad": 1}
    rater = Rater.objects.get(judge_name="synthetic-checker")
    assert rater.kind == RaterKind.JUDGE
    votes = {
        v.battle.prompt_id: v for v in Vote.objects.filter(rater=rater).select_related("battle")
    }
    assert set(votes) == {p.pk for p in prompts}
    for prompt in prompts[:2]:
        vote = votes[prompt.pk]
        winner = vote.model_a if vote.outcome == "model_a" else vote.model_b
        assert vote.rater_kind == "judge" and winner == renders.model
        assert vote.battle.served_to == rater
    assert votes[prompts[2].pk].outcome == "tie" and votes[prompts[3].pk].outcome == "both_bad"
    assert Vote.objects.filter(rater_kind=RaterKind.HUMAN).count() == human_votes

    again = judge_battles(task="text-to-image", backend="checker")
    assert (again.pairs, again.unjudgeable) == (0, 1) and Vote.objects.filter(
        rater=rater
    ).count() == 4


@pytest.mark.django_db
def test_the_checker_reads_the_motion_of_video_battles(checker_only):
    right, wrong = (
        make_version("right-way", "text-to-video"),
        make_version("wrong-way", "text-to-video"),
    )
    prompts = synthetic_prompts("text-to-video", 2)
    human = Rater.objects.create(kind=RaterKind.HUMAN, session_key="v")
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}
    for i, prompt in enumerate(prompts):
        reversed_ = rendered(prompt, direction=opposite[parse_caption(prompt.text)["direction"]])
        pair = [stored(right, prompt, rendered(prompt)), stored(wrong, prompt, reversed_)]
        human_vote(prompt, *(pair if i == 0 else pair[::-1]), "tie", human)
    summary = judge_battles(task="text-to-video", backend="checker")
    assert (summary.pairs, summary.ok) == (2, 2)
    for vote in Vote.objects.filter(rater__judge_name="synthetic-checker"):
        assert (vote.model_a if vote.outcome == "model_a" else vote.model_b) == right.model


@pytest.mark.django_db
def test_the_checker_judges_no_single_samples_and_the_command_accepts_it(checker_only):
    version = make_version("single")
    (prompt,) = synthetic_prompts("text-to-image", 1)
    stored(version, prompt, rendered(prompt))
    with pytest.raises(JudgeNotConfigured, match="prompt_agreement metric"):
        judge_version_samples(version=version, backend="checker")
    with pytest.raises(CommandError, match="--mode rubric with --backend checker"):
        call_command("judge", "--version", "single@v1", "--backend", "checker", "--mode", "rubric")

    other = make_version("single-noise")
    human = Rater.objects.create(kind=RaterKind.HUMAN, session_key="c")
    human_vote(prompt, version.samples.get(), stored(other, prompt, noise(3)), "model_a", human)
    out = io.StringIO()
    call_command("judge", "--version", "single@v1", "--backend", "checker", stdout=out)
    assert "synthetic-checker [pairwise] on text-to-image: 1 new pairs, 1 judged" in out.getvalue()
    assert Vote.objects.get(rater__judge_name="synthetic-checker").outcome == "model_a"


@pytest.mark.django_db
def test_the_checker_judges_pairs_it_draws_itself_so_a_judge_board_exists_at_start(
    checker_only,
):
    from arena.judging import judge_sampled_battles
    from arena.rating_snapshots import latest_snapshot, refresh_rating_snapshots

    renders, noisy = make_version("renders"), make_version("noisy")
    ModelVersion.objects.update(arena_approved=True)
    prompts = synthetic_prompts("text-to-image", 6)
    for i, prompt in enumerate(prompts):
        stored(renders, prompt, rendered(prompt))
        stored(noisy, prompt, noise(i))
    assert not Battle.objects.exists()  # nobody has voted: no human battle to copy

    summary = judge_sampled_battles(task="text-to-image", backend="checker", n=4, seed=1)
    assert summary.pairs == summary.ok == sum(summary.votes.values()) == 4
    votes = Vote.objects.filter(rater__judge_name="synthetic-checker")
    assert votes.count() == 4
    for vote in votes:  # the render wins whichever side it was shown on
        winner = vote.model_a if vote.outcome == "model_a" else vote.model_b
        assert vote.rater_kind == RaterKind.JUDGE and winner == renders.model
    # Six pairs exist in all; a second run judges only the two new ones, a third none.
    assert judge_sampled_battles(task="text-to-image", backend="checker", n=10).pairs == 2
    assert judge_sampled_battles(task="text-to-image", backend="checker", n=10).pairs == 0

    refresh_rating_snapshots(task="text-to-image")
    assert latest_snapshot(task="text-to-image") is None  # no human votes: no human board
    judge_board = latest_snapshot(task="text-to-image", rater_kind=RaterKind.JUDGE)
    assert judge_board.n_votes == 6 and judge_board.rows[0]["model"] == "renders"
