"""A validated checkpoint as a local folder, whatever storage holds it.

Generators and loaders read files from a directory. On a local storage that is the stored folder
itself; on a remote one (S3-compatible storages have no ``path()``) the folder is copied once into
``CHECKPOINT_CACHE_DIR`` under the checkpoint's sha256 and reused by every later task.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import Storage, default_storage


def _copy_tree(storage: Storage, folder: str, target: Path) -> None:
    dirs, files = storage.listdir(folder)
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        with storage.open(f"{folder}/{name}", "rb") as src, open(target / name, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024**2)
    for name in dirs:
        _copy_tree(storage, f"{folder}/{name}", target / name)


def local_checkpoint_directory(*, folder: str, key: str, storage: Storage | None = None) -> Path:
    """A local directory with the files under storage `folder`; `key` names its cached copy."""
    storage = storage or default_storage
    try:
        return Path(storage.path(folder))
    except NotImplementedError:
        pass  # a remote storage: use (or make) the local copy
    cache = Path(settings.CHECKPOINT_CACHE_DIR)
    final = cache / key
    if final.is_dir():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))
    try:
        _copy_tree(storage, folder, staging)
        staging.rename(final)  # atomic: a half-copied folder is never seen under its key
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if not final.is_dir():  # else another worker finished the same copy first
            raise
    return final
