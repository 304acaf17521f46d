"""The metric catalogue: every automated metric the platform stores, described once.

The suite, the services, the leaderboard, the model page, the judges and `compute_metric` read a
metric's label, direction, interval meaning, tasks, backbone and kind from here; a new metric is
one entry plus its pure code (a streaming class in evaluation/metrics/ wired into
`suite.ESTIMATORS`, or a judge mode). Pure: no Django, no app imports; tasks are names from the
task catalogue (models_registry/generators/tasks.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models_registry.generators.tasks import TASK_NAMES, task_spec

TEXT_TO_IMAGE, TEXT_TO_VIDEO = "text-to-image", "text-to-video"  # entries of the task catalogue
IMAGE_EDIT = "image-edit"
BOTH_TASKS = (TEXT_TO_IMAGE, TEXT_TO_VIDEO)  # the text-to-media tasks: a sample shows its prompt

# kind: what a metric compares the generated media with.
REFERENCE = "reference"  # a reference set of real media (needs reference statistics)
PROMPT = "prompt"  # each sample's own prompt
EDIT = "edit"  # each edited sample against its source image and the oracle's target (image-edit)
JUDGE = "judge"  # a VLM judge's per-sample verdicts (evaluation.judging)
KINDS = (REFERENCE, PROMPT, EDIT, JUDGE)

BACKBONES = ("inception", "clip", "i3d", "checker", "pixels", "none", "judge")


@dataclass(frozen=True)
class IntervalSpec:
    """What the stored (lower, upper) of a metric mean."""

    key: str  # stored in exports, e.g. "ci95"
    label: str  # short, for a column header or a cell: "95% CI"
    description: str  # one sentence, for tooltips and legends


INTERVALS: dict[str, IntervalSpec] = {
    spec.key: spec
    for spec in (
        IntervalSpec("ci95", "95% CI", "95% confidence interval"),
        IntervalSpec(
            "std",
            "±1 std",
            "±1 standard deviation, a spread rather than a confidence interval",
        ),
    )
}


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the stored value (MetricResult.metric), e.g. "fid"
    label: str  # what a column header shows, without the direction arrow: "FID"
    description: str  # one line for tooltips
    direction: str  # "lower" or "higher" is better
    interval: str  # a key of INTERVALS
    interval_method: str  # how the interval is estimated, e.g. "jackknife over groups"
    tasks: tuple[str, ...]  # tasks it applies to
    backbone: str  # one of BACKBONES: the feature network it needs
    kind: str  # one of KINDS
    estimator: str = ""  # the streaming class in suite.ESTIMATORS; "" for judge metrics
    judge_mode: str = ""  # JudgeMode value whose verdicts this metric summarises (judges only)
    by_default: bool = True  # computed for its tasks unless METRICS_<TASK> says otherwise

    @property
    def media(self) -> str:
        """What the backbone reads: its tasks' media kind, or "any" (videos frame by frame)."""
        kinds = {task_spec(task).media for task in self.tasks}
        return kinds.pop() if len(kinds) == 1 else "any"

    @property
    def arrow(self) -> str:
        return "↓" if self.direction == "lower" else "↑"

    @property
    def heading(self) -> str:
        """Column header: label and direction, e.g. "FID ↓"."""
        return f"{self.label} {self.arrow}"

    @property
    def interval_spec(self) -> IntervalSpec:
        return INTERVALS[self.interval]

    @property
    def interval_note(self) -> str:
        """e.g. "95% confidence interval (jackknife over groups)"."""
        return f"{self.interval_spec.description} ({self.interval_method})"


_CI_T = "Student-t interval of the mean over samples"

METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            name="fid",
            label="FID",
            description="Fréchet Inception Distance to the reference set",
            direction="lower",
            interval="ci95",
            interval_method="jackknife over groups of samples",
            tasks=(TEXT_TO_IMAGE,),
            backbone="inception",
            kind=REFERENCE,
            estimator="frechet",
        ),
        MetricSpec(
            name="kid",
            label="KID",
            description="Kernel Inception Distance (unbiased MMD², cubic kernel) to the reference",
            direction="lower",
            interval="std",
            interval_method="over random subsets of both sets",
            tasks=(TEXT_TO_IMAGE,),
            backbone="inception",
            kind=REFERENCE,
            estimator="kid",
        ),
        MetricSpec(
            name="clip_score",
            label="CLIP score",
            description="mean CLIP similarity of each sample with its prompt (× 100)",
            direction="higher",
            interval="ci95",
            interval_method=_CI_T,
            tasks=BOTH_TASKS,
            backbone="clip",
            kind=PROMPT,
            estimator="clip_score",
        ),
        MetricSpec(
            name="cmmd",
            label="CMMD",
            description="MMD² of CLIP embeddings against the reference set (× 1000)",
            direction="lower",
            interval="ci95",
            interval_method="percentile bootstrap",
            tasks=BOTH_TASKS,
            backbone="clip",
            kind=REFERENCE,
            estimator="cmmd",
        ),
        MetricSpec(
            name="fd_clip",
            label="FD (CLIP)",
            description="Fréchet distance of CLIP embeddings to the reference set",
            direction="lower",
            interval="ci95",
            interval_method="jackknife over groups of samples",
            tasks=BOTH_TASKS,
            backbone="clip",
            kind=REFERENCE,
            estimator="frechet",
        ),
        MetricSpec(
            name="fvd",
            label="FVD",
            description="Fréchet Video Distance (I3D features) to the reference set",
            direction="lower",
            interval="ci95",
            interval_method="jackknife over groups of samples",
            tasks=(TEXT_TO_VIDEO,),
            backbone="i3d",
            kind=REFERENCE,
            estimator="frechet",
        ),
        MetricSpec(
            name="prompt_agreement",
            label="Prompt agreement",
            description=(
                "share of its prompt's attributes (colour, shape, size, position or motion, "
                "background) a sample shows, read by the synthetic domain's checker (0–1)"
            ),
            direction="higher",
            interval="ci95",
            interval_method=_CI_T,
            tasks=BOTH_TASKS,
            backbone="checker",
            kind=PROMPT,
            estimator="prompt_agreement",
        ),
        MetricSpec(
            name="edit_accuracy",
            label="Edit accuracy",
            description=(
                "share of edits the synthetic checker reads as the oracle's target scene (every "
                "attribute of the target caption shown; no object after a removal; 0–1)"
            ),
            direction="higher",
            interval="ci95",
            interval_method=_CI_T,
            tasks=(IMAGE_EDIT,),
            backbone="checker",
            kind=EDIT,
            estimator="edit_accuracy",
        ),
        MetricSpec(
            name="clip_direction",
            label="CLIP direction",
            description=(
                "cosine between the CLIP image change (edit − source) and the caption change "
                "(target − source caption), as in InstructPix2Pix (−1–1)"
            ),
            direction="higher",
            interval="ci95",
            interval_method=_CI_T,
            tasks=(IMAGE_EDIT,),
            backbone="clip",
            kind=EDIT,
            estimator="clip_direction",
        ),
        MetricSpec(
            name="preservation_l1",
            label="Preservation L1",
            description=(
                "mean absolute pixel difference (0–1) between edit and source outside the "
                "oracle's edit region"
            ),
            direction="lower",
            interval="ci95",
            interval_method=_CI_T,
            tasks=(IMAGE_EDIT,),
            backbone="pixels",
            kind=EDIT,
            estimator="preservation_l1",
        ),
        MetricSpec(
            name="preservation_clip",
            label="Preservation (CLIP)",
            description=(
                "1 − cosine of the CLIP embeddings of edit and source with the oracle's edit "
                "region blacked out in both (0: identical outside the edit)"
            ),
            direction="lower",
            interval="ci95",
            interval_method=_CI_T,
            tasks=(IMAGE_EDIT,),
            backbone="clip",
            kind=EDIT,
            estimator="preservation_clip",
        ),
        MetricSpec(
            name="vqascore",
            label="VQAScore",
            description="a VLM judge's P(Yes) that the sample shows its prompt (0–1)",
            direction="higher",
            interval="ci95",
            interval_method=_CI_T,
            tasks=BOTH_TASKS,
            backbone="judge",
            kind=JUDGE,
            judge_mode="vqascore",
        ),
        MetricSpec(
            name="viescore",
            label="VIEScore",
            description=(
                "a VLM judge's rubric score of prompt fidelity and quality (0–10); for edits, "
                "of following the instruction without over-editing the source"
            ),
            direction="higher",
            interval="ci95",
            interval_method=_CI_T,
            tasks=TASK_NAMES,
            backbone="judge",
            kind=JUDGE,
            judge_mode="rubric",
        ),
    )
}
METRIC_NAMES = tuple(METRICS)  # also the display order of metric columns
# Computed from media by evaluation.metrics.suite (compute_metric, the metrics stage); the rest
# are summaries of judge verdicts (evaluation.judging).
SUITE_METRIC_NAMES = tuple(name for name, spec in METRICS.items() if spec.kind != JUDGE)


