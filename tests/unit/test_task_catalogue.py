"""The task catalogue is the one list of tasks: model choices, prompt sets and media follow it."""

from __future__ import annotations

import pytest

from evaluation.models import MediaKind
from models_registry.generators.synthetic import benchmark_prompts
from models_registry.generators.tasks import TASK_NAMES, TASKS, task_spec
from models_registry.models import Task


def test_model_task_choices_are_the_catalogue():
    assert Task.choices == [(spec.name, spec.label) for spec in TASKS.values()]
    assert Task.TEXT_TO_VIDEO == "text-to-video" and Task.TEXT_TO_VIDEO.label == "Text to video"


@pytest.mark.parametrize("name", TASK_NAMES)
def test_each_task_has_a_media_kind_and_a_benchmark_prompt_set(name):
    spec = task_spec(name)
    assert spec.media in MediaKind.values
    prompts = benchmark_prompts(name, spec.prompt_set_size)
    assert len(prompts) == spec.prompt_set_size and all(text for text, _ in prompts)
    assert len({spec.prompt_set for spec in TASKS.values()}) == len(TASKS)  # one set per task


def test_an_unknown_task_names_the_tasks_that_exist():
    with pytest.raises(
        ValueError, match="unknown task 'image-to-3d'; expected one of text-to-image"
    ):
        task_spec("image-to-3d")
