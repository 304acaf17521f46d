"""The task catalogue: every generation task the platform evaluates, described once.

Models, prompt sets, sample storage, metrics and pages read a task's media kind, labels and
benchmark prompt set from here; a new task is one entry plus its generators, prompts and metrics.
Pure: no Django.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str  # the stored value, e.g. "text-to-image"
    label: str  # what pages show, e.g. "Text to image"
    media: str  # "image" (uint8 [H, W, 3]) or "video" (uint8 [T, H, W, 3])
    media_plural: str  # "images" / "videos": navigation ("Arena: images")
    prompt_set: str  # slug of the benchmark prompt set the pipeline generates for
    prompt_set_name: str
    prompt_set_size: int
    prompt_set_description: str
    # Each prompt edits a source image (image-edit): generators take `images=`, samples are
    # shown and judged beside their source, and metrics compare the two.
    source_image: bool = False

    @property
    def choice_name(self) -> str:
        """The Python name of the task in `models_registry.models.Task` (TEXT_TO_IMAGE)."""
        return self.name.upper().replace("-", "_")


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="text-to-image",
            label="Text to image",
            media="image",
            media_plural="images",
            prompt_set="t2i-benchmark",
            prompt_set_name="Text-to-image benchmark",
            prompt_set_size=48,
            prompt_set_description="Captions of the synthetic shapes grammar; categories colour, "
            "shape, position and size each cycle through every value of their attribute.",
        ),
        TaskSpec(
            name="text-to-video",
            label="Text to video",
            media="video",
            media_plural="videos",
            prompt_set="t2v-benchmark",
            prompt_set_name="Text-to-video benchmark",
            prompt_set_size=24,
            prompt_set_description="Captions of moving shapes; categories colour, shape and "
            "motion (direction) each cycle through every value of their attribute.",
        ),
        TaskSpec(
            name="image-edit",
            label="Image editing",
            media="image",
            media_plural="edits",
            prompt_set="edit-benchmark",
            prompt_set_name="Image-editing benchmark",
            prompt_set_size=48,
            prompt_set_description="A source image of the synthetic shapes domain and an "
            "instruction with an exact target; categories colour, shape, position, size, add and "
            "remove, one edit of that kind each.",
            source_image=True,
        ),
    )
}
TASK_NAMES = tuple(TASKS)


def task_spec(name: str) -> TaskSpec:
    """The catalogue entry of `name`; a ValueError names the tasks that exist."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(
            f"unknown task {name!r}; expected one of {', '.join(TASK_NAMES)}"
        ) from None