def metric_spec(name: str) -> MetricSpec:
    """The catalogue entry of `name`; ValueError naming the known metrics otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(
            f"unknown metric {name!r}; expected one of {', '.join(METRIC_NAMES)}"
        ) from None


def suite_metric_spec(name: str) -> MetricSpec:
    """The entry of a metric the suite computes from media (not a judge summary)."""
    spec = metric_spec(name)
    if spec.kind == JUDGE:
        raise ValueError(
            f"{name} is a VLM-judge metric: it is computed by the judge (manage.py judge), "
            f"not from media; media metrics are {', '.join(SUITE_METRIC_NAMES)}"
        )
    return spec


def metrics_for_task(task: str) -> tuple[str, ...]:
    """Names of the metrics that apply to `task` (a name of the task catalogue)."""
    return tuple(name for name, spec in METRICS.items() if task in spec.tasks)


def default_metrics_for_task(task: str) -> tuple[str, ...]:
    """The media metrics the metrics stage computes for `task` when settings name none."""
    return tuple(
        name
        for name, spec in METRICS.items()
        if task in spec.tasks and spec.kind != JUDGE and spec.by_default
    )


def task_metric_problems(task: str, names: Iterable[str]) -> list[str]:
    """Why `names` cannot be `task`'s configured metrics (empty when they can)."""
    if task not in TASK_NAMES:
        return [f"unknown task {task!r}; expected one of {', '.join(TASK_NAMES)}"]
    problems = []
    for name in names:
        spec = METRICS.get(name)
        if spec is None:
            problems.append(f"unknown metric {name!r}; expected one of {', '.join(METRIC_NAMES)}")
        elif spec.kind == JUDGE:
            problems.append(f"{name} is a VLM-judge metric, computed by the judge, not from media")
        elif task not in spec.tasks:
            problems.append(f"{name} does not apply to {task} (it is for {', '.join(spec.tasks)})")
    return problems


def metric_for_judge_mode(mode: str) -> str:
    """The metric a judge mode's verdicts are summarised as ("rubric" -> "viescore")."""
    for spec in METRICS.values():
        if spec.kind == JUDGE and spec.judge_mode == mode:
            return spec.name
    modes = [s.judge_mode for s in METRICS.values() if s.kind == JUDGE]
    raise ValueError(f"unknown judge mode {mode!r}; expected one of {', '.join(modes)}")


def metric_heading(name: str) -> str:
    """Column header of `name` ("FID ↓"); a stored name the catalogue lacks shows as itself."""
    spec = METRICS.get(name)
    return spec.heading if spec else name.replace("_", " ")


def interval_of(name: str) -> IntervalSpec | None:
    """What `name`'s stored (lower, upper) mean; None for a name the catalogue lacks."""
    spec = METRICS.get(name)
    return spec.interval_spec if spec else None


def ordered_metric_names(names: Iterable[str]) -> list[str]:
    """`names` without repeats, in catalogue order; names the catalogue lacks follow, sorted."""
    present = set(names)
    ordered = [name for name in METRIC_NAMES if name in present]
    return ordered + sorted(present - set(ordered))
