"""seed_progress: one progress bar per demo model in the terminal, while the demo seeds."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from models_registry.selectors import training_finished, training_progress

BAR = 24


def progress_line(row: dict, width: int) -> str:
    """e.g. `ref-ddpm          [##########..............]  42%  training 504/1200, loss 0.0312`."""
    filled = round(row["fraction"] * BAR)
    bar = "#" * filled + "." * (BAR - filled)
    if row["state"] == "done" and row["version_status"]:
        what = f"trained; {row['version_status_label'].lower()}"
    elif row["state"] == "running":
        what = f"training {row['step']}/{row['total']}"
        if row["message"]:
            what += f", {row['message']}"
    elif row["state"] == "failed":
        what = f"failed: {row['message']}"
    else:
        what = row["state_label"].lower()
    return f"{row['slug']:<{width}} [{bar}] {row['fraction']:4.0%}  {what}"


class Command(BaseCommand):
    help = (
        "Print one progress bar per model the demo trains (a block whenever something changes) "
        "until all are published; `make run` runs it beside the server and workers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
        parser.add_argument("--once", action="store_true", help="print the bars once and exit")
        parser.add_argument(
            "--stay", action="store_true", help="keep running when done (under honcho)"
        )

    def handle(self, *args, interval=2.0, once=False, stay=False, **options):
        shown: list[str] = []
        shown_states: list[tuple] | None = None
        last_print = 0.0
        while True:
            rows = training_progress()
            width = max((len(r["slug"]) for r in rows), default=0)
            lines = [progress_line(r, width) for r in rows]
            # Print when a state changes, or at most once a minute while the numbers move.
            states = [(r["slug"], r["state"], r["version_status"]) for r in rows]
            changed = states != shown_states
            if once or changed or (lines != shown and time.monotonic() - last_print >= 60):
                self.stdout.write("\n".join(lines) if lines else "nothing to train")
                self.stdout.write("")
                self.stdout.flush()
                shown, last_print, shown_states = lines, time.monotonic(), states
            if once:
                return
            if rows and training_finished(rows):
                self.stdout.write(self.style.SUCCESS("Demo seeded: every model is published."))
                break
            if not rows and not stay:
                return
            time.sleep(interval)
        while stay:  # honcho stops every process when one exits
            time.sleep(3600)
