"""An in-memory stand-in for an S3-compatible storage: objects by key, no `path()`, no folders.

Like django-storages' S3Storage it cannot give a local path (`path()` raises
NotImplementedError), listdir derives "folders" from key prefixes, and saving a key that exists
gets another name. Tests run the real upload, validation and loading code against it.
"""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.files.storage import Storage

OBJECTS: dict[str, bytes] = {}


class MemoryObjectStorage(Storage):
    def _open(self, name, mode="rb"):
        return ContentFile(OBJECTS[name], name=name)

    def _save(self, name, content):
        buffer = io.BytesIO()
        for chunk in content.chunks():
            buffer.write(chunk)
        OBJECTS[name] = buffer.getvalue()
        return name

    def delete(self, name):
        OBJECTS.pop(name, None)

    def exists(self, name):
        prefix = name.rstrip("/") + "/"
        return name in OBJECTS or any(key.startswith(prefix) for key in OBJECTS)

    def listdir(self, path):
        prefix = path.rstrip("/") + "/" if path else ""
        dirs, files = set(), set()
        for key in OBJECTS:
            if key.startswith(prefix):
                head, sep, _ = key[len(prefix) :].partition("/")
                (dirs if sep else files).add(head)
        return sorted(dirs), sorted(files)

    def size(self, name):
        return len(OBJECTS[name])

    def url(self, name):
        return f"https://objects.example/{name}"
