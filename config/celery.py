"""The Celery app: configured from Django settings (CELERY_* names), tasks autodiscovered."""

import os
import warnings

from celery import Celery
from celery.exceptions import CPendingDeprecationWarning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Printed once per pipeline chain (a chord with an error callback); the behaviour we rely on is
# today's default, which the warning only announces may change.
warnings.filterwarnings(
    "ignore", message=".*task_allow_error_cb_on_chord_header", category=CPendingDeprecationWarning
)

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
