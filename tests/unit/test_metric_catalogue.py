"""The metric catalogue is the one list of metrics: every name the code writes is in it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from evaluation.judging import METRIC_FOR_MODE
from evaluation.management.commands.compute_metric import Command as ComputeMetric
from evaluation.metrics import catalogue
from evaluation.metrics.catalogue import (
    BACKBONES,
    EDIT,
    INTERVALS,
    JUDGE,
    KINDS,
    METRIC_NAMES,
    METRICS,
    PROMPT,
    REFERENCE,
    SUITE_METRIC_NAMES,
)
from evaluation.metrics.edit import EditPrompts
from evaluation.metrics.prompt_agreement import CheckerBackbone
from evaluation.metrics.suite import ESTIMATORS, evaluate, reference_from_media
from evaluation.models import JudgeMode
from evaluation.services import task_metric_names
from models_registry.generators.quality import train_classifier
from models_registry.generators.synthetic import benchmark_edits, benchmark_prompts, edit_region
from models_registry.generators.tasks import TASK_NAMES, task_spec


class ToyBackbone:
    """A duck-typed backbone (see evaluation.features.registry) computing fixed projections."""

    weights_sha256 = "0" * 64

    def __init__(self, key: str) -> None:
        self.name = key
        self.modality = {
            "inception": "image",
            "clip": "image-text",
            "i3d": "video",
            "pixels": "pixels",
        }[key]
        self._projection = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 8)))

    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        pixels = torch.as_tensor(images, dtype=torch.float64).reshape(len(images), -1, 3)
        features = torch.cat([pixels.mean(1), pixels.std(1)], dim=1) / 255
        return torch.nn.functional.normalize(features @ self._projection.repeat(2, 1), dim=-1)

    def encode_videos(self, videos: np.ndarray) -> torch.Tensor:
        b, t = videos.shape[:2]
        return self.encode_images(videos.reshape(b * t, *videos.shape[2:])).reshape(b, t, -1)[:, 0]

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        lengths = torch.tensor([[len(t), t.count(" "), 1.0] for t in texts], dtype=torch.float64)
        return torch.nn.functional.normalize(lengths @ self._projection, dim=-1)


def _media(spec, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, 4, 8, 8, 3) if spec.media == "video" else (n, 8, 8, 3)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def test_every_entry_is_complete_and_consistent():
    assert METRIC_NAMES == tuple(METRICS) and len(set(METRIC_NAMES)) == len(METRIC_NAMES)
    for name, spec in METRICS.items():
        assert spec.name == name and spec.label and spec.description
        assert spec.direction in ("lower", "higher") and spec.heading.startswith(spec.label)
        assert spec.interval in INTERVALS and spec.interval_method
        assert spec.kind in KINDS and spec.backbone in BACKBONES
        assert spec.tasks and set(spec.tasks) <= set(TASK_NAMES)
        # What the backbone reads matches the tasks the metric applies to.
        media = {task_spec(task).media for task in spec.tasks}
        assert media == ({"image", "video"} if spec.media == "any" else {spec.media}), name
        if spec.kind == JUDGE:
            assert spec.backbone == "judge" and spec.judge_mode and not spec.estimator
        else:
            assert spec.estimator in ESTIMATORS and not spec.judge_mode


def test_kid_is_the_one_metric_whose_interval_is_a_spread_not_a_confidence_interval():
    by_interval = {key: [n for n, s in METRICS.items() if s.interval == key] for key in INTERVALS}
    assert by_interval == {"std": ["kid"], "ci95": [n for n in METRIC_NAMES if n != "kid"]}
    assert INTERVALS["std"].label == "±1 std" and INTERVALS["ci95"].label == "95% CI"
    assert "rather than a confidence interval" in INTERVALS["std"].description


@pytest.fixture(scope="module")
def checker():
    """The synthetic domain's checker (the "checker" backbone), fitted on renders."""
    return CheckerBackbone(train_classifier(n=300, steps=100), weights_sha256="0" * 64)


@pytest.mark.parametrize("name", SUITE_METRIC_NAMES)
def test_every_suite_output_is_a_catalogue_metric_with_a_label(name, request):
    spec = METRICS[name]
    backbone = (
        request.getfixturevalue("checker")
        if spec.backbone == "checker"
        else ToyBackbone(spec.backbone)
    )
    reference = None
    if spec.kind == REFERENCE:
        reference = reference_from_media(backbone, [_media(spec, 12, seed=1)])
    prompts = [f"a prompt with {k} words" for k in range(10)] if spec.kind == PROMPT else None
    if spec.backbone == "checker":  # it scores captions of the synthetic grammar only
        prompts = [caption for caption, _ in benchmark_prompts(TASK_NAMES[0], 10)]
    if spec.kind == EDIT:  # each edit with its source, captions and the oracle's region
        edits = benchmark_edits(10)
        prompts = EditPrompts(
            [e.target_caption for e in edits],
            sources=_media(spec, 10, seed=3),
            source_captions=[e.source_caption for e in edits],
            masks=np.stack(
                [edit_region(e.source_caption, e.target_caption, resolution=8) for e in edits]
            ),
        )
    options = {"subsets": 3, "subset_size": 5} if spec.estimator == "kid" else {}
    if spec.estimator == "cmmd":
        options = {"bootstrap": 4}
    result = evaluate(
        name,
        backbone=backbone,
        reference=reference,
        batches=[(_media(spec, 10, seed=2), prompts)],
        **options,
    )
    assert result.metric == name and catalogue.metric_heading(result.metric) == spec.heading


