"""Rules the issue set for the source itself: URLs by name, no local storage paths in services."""

from __future__ import annotations

import re

from tests.conftest import ROOT

HARD_CODED_PATH = re.compile(r"""(?:href|src|action|data-[\w-]+-url)=["']/""")
STORAGE_PATH = re.compile(r"\b\w*storage\w*\.path\(")
# The one place a storage may be asked for a local path, with a copy for storages without one.
STORAGE_PATH_ALLOWED = {"models_registry/checkpoint_files.py"}


def test_templates_build_every_url_from_its_name():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if HARD_CODED_PATH.search(line)
    ]
    assert not offenders, "use {% url %}:\n" + "\n".join(offenders)


def test_only_checkpoint_files_asks_a_storage_for_a_local_path():
    offenders = [
        str(path.relative_to(ROOT))
        for app in ("models_registry", "evaluation", "arena", "pipeline", "workers")
        for path in sorted((ROOT / app).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in STORAGE_PATH_ALLOWED
        and STORAGE_PATH.search(path.read_text())
    ]
    assert not offenders, offenders


def test_the_patterns_catch_what_they_are_for():
    assert HARD_CODED_PATH.search('<a href="/arena/text-to-image/">')
    assert not HARD_CODED_PATH.search("""<a href="{% url 'arena:page' task %}">""")
    assert STORAGE_PATH.search("path = default_storage.path(upload.storage_name)")
    assert not STORAGE_PATH.search("os.path.join(a, b)")


BARE_TASK_NAME = re.compile(r"""["']workers\.tasks\.""")


def test_task_names_come_from_one_place_and_name_every_registered_task():
    from config import task_names
    from config.celery import app

    offenders = [
        str(path.relative_to(ROOT))
        for app_dir in ("config", "models_registry", "evaluation", "arena", "pipeline", "workers")
        for path in sorted((ROOT / app_dir).rglob("*.py"))
        if path.name != "task_names.py" and BARE_TASK_NAME.search(path.read_text())
    ]
    assert not offenders, "import the name from config.task_names:\n" + "\n".join(offenders)
    app.loader.import_default_modules()
    registered = {name for name in app.tasks if name.startswith(task_names.PREFIX)}
    assert registered == set(task_names.ALL)
    assert BARE_TASK_NAME.search('send_task("workers.tasks.ping")')
