"""Base for management commands that take `--version <model-slug>@<tag>`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from models_registry.models import ModelVersion


class ModelVersionCommand(BaseCommand):
    """Our `--version` names a model version, replacing Django's "print the Django version"."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def model_version(self, spec: str) -> ModelVersion:
        slug, sep, tag = spec.partition("@")
        if not sep or not slug or not tag:
            raise CommandError(f"--version {spec!r}: expected <model-slug>@<tag>")
        version = (
            ModelVersion.objects.select_related("model").filter(model__slug=slug, tag=tag).first()
        )
        if version is None:
            raise CommandError(f"--version {spec!r}: no such model version")
        return version
