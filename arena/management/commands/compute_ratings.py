"""Compute a Bradley–Terry leaderboard from a vote file (LMArena schema) or from stored votes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError

from arena.models import RaterKind
from arena.rating_snapshots import (
    refresh_rating_snapshots,
    stored_votes,
    style_options_for,
    style_votes,
)
from arena.ratings import (
    BradleyTerryOptions,
    DavidsonOptions,
    StyleVotes,
    VoteFormatError,
    fit_bradley_terry,
    fit_davidson,
    fit_style_control,
    rank_robustness,
    read_votes,
)
from arena.ratings.votes import SUPPORTED_SUFFIXES, read_vote_frame
from models_registry.models import Task

JSON_KEYS = ("model", "rating", "lower", "upper", "variance", "votes", "rank", "rank_ub")
STYLE_KEYS = ("rating", "lower", "upper", "rank", "rank_ub")


def _covariate_names(value: str | None) -> list[str]:
    if value is None:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise CommandError("--style expects comma-separated covariate names, e.g. brightness,width")
    if len(set(names)) != len(names):
        raise CommandError(f"--style names a covariate twice: {value!r}")
    return names


def file_style_votes(path: str, names: list[str]) -> tuple[StyleVotes, int, dict[str, int]]:
    """Per-vote rows of a vote file with the covariate columns ``<name>_a`` / ``<name>_b``.

    Rows with an empty covariate cell are skipped (returned: votes, skipped, skipped per name);
    a missing column or a cell that is not a number is an error."""
    frame = read_vote_frame(path)  # checks the extension, the file and the vote columns
    columns = [f"{name}_{side}" for name in names for side in ("a", "b")]
    kind = SUPPORTED_SUFFIXES[Path(path).suffix.lower()]
    try:
        if kind == "csv":
            header = set(pd.read_csv(path, nrows=0).columns)
        elif kind == "jsonl":
            raw = pd.read_json(path, lines=True, dtype=False)
            header = set(raw.columns)
        else:
            import pyarrow.parquet as pq

            header = set(pq.read_schema(path).names)
    except (ValueError, OSError) as exc:
        raise VoteFormatError(f"{path}: cannot read as {kind}: {exc}") from exc
    absent = [c for c in columns if c not in header]
    if absent:
        present = sorted(
            c for c in header if c.endswith(("_a", "_b")) and c not in ("model_a", "model_b")
        )
        raise CommandError(
            f"{path}: --style needs the columns <covariate>_a and <covariate>_b; missing: "
            + ", ".join(absent)
            + (f" (covariate columns in the file: {', '.join(present)})" if present else "")
        )
    if kind == "csv":
        values = pd.read_csv(path, usecols=columns)
    elif kind == "jsonl":
        values = raw[columns]
    else:
        values = pq.read_table(path, columns=columns).to_pandas()
    numbers = {}
    for column in columns:
        converted = pd.to_numeric(values[column], errors="coerce")
        bad = converted.isna() & values[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise CommandError(
                f"{path}: row {row}: {column} {values[column].iloc[row]!r} is not a number"
            )
        numbers[column] = converted.to_numpy(np.float64)
    xa = np.column_stack([numbers[f"{n}_a"] for n in names])
    xb = np.column_stack([numbers[f"{n}_b"] for n in names])
    empty = np.isnan(xa) | np.isnan(xb)
    keep = ~empty.any(axis=1)
    missing = {n: int(empty[:, k].sum()) for k, n in enumerate(names) if empty[:, k].any()}
    kept = frame[keep]
    if not keep.any():  # StyleVotes of no rows
        none = np.zeros(0, dtype=np.int64)
        width = len(names)
        empty_votes = StyleVotes(
            (), tuple(names), none, none, none.astype(np.int8), xa[:0], xb[:0].reshape(0, width)
        )
        return empty_votes, int(len(keep)), missing
    try:
        votes = StyleVotes.from_columns(
            kept["model_a"].tolist(),
            kept["model_b"].tolist(),
            kept["winner"].tolist(),
            xa[keep],
            xb[keep],
            names,
        )
    except VoteFormatError as exc:
        raise VoteFormatError(
            f"{path}: {exc} (rows counted after skipping empty covariates)"
        ) from exc
    return votes, int((~keep).sum()), missing


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
        "--from-db --task TASK. --style, --ties davidson and --robustness add style control, "
        "the tie model and rank robustness. --refresh-snapshots stores snapshots instead."
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
        parser.add_argument(
            "--style",
            metavar="COVS",
            default=None,
            help="style control on these comma-separated covariates: with --from-db the samples' "
            "covariates, with --votes the columns <cov>_a and <cov>_b",
        )
        parser.add_argument(
            "--ties",
            choices=["half", "davidson"],
            default="half",
            help="half: a tie is half a win; davidson: ties are their own outcome (fits nu)",
        )
        parser.add_argument(
            "--robustness",
            action="store_true",
            help="fewest votes whose removal flips each adjacent pair of the board",
        )
        parser.add_argument(
            "--max-removals", type=int, default=1000, help="robustness search cap per pair"
        )

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
        covariates = _covariate_names(opts["style"])
        if opts["max_removals"] < 1:
            raise CommandError("--max-removals must be at least 1")
        kind = None if opts["rater_kind"] == "all" else opts["rater_kind"]
        try:
            if opts["from_db"]:
                if not opts["task"]:
                    raise CommandError(
                        "--from-db needs --task (one of " + ", ".join(Task.values) + ")"
                    )
                votes = stored_votes(task=opts["task"], category=opts["category"], rater_kind=kind)
            else:
                votes = read_votes(opts["votes"])
            fit = fit_bradley_terry(votes, options)
            rows = fit.table()
            report: dict = {}
            if opts["ties"] == "davidson":
                report["ties"] = self._davidson(votes, options, rows)
            else:
                report["ties"] = {"model": "half", "tie_weight": options.tie_weight}
            report["ties"]["both_bad"] = options.both_bad
            if covariates:
                report["style"] = self._style(opts, covariates, kind, options, rows)
            if opts["robustness"]:
                report["robustness"] = [
                    flip.as_dict()
                    for flip in rank_robustness(
                        votes, options, max_removals=opts["max_removals"], fit=fit
                    )
                ]
        except (VoteFormatError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        extended = bool(covariates) or opts["ties"] == "davidson" or opts["robustness"]
        if opts["json"]:
            keys = (*JSON_KEYS, "style") if covariates else JSON_KEYS
            out_rows = [{k: row.get(k) for k in keys} for row in rows]
            if not extended:  # the plain list, as before
                self.stdout.write(json.dumps(out_rows, indent=1))
                return
            self.stdout.write(json.dumps({"rows": out_rows, **report}, indent=1))
            return
        self._print_table(rows, fit)
        self._print_report(report)

    def _davidson(self, votes, options: BradleyTerryOptions, rows: list[dict]) -> dict:
        """Replace the rows' ratings by the Davidson tie model's (re-sorted); its nu."""
        tied = fit_davidson(
            votes,
            DavidsonOptions(
                scale=options.scale,
                base=options.base,
                init_rating=options.init_rating,
                both_bad=options.both_bad,
                significance=options.significance,
                anchor=options.anchor,
                prior_sd=options.prior_sd,
            ),
        )
        by_model = {row["model"]: row for row in tied.table()}
        for row in rows:
            row.update({k: by_model[row["model"]][k] for k in (*STYLE_KEYS, "variance")})
        rows.sort(key=lambda r: (-r["rating"], r["model"]))
        return {
            "model": "davidson",
            "nu": tied.nu,
            "nu_lower": tied.nu_lower,
            "nu_upper": tied.nu_upper,
            "tie_probability_equal": tied.tie_probability_equal,
            "flags": list(tied.flags),
        }

    def _style(self, opts, covariates, kind, options, rows: list[dict]) -> dict:
        if opts["from_db"]:
            found = style_votes(
                task=opts["task"], covariates=covariates, category=opts["category"], rater_kind=kind
            )
            unknown = [n for n in covariates if found.total and found.missing.get(n) == found.total]
            if unknown:
                raise CommandError(
                    f"unknown covariate(s) {', '.join(unknown)}: no sample of these votes records "
                    f"{'it' if len(unknown) == 1 else 'them'}; the samples record "
                    + (
                        ", ".join(found.available)
                        or "no covariates (see backfill_sample_covariates)"
                    )
                )
            styled, skipped, missing = found.votes, found.skipped, found.missing
        else:
            styled, skipped, missing = file_style_votes(opts["votes"], covariates)
        if styled.n_votes == 0 or len(styled.models) < 2:
            raise CommandError(
                f"style control needs votes between at least two models with all of "
                f"{', '.join(covariates)}; {styled.n_votes} votes have them ({skipped} skipped)"
            )
        fit = fit_style_control(styled, options, style_options_for(styled))
        by_model = {row["model"]: row for row in fit.table()}
        for row in rows:
            found_row = by_model.get(row["model"])
            row["style"] = {k: found_row[k] for k in STYLE_KEYS} if found_row else None
        return {
            "covariates": list(covariates),
            "n_votes": fit.n_votes,
            "skipped_votes": skipped,
            "missing": missing,
            "coefficients": fit.coefficient_table(),
            "flags": list(fit.flags),
        }

    def _print_report(self, report: dict) -> None:
        ties = report["ties"]
        if ties["model"] == "davidson":
            self.stdout.write(
                f"ties: Davidson, nu = {ties['nu']:.4f} [{ties['nu_lower']:.4f}, "
                f"{ties['nu_upper']:.4f}]; P(tie) between equal models "
                f"{ties['tie_probability_equal']:.3f}"
            )
        style = report.get("style")
        if style:
            self.stdout.write(
                f"style control on {', '.join(style['covariates'])}: {style['n_votes']} votes"
                + (
                    f", {style['skipped_votes']} skipped for missing covariates ("
                    + ", ".join(f"{k}: {v}" for k, v in style["missing"].items())
                    + ")"
                    if style["skipped_votes"]
                    else ""
                )
            )
            self.stdout.write(f"{'covariate':<20} {'coef':>8} {'95% CI':>19} {'points':>8}")
            for c in style["coefficients"]:
                self.stdout.write(
                    f"{c['covariate']:<20} {c['coefficient']:>8.4f} "
                    f"[{c['lower']:>8.4f}, {c['upper']:>8.4f}] {c['points']:>8.1f}"
                )
        if "robustness" in report:
            self.stdout.write("robustness (votes whose removal flips the pair):")
            for flip in report["robustness"]:
                self.stdout.write(
                    f"  #{flip['position']} {flip['upper']} > {flip['lower']}: {flip['display']}"
                )

    def _print_table(self, rows: list[dict], fit) -> None:
        width = max([len("model"), *(len(r["model"]) for r in rows)])
        level = round(100 * (1 - fit.method["significance"]))
        self.stdout.write(
            f"{'rank':>4} {'ub':>4}  {'model':<{width}}  {'rating':>8}  "
            f"{f'{level}% CI':>19}  {'votes':>8}  "
            + ("style (rank)      " if any("style" in r for r in rows) else "")
            + "flags"
        )
        for r in rows:
            style = ""
            if "style" in r:
                s = r["style"]
                style = f"{s['rating']:>8.1f} ({s['rank']:>3})   " if s else f"{'–':>14}    "
            self.stdout.write(
                f"{r['rank']:>4} {r['rank_ub']:>4}  {r['model']:<{width}}  {r['rating']:>8.1f}  "
                f"[{r['lower']:>8.1f}, {r['upper']:>8.1f}]  {r['votes']:>8}  {style}"
                f"{','.join(r['flags'])}"
            )
        summary = f"{fit.n_votes} votes, {len(rows)} models, {fit.method['ci']} intervals"
        if fit.flags:
            summary += "; flags: " + ", ".join(fit.flags)
        for component in fit.components:
            summary += "\n  component: " + ", ".join(component)
        self.stdout.write(summary)
