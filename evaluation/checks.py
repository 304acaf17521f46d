"""System checks: configured metric names must be catalogue metrics for their task."""

from django.conf import settings
from django.core.checks import Error, register

from evaluation.metrics.catalogue import task_metric_problems


def _setting_name(task: str) -> str:
    return "METRICS_" + task.upper().replace("-", "_")


@register()
def check_metrics_by_task(app_configs=None, **kwargs):
    errors = []
    for task, names in settings.METRICS_BY_TASK.items():
        for problem in task_metric_problems(task, names or ()):
            errors.append(
                Error(
                    f"{_setting_name(task)}: {problem}",
                    hint="Unset it to compute the catalogue's defaults for the task.",
                    id="evaluation.E001",
                )
            )
    return errors
