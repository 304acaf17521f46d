"""Report the battle pools of a task: what is live, retired, public or withheld, and how much of
it raters have not seen yet (arena.anonymity).

    python manage.py arena_pool --task text-to-image [--rater 17] [--json] [--retire-departed]

Without --rater: per model, the unseen live samples of the rater who has seen most (unseen_min),
the median over raters who have seen any, and how many raters have none left (they are told so,
and fresh samples are queued). --retire-departed first retires the battle pools of versions that
left the arena (the rating refresh does it too).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from arena import anonymity
from arena.selectors import is_valid_task

COLUMNS = ("model", "live_battle", "retired", "showcase_public", "withheld")


class Command(BaseCommand):
    help = "Report the battle pools of a task and the unseen pool left per rater and model."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--task", required=True)
        parser.add_argument("--rater", type=int, default=None, help="one rater's unseen pool")
        parser.add_argument("--json", action="store_true", help="JSON Lines, one model a line")
        parser.add_argument("--retire-departed", action="store_true")

    def handle(self, *args, **options) -> None:
        task = options["task"]
        if not is_valid_task(task):
            raise CommandError(f"--task {task!r}: unknown task")
        if options["retire_departed"]:
            retired = anonymity.retire_departed(task=task)
            self.stderr.write(f"retired {len(retired)} battle samples of departed versions")
        rows = anonymity.pool_report(task=task, rater_id=options["rater"])
        if options["json"]:
            for row in rows:
                self.stdout.write(json.dumps(row))
            return
        extra = (
            ("unseen",)
            if options["rater"] is not None
            else ("raters_with_reveals", "unseen_min", "unseen_median", "raters_exhausted")
        )
        header = (*COLUMNS, *extra)
        self.stdout.write("\t".join(header))
        for row in rows:
            self.stdout.write("\t".join(str(row[key]) for key in header))
        if not rows:
            self.stdout.write(f"no model of {task} is in the arena yet")
