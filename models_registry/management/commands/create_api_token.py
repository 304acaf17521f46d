"""`manage.py create_api_token USER [--name N]`: issue an API token and print its key once."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from models_registry.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USER and print the key (only its sha256 is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="label shown in the admin")

    def handle(self, *args, username: str, name: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}; create it first (createsuperuser)")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        _, key = api_token_create(user=user, name=name)
        self.stderr.write("API token created; it is shown only once:")
        self.stdout.write(key)