def test_every_judge_output_is_a_catalogue_metric_with_a_label():
    assert set(METRIC_FOR_MODE) == set(JudgeMode)
    for mode, metric in METRIC_FOR_MODE.items():
        spec = METRICS[metric]
        assert spec.kind == JUDGE and spec.judge_mode == mode and spec.label
    assert {METRICS[m].label for m in METRIC_FOR_MODE.values()} == {"VQAScore", "VIEScore"}


def test_judge_metrics_are_not_computed_from_media():
    assert set(SUITE_METRIC_NAMES) == {n for n, s in METRICS.items() if s.kind != JUDGE}
    with pytest.raises(ValueError, match="viescore is a VLM-judge metric"):
        evaluate("viescore", backbone=ToyBackbone("clip"), reference=None, batches=[])


def test_compute_metric_offers_exactly_the_suite_metrics():
    parser = ComputeMetric().create_parser("manage.py", "compute_metric")
    (metric,) = [a for a in parser._actions if a.dest == "metric"]
    assert tuple(metric.choices) == SUITE_METRIC_NAMES


def test_configured_task_metrics_are_catalogue_metrics_for_that_task():
    for task in TASK_NAMES:
        names = task_metric_names(task)
        assert names and set(names) <= set(catalogue.metrics_for_task(task)), task
        assert not catalogue.task_metric_problems(task, names)


def test_default_metrics_are_the_catalogue_media_metrics_of_each_task():
    assert catalogue.default_metrics_for_task("text-to-image") == (
        "fid",
        "kid",
        "clip_score",
        "cmmd",
        "fd_clip",
        "prompt_agreement",
    )
    assert catalogue.default_metrics_for_task("text-to-video") == (
        "clip_score",
        "cmmd",
        "fd_clip",
        "fvd",
        "prompt_agreement",
    )


def test_prompt_agreement_is_a_prompt_metric_of_both_tasks_read_by_the_checker():
    spec = METRICS["prompt_agreement"]
    assert (spec.label, spec.direction, spec.interval, spec.kind) == (
        "Prompt agreement",
        "higher",
        "ci95",
        PROMPT,
    )
    assert spec.tasks == ("text-to-image", "text-to-video") and spec.media == "any"
    assert spec.backbone == "checker"
    assert spec.interval_method == METRICS["clip_score"].interval_method  # Student-t
    assert spec.heading == "Prompt agreement ↑"
    with pytest.raises(ValueError, match="needs the checker backbone"):
        evaluate("prompt_agreement", backbone=ToyBackbone("clip"), reference=None, batches=[])
    with pytest.raises(ValueError, match="needs the clip backbone"):
        evaluate(
            "clip_score",
            backbone=CheckerBackbone(None, weights_sha256=""),
            reference=None,
            batches=[],
        )


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["fid", "is"], "METRICS_TEXT_TO_IMAGE: unknown metric 'is'; expected one of fid"),
        (["viescore"], "METRICS_TEXT_TO_IMAGE: viescore is a VLM-judge metric"),
        (["fvd"], "METRICS_TEXT_TO_IMAGE: fvd does not apply to text-to-image"),
    ],
)
def test_system_check_names_the_setting_and_the_bad_metric(settings, names, message):
    settings.METRICS_BY_TASK = {**settings.METRICS_BY_TASK, "text-to-image": names}
    errors = [e for e in run_checks() if e.id == "evaluation.E001"]
    assert len(errors) == 1 and errors[0].msg.startswith(message), errors
    with pytest.raises(ImproperlyConfigured, match=message.split(": ", 1)[1][:20]):
        task_metric_names("text-to-image")


def test_system_check_passes_configured_and_default_metrics(settings):
    settings.METRICS_BY_TASK = {"text-to-image": ["fid", "kid"], "text-to-video": None}
    assert not [e for e in run_checks() if e.id == "evaluation.E001"]
    assert task_metric_names("text-to-image") == ["fid", "kid"]
    assert task_metric_names("text-to-video") == list(
        catalogue.default_metrics_for_task("text-to-video")
    )


def test_unknown_names_are_refused_or_shown_as_themselves():
    with pytest.raises(ValueError, match="unknown metric 'is'; expected one of fid, kid"):
        catalogue.metric_spec("is")
    with pytest.raises(ValueError, match="unknown judge mode 'pairwise'"):
        catalogue.metric_for_judge_mode("pairwise")
    assert catalogue.metric_heading("legacy_score") == "legacy score"
    assert catalogue.interval_of("legacy_score") is None
    assert catalogue.ordered_metric_names(["zeta", "kid", "fid", "viescore", "kid"]) == [
        "fid",
        "kid",
        "viescore",
        "zeta",
    ]
