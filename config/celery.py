"""The Celery app: configured from Django settings (CELERY_* names), tasks autodiscovered."""

import os
import warnings

from celery import Celery
from celery.exceptions import CPendingDeprecationWarning
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Printed once per pipeline chain (a chord with an error callback); the behaviour we rely on is
# today's default, which the warning only announces may change.


def _quiet_chord_notice(**_kwargs) -> None:
    warnings.filterwarnings(
        "ignore",
        message=".*task_allow_error_cb_on_chord_header",
        category=CPendingDeprecationWarning,
    )


_quiet_chord_notice()
# The worker resets warning filters when it sets up logging: set it again in each pool process.
worker_process_init.connect(_quiet_chord_notice, weak=False)

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
