"""Compute a Bradley–Terry leaderboard from a vote file (LMArena schema) or from stored votes."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from arena.models import RaterKind
from arena.rating_snapshots import refresh_rating_snapshots, stored_votes
from arena.ratings import BradleyTerryOptions, VoteFormatError, fit_bradley_terry, read_votes
from models_registry.models import Task

JSON_KEYS = ("model", "rating", "lower", "upper", "variance", "votes", "rank", "rank_ub")


def _anchor(value: str | None) -> tuple[str, float] | None:
    if value is None:
        return None
    model, sep, rating = value.rpartition("=")
    try:
        if not sep or not model:
            raise ValueError
        return model, float(rating)
    except ValueError:
        raise CommandError(
            f"--anchor expects MODEL=RATING (e.g. gpt-4=1200), got {value!r}"
        ) from None


class Command(BaseCommand):
    help = (
        "Fit Bradley-Terry ratings with confidence intervals and print a leaderboard. Votes come "
        "from --votes PATH (.csv, .jsonl or .parquet with columns model_a, model_b, winner) or "
        "--from-db --task TASK. --refresh-snapshots stores leaderboard snapshots instead."
    )

    def add_arguments(self, parser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--votes", metavar="PATH", help="vote file (.csv, .jsonl, .parquet)")
        source.add_argument("--from-db", action="store_true", help="use stored votes")
        source.add_argument(
            "--refresh-snapshots",
            action="store_true",
            help="fit and store RatingSnapshot rows for every board (what the beat task does)",
        )
        parser.add_argument("--task", choices=Task.values)
        parser.add_argument("--category", default="", help="prompt category ('' = all)")
        parser.add_argument(
            "--rater-kind", default=RaterKind.HUMAN, choices=[*RaterKind.values, "all"]
        )
        parser.add_argument("--force", action="store_true", help="with --refresh-snapshots")
        parser.add_argument("--json", action="store_true", help="print a JSON list instead")
        parser.add_argument("--ci", choices=["sandwich", "bootstrap"], default="sandwich")
        parser.add_argument("--bootstrap-rounds", type=int, default=100)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--significance", type=float, default=0.05)
        parser.add_argument(
            "--reweight", action="store_true", help="weight votes 1 / max(votes of pair, 50)"
        )
        parser.add_argument("--scale", type=float, default=400.0)
        parser.add_argument("--base", type=float, default=10.0)
        parser.add_argument("--init-rating", type=float, default=1000.0)
        parser.add_argument("--anchor", metavar="MODEL=RATING", default=None)
        parser.add_argument("--tie-weight", type=float, default=0.5)
        parser.add_argument("--both-bad", choices=["tie", "drop"], default="tie")

    def handle(self, *args, **opts) -> None:
        if opts["refresh_snapshots"]:
            try:
                snapshots = refresh_rating_snapshots(task=opts["task"], force=opts["force"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            for snap in snapshots:
                self.stdout.write(
                    f"{snap.task} / {snap.category or 'all'} / {snap.rater_kind}: "
                    f"{snap.n_votes} votes, {len(snap.rows)} models (snapshot {snap.pk})"
                )
            return
        try:
            options = BradleyTerryOptions(
                scale=opts["scale"],
                base=opts["base"],
                init_rating=opts["init_rating"],
                tie_weight=opts["tie_weight"],
                both_bad=opts["both_bad"],
                reweight=opts["reweight"],
                significance=opts["significance"],
                ci=opts["ci"],
                bootstrap_rounds=opts["bootstrap_rounds"],
                seed=opts["seed"],
                anchor=_anchor(opts["anchor"]),
            )
        except ValueError as exc:
            raise CommandError(f"invalid option: {exc}") from exc
        try:
            if opts["from_db"]:
                if not opts["task"]:
                    raise CommandError(
                        "--from-db needs --task (one of " + ", ".join(Task.values) + ")"
                    )
                kind = None if opts["rater_kind"] == "all" else opts["rater_kind"]
                votes = stored_votes(task=opts["task"], category=opts["category"], rater_kind=kind)
            else:
                votes = read_votes(opts["votes"])
            fit = fit_bradley_terry(votes, options)
        except (VoteFormatError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        rows = fit.table()
        if opts["json"]:
            self.stdout.write(
                json.dumps([{k: row[k] for k in JSON_KEYS} for row in rows], indent=1)
            )
            return
        self._print_table(rows, fit)

    def _print_table(self, rows: list[dict], fit) -> None:
        width = max([len("model"), *(len(r["model"]) for r in rows)])
        level = round(100 * (1 - fit.method["significance"]))
        self.stdout.write(
            f"{'rank':>4} {'ub':>4}  {'model':<{width}}  {'rating':>8}  "
            f"{f'{level}% CI':>19}  {'votes':>8}  flags"
        )
        for r in rows:
            self.stdout.write(
                f"{r['rank']:>4} {r['rank_ub']:>4}  {r['model']:<{width}}  {r['rating']:>8.1f}  "
                f"[{r['lower']:>8.1f}, {r['upper']:>8.1f}]  {r['votes']:>8}  {','.join(r['flags'])}"
            )
        summary = f"{fit.n_votes} votes, {len(rows)} models, {fit.method['ci']} intervals"
        if fit.flags:
            summary += "; flags: " + ", ".join(fit.flags)
        for component in fit.components:
            summary += "\n  component: " + ", ".join(component)
        self.stdout.write(summary)
