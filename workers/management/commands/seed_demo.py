"""Seed the demo: a maintainer account for the admin (DEBUG only) and the demo data built so far."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Seed demo data for `make run` (idempotent: a second run reuses what exists)."

    def handle(self, *args, **options):
        if settings.DEBUG:
            User = get_user_model()
            if not User.objects.filter(username="admin").exists():
                User.objects.create_superuser("admin", "admin@example.com", "admin")
                self.stdout.write("Created demo maintainer 'admin' (password 'admin') for /admin/.")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
