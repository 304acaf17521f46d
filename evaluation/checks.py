"""System checks: configured metric names must be catalogue metrics for their task; a C2PA
signing certificate and key come as a pair of readable files."""

from django.conf import settings
from django.core.checks import Error, Warning, register

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


@register()
def check_c2pa_signing(app_configs=None, **kwargs):
    cert, key = settings.C2PA_SIGNING_CERT, settings.C2PA_SIGNING_KEY
    if cert or key:
        missing = [
            name
            for name, path in (("C2PA_SIGNING_CERT", cert), ("C2PA_SIGNING_KEY", key))
            if not (path and path.is_file())
        ]
        if missing:
            return [
                Error(
                    f"{', '.join(missing)}: not a readable file",
                    hint="Set both to PEM files: the chain (end entity first) and its key.",
                    id="evaluation.E002",
                )
            ]
        return []
    if not settings.C2PA_DEMO_SIGNER:
        return [
            Warning(
                "no C2PA signing certificate: published samples and sample pages answer 503",
                hint="Set C2PA_SIGNING_CERT and C2PA_SIGNING_KEY, or C2PA_DEMO_SIGNER=1.",
                id="evaluation.W001",
            )
        ]
    return []
