"""`manage.py settings_doc [--output docs/configuration.md] [--check]`: the configuration page,
generated from the source of config/settings.py.

The source is parsed (ast for the calls, tokenize for the comments), never imported for its
values: many defaults depend on DEBUG or on the machine (`150 if DEBUG else 0`, the CPU count),
and the page must show them as written. Every call of a config/env.py helper that reads the
environment (env_str, env_int, env_float, env_bool, env_list, env_number_map, env_path,
database_from_url, cache_from_url, and any helper added there later) with a literal variable
name becomes one row: variable, type, default as written, and the comment lines directly above
it and on its line. Rows are grouped by the `# --- xxx ---` and `# [xxx settings]` section
comments of settings.py. `--check` exits non-zero when the file on disk differs (CI).
"""

from __future__ import annotations

import ast
import difflib
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DEFAULT_OUTPUT = "docs/configuration.md"
SETTINGS_FILE = "config/settings.py"
ENV_FILE = "config/env.py"

# What each helper of config/env.py turns the variable's text into.
TYPES = {
    "env_str": "string",
    "env_bool": "boolean",
    "env_int": "integer",
    "env_float": "number",
    "env_list": "comma-separated list",
    "env_number_map": "JSON object (name → number)",
    "env_path": "path",
    "database_from_url": "database URL",
    "cache_from_url": "cache URL",
    "os.environ.get": "string",
}
UNSET = "unset"
DASH_HEADER = re.compile(r"^#\s*-{3,}\s*(?P<title>.*?)\s*-*\s*$")
BRACKET_HEADER = re.compile(r"^#\s*\[(?P<title>[^\]]+?)\s+settings\]\s*(?P<rest>.*)$")
FIRST_SECTION = "General"

PREAMBLE = """\
# Configuration

Every setting is read once, when the process starts, from environment variables: in
`config/settings.py`, through the small helpers of `config/env.py`. Nothing else reads the
environment, except `config/gunicorn.conf.py` for the web server's own knobs. This page starts
with how values are read and the variables that matter most, then lists every variable
`config/settings.py` reads, with its type, its default as written in the source and the source's
own comment, generated from that file by `python manage.py settings_doc` (do not edit that part
by hand; `tests/unit/test_docs.py` fails when it is out of date).

## How values are read

- **Development is the default.** `DEBUG` is on unless set to `0`, so `manage.py` works on a fresh
  checkout; several defaults follow it (`ARENA_AUTO_APPROVE`, `C2PA_DEMO_SIGNER`,
  `JUDGE_CHECKER_PAIRS`, `ALLOWED_HOSTS`). Production sets `DEBUG=0`, and then `SECRET_KEY` is
  required and `python manage.py check --deploy` passes with the environment of
  [operations](operations.md#production).
- **The embedded default needs no server**: SQLite under `var/` (`VAR_DIR`), a Celery broker on
  kombu's filesystem transport (`var/broker/`), task results in the database, media in
  `var/media/`. Production points `DATABASE_URL` at PostgreSQL (psycopg 3), `CELERY_BROKER_URL` at
  Redis or RabbitMQ and `CACHE_URL` at Redis.
- **Types.** Booleans accept `1`, `true`, `yes`, `on` and `0`, `false`, `no`, `off` (or empty);
  integers and numbers are parsed as such; lists are comma-separated; `GENERATION_PRICES` is a JSON
  object merged over the defaults; a path left empty means *not configured* (a metric backbone
  without weights is then `unavailable`, with a message naming the variable).
- **A malformed value stops the process at start** with one line naming the variable, e.g.
  `configuration error: DATABASE_URL: malformed database URL ...`.

## The variables that matter most

| variable | default | meaning |
|---|---|---|
| `DEBUG` | on | development mode; production must set `DEBUG=0` (then `SECRET_KEY` is required) |
| `SECRET_KEY` | dev key only when `DEBUG` | required in production: the process refuses to start without it |
| `ALLOWED_HOSTS` | `127.0.0.1,localhost,testserver` in DEBUG, else empty | comma-separated host names |
| `DATABASE_URL` | `sqlite:///var/db.sqlite3` | e.g. `postgres://user:pass@db:5432/arena` (psycopg 3) |
| `DATABASE_CONN_MAX_AGE` | `60` | seconds a database connection is reused |
| `DATABASE_HEALTH_CHECKS` | off | a `SELECT 1` before each request's first query; off, a database restart costs each worker thread one failed request |
| `DATABASE_PREPARE_THRESHOLD` | `5` | PostgreSQL server-side prepared statements (the vote INSERT asks for one); `off` behind PgBouncer older than 1.21 in transaction mode |
| `CELERY_BROKER_URL` | `filesystem://` (under `var/broker`) | `redis://host:6379/0` or `amqp://guest:guest@host:5672//` |
| `CELERY_VISIBILITY_TIMEOUT` | 3 h | Redis: seconds before an unacknowledged task is redelivered; set it above the longest task |
| `CACHE_URL` | empty (per-process memory) | `redis://host:6379/1`: one cache for every process; sessions are then read from it (written through to the database) and cached leaderboards are shared. Set it in production |
| `CACHE_KEY_PREFIX` | `gva` | prefix of every cache key (several deployments on one Redis) |
| `MEDIA_ROOT` | `var/media` | where checkpoints and samples are stored |
| `DEFAULT_FILE_STORAGE` | file system | any Django storage class, e.g. `storages.backends.s3.S3Storage` |
| `CHECKPOINT_CACHE_DIR` | `var/checkpoint-cache` | local copies of checkpoints when the media storage is remote, one folder per sha256 |
| `INCEPTION_WEIGHTS_PATH`, `CLIP_WEIGHTS_PATH`, `CLIP_MODEL_NAME`, `I3D_WEIGHTS_PATH` | empty (`CLIP_MODEL_NAME`: `ViT-B-32`) | local weight files for metric backbones ([metrics](metrics.md)) |
| `JUDGE_API_BASE_URL`, `JUDGE_API_MODEL`, `JUDGE_API_KEY`, `JUDGE_LOCAL_VLM_PATH` | empty | VLM judge backends ([judges](judges.md)) |
| `METRICS_TEXT_TO_IMAGE`, `METRICS_TEXT_TO_VIDEO`, `METRICS_IMAGE_EDIT` | the catalogue's media metrics of the task | comma-separated metric names; checked by `manage.py check` (`evaluation.E001`) |
| `C2PA_SIGNING_CERT`, `C2PA_SIGNING_KEY` | empty | PEM chain and key that sign published samples (C2PA); required when `DEBUG=0` (`manage.py check`: `evaluation.E002` for a missing file, `evaluation.W001` when neither is set nor the demo signer allowed) |
| `C2PA_DEMO_SIGNER`, `C2PA_DEMO_DIR` | `DEBUG`, `var/c2pa-demo` | sign with a demo chain made there on first use when no certificate is configured ([provenance](provenance.md)) |
| `WATERMARK_THRESHOLD` | `0.875` | bit accuracy (of 64) from which a watermark counts as detected |
| `VERIFY_MAX_BYTES`, `VERIFY_MAX_PIXELS`, `VERIFY_PER_MINUTE_PER_IP` | 20 MiB, 40,000,000, 30 | `/verify` upload limits; uploads per address per minute (429 above) |
| `PROVENANCE_CHECK_SAMPLES` | `4` | raw outputs per version the provenance column checks |
| `TRAINING_THREADS` | half the cores | torch CPU threads of a training task (the demo's trainer) |
| `STEPS_SWEEP_ON_PUBLISH`, `STEPS_SWEEP_METRIC` | off (`make run`: on), `prompt_agreement` | queue a steps sweep of each version when it publishes, scored with this metric ([generators](generators.md#steps-sweep-quality-against-nfe)) |
| `GENERATION_PRICES` | `cpu` 0.10, `H100` 2.50, `A100` 1.50, `L4` 0.70, ... | JSON object of device → $ per hour, merged over the defaults; prices the leaderboard's cost columns ([generators](generators.md#generation-cost-time-device-nfe-and--per-sample)) |
| `JUDGE_CHECKER_PAIRS`, `JUDGE_CHECKER_SECONDS` | `150` in DEBUG (else `0`), `120` | new pairs per task the synthetic checker judges each period (0: off) |
| `LOG_LEVEL`, `LIBRARY_LOG_LEVEL` | `INFO` (`make run`: `WARNING`), `WARNING` | our log level; diffusers / httpx / urllib3 |
| `RATINGS_REFRESH_SECONDS` | `60` | how often beat refreshes leaderboard snapshots |
| `RATE_COUNTERS_PRUNE_SECONDS` | `600` | how often beat deletes rate-limit counters that no longer count |
| `WEB_CONCURRENCY`, `GUNICORN_THREADS`, `GUNICORN_BIND` | 2 × CPU cores, `2`, `0.0.0.0:8000` | read by `config/gunicorn.conf.py`, not by the settings |

The `make run` target sets a few of these for the demo only: `CLIP_MODEL_NAME`,
`CLIP_WEIGHTS_PATH` and `CLIP_WEIGHTS_CUSTOM` (the demo CLIP), `LOG_LEVEL=WARNING` and
`STEPS_SWEEP_ON_PUBLISH=1`; tests run with no weights configured.

## Every variable, by section of config/settings.py

Generated from `config/settings.py` by `python manage.py settings_doc`; run it again after
changing a setting there (`--check` tells whether this page is current). Defaults are the source
text, so `DEBUG`, `VAR_DIR` and the other names in them are the values of those settings; *unset*
means the variable has no default (empty = not configured). A variable that sets a setting of
another name says which.
"""


@dataclass
class EnvRead:
    """One environment variable the settings read, with where and how."""

    variable: str
    kind: str
    default: str
    description: str
    section: str
    line: int
    targets: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)


@dataclass
class Section:
    title: str
    intro: str = ""
    reads: list[EnvRead] = field(default_factory=list)


@dataclass
class _Comments:
    """The comments of one source file, by line number."""

    full: dict[int, str]  # lines that are only a comment
    inline: dict[int, str]  # comments after code
    headers: dict[int, tuple[str, str]]  # section header lines: (title, intro)
    intro_lines: set[int]

    @classmethod
    def read(cls, source: str, *, sections: bool) -> _Comments:
        lines = source.splitlines()
        full: dict[int, str] = {}
        inline: dict[int, str] = {}
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type != tokenize.COMMENT:
                continue
            row, col = token.start
            text = token.string.lstrip("#").strip()
            if lines[row - 1][:col].strip():
                inline[row] = text
            else:
                full[row] = text
        headers: dict[int, tuple[str, str]] = {}
        intro_lines: set[int] = set()
        for row in sorted(full) if sections else []:
            raw = lines[row - 1].strip()
            bracket = BRACKET_HEADER.match(raw)
            dash = DASH_HEADER.match(raw)
            if bracket:
                intro = [bracket["rest"]] if bracket["rest"] else []
                follow = row + 1
                while intro and follow in full:  # the header's sentence goes on below it
                    intro.append(full[follow])
                    intro_lines.add(follow)
                    follow += 1
                headers[row] = (bracket["title"].strip().capitalize(), _intro(" ".join(intro)))
            elif dash and dash["title"]:
                title = dash["title"]
                headers[row] = (title[:1].upper() + title[1:], "")
        return cls(full, inline, headers, intro_lines)

    def block_above(self, row: int) -> list[str]:
        """The comment lines directly above `row` (no blank line between), header lines and
        section introductions excluded."""
        found: list[str] = []
        above = row - 1
        while above in self.full and above not in self.headers and above not in self.intro_lines:
            found.append(self.full[above])
            above -= 1
        return found[::-1]

    def section_of(self, row: int) -> str:
        before = [r for r in self.headers if r < row]
        return self.headers[max(before)][0] if before else FIRST_SECTION


def _intro(text: str) -> str:
    # "(evaluation.provenance): published ..." reads better with the module as code.
    return re.sub(r"^\(([\w.]+)\):?\s*", r"`\1`: ", text.strip())


def _segment(source: str, node: ast.AST) -> str:
    """The node's source text on one line (whitespace inside brackets collapsed)."""
    text = ast.get_source_segment(source, node) or ""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r",\s*([\]})])", r"\1", text)
    return re.sub(r"([\[{(])\s+", r"\1", text)


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _variable(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _negated(source: str, test: ast.expr) -> str:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _segment(source, test.operand)
    return f"not ({_segment(source, test)})"


def _key_path(source: str, node: ast.AST, call: ast.Call) -> list[str] | None:
    """The subscripts that lead from a literal `node` to `call` (dict keys), or None."""
    if node is call:
        return []
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            found = _key_path(source, value, call)
            if found is not None:
                return ([f"[{_segment(source, key)}]"] if key is not None else []) + found
    if isinstance(node, ast.DictComp):
        found = _key_path(source, node.value, call)
        if found is not None:
            return [f"[{_segment(source, node.key)}]", *found]
    for child in ast.iter_child_nodes(node):
        found = _key_path(source, child, call)
        if found is not None:
            return found
    return None


def _parent_map(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


@dataclass
class _Helper:
    """A function of config/env.py that reads the environment."""

    name: str
    default_index: int | None  # position of its `default` parameter
    default_value: str | None  # the parameter's own default, as written
    inner: list[tuple[ast.Call, list[str]]]  # its reads of fixed variables, with conditions


def _env_helpers(source: str) -> tuple[dict[str, _Helper], dict[ast.AST, ast.AST]]:
    """The functions of config/env.py that read the environment (directly, or through another
    such function), and the parent map of the parsed file."""
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    readers: set[str] = set()
    grew = True
    while grew:  # a helper built on another helper reads the environment too
        grew = False
        for name, node in functions.items():
            calls = {_call_name(call) for call in _calls(node)}
            body = ast.unparse(node)
            direct = "os.environ" in body or "os.getenv" in body
            if name not in readers and (direct or calls & readers):
                readers.add(name)
                grew = True
    helpers: dict[str, _Helper] = {}
    for name in sorted(readers):
        node = functions[name]
        params = [arg.arg for arg in node.args.args]
        index = params.index("default") if "default" in params else None
        own = None
        if index is not None:
            defaults = node.args.defaults
            offset = index - (len(params) - len(defaults))
            if offset >= 0:
                own = _segment(source, defaults[offset])
        helpers[name] = _Helper(name, index, own, [])
    for name, helper in helpers.items():
        helper.inner = [
            (call, conditions)
            for call, conditions in _calls_with_conditions(source, functions[name].body)
            if _variable(call) and (_call_name(call) in helpers or _is_os_read(call))
        ]
    return helpers, _parent_map(tree)


def _is_os_read(call: ast.Call) -> bool:
    return _call_name(call) in ("os.environ.get", "os.getenv")


def _calls_with_conditions(source: str, body: list[ast.stmt], conditions=()):
    """(call, conditions) for every call in `body`, in source order, with the `if` tests that
    must hold for it to run."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            yield from ((c, list(conditions)) for c in _calls(stmt.test))
            here = _segment(source, stmt.test)
            yield from _calls_with_conditions(source, stmt.body, (*conditions, here))
            negated = _negated(source, stmt.test)
            yield from _calls_with_conditions(source, stmt.orelse, (*conditions, negated))
        elif isinstance(stmt, ast.For | ast.While | ast.With | ast.Try):
            for part in ("body", "orelse", "finalbody"):
                yield from _calls_with_conditions(source, getattr(stmt, part, []), conditions)
            for handler in getattr(stmt, "handlers", []):
                yield from _calls_with_conditions(source, handler.body, conditions)
        else:
            yield from ((c, list(conditions)) for c in _calls(stmt))


def _calls(node: ast.AST) -> list[ast.Call]:
    found = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
    return sorted(found, key=lambda c: (c.lineno, c.col_offset))


def _statement_of(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST:
    while not isinstance(node, ast.stmt):
        node = parents[node]
    return node


def _default(source: str, call: ast.Call, helper: _Helper | None, parents) -> str:
    """The default as written: the helper's `default` argument (or its own default), or what
    follows an `or` when the read comes first in one."""
    if helper is None:  # os.environ.get(name[, default])
        text = _segment(source, call.args[1]) if len(call.args) > 1 else UNSET
    else:
        keyword = next((k.value for k in call.keywords if k.arg == "default"), None)
        if keyword is not None:
            text = _segment(source, keyword)
        elif helper.default_index is not None and len(call.args) > helper.default_index:
            text = _segment(source, call.args[helper.default_index])
        else:
            text = helper.default_value if helper.default_value is not None else UNSET
    parent = parents.get(call)
    if (
        isinstance(parent, ast.BoolOp)
        and isinstance(parent.op, ast.Or)
        and parent.values[0] is call
    ):
        text = " or ".join(_segment(source, value) for value in parent.values[1:])
    return text


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _kind(helper: str, call: ast.Call, parents: dict[ast.AST, ast.AST]) -> str:
    """The helper's type; a string the settings wrap in Path(...) is a path."""
    parent = parents.get(call)
    if isinstance(parent, ast.Call) and _call_name(parent) in ("Path", "pathlib.Path"):
        return TYPES["env_path"]
    return TYPES.get(helper, helper)


def _description(comments: _Comments, call_line: int, stmt_line: int) -> str:
    """The comment lines directly above the read (or above its statement), then the comment on
    its line, as sentences."""
    above = comments.block_above(call_line) if call_line != stmt_line else []
    if not above:
        above = comments.block_above(stmt_line)
    parts = [" ".join(above), comments.inline.get(call_line, "")]
    return " ".join(filter(None, map(_sentence, parts)))


def _targets(source: str, stmt: ast.AST, call: ast.Call) -> list[str]:
    if isinstance(stmt, ast.Assign):
        names, value = stmt.targets, stmt.value
    elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        names, value = [stmt.target], stmt.value
    else:
        return []
    path = "".join(_key_path(source, value, call) or [])
    return [_segment(source, name) + path for name in names]


def environment_reads(root: Path | None = None) -> list[Section]:
    """Every environment variable config/settings.py reads through config/env.py, grouped by
    the section comments of settings.py, in source order."""
    root = Path(root or settings.BASE_DIR)
    source = (root / SETTINGS_FILE).read_text(encoding="utf-8")
    env_source = (root / ENV_FILE).read_text(encoding="utf-8")
    helpers, env_parents = _env_helpers(env_source)
    comments = _Comments.read(source, sections=True)
    env_comments = _Comments.read(env_source, sections=False)
    tree = ast.parse(source)
    parents = _parent_map(tree)
    # The names settings.py imported from config.env (they may be aliased).
    local = {
        alias.asname or alias.name: alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "config.env"
        for alias in node.names
        if alias.name in helpers
    }
    sections = {FIRST_SECTION: Section(FIRST_SECTION)}
    for _row, (title, intro) in sorted(comments.headers.items()):
        sections.setdefault(title, Section(title, intro))
    found: dict[str, EnvRead] = {}
    for call, conditions in _calls_with_conditions(source, tree.body):
        name = _call_name(call)
        variable = _variable(call)
        helper_name = local.get(name)
        if variable is None or (helper_name is None and not _is_os_read(call)):
            continue
        helper = helpers.get(helper_name) if helper_name else None
        stmt = _statement_of(call, parents)
        read = EnvRead(
            variable=variable,
            kind=_kind(helper_name or name, call, parents),
            default=_default(source, call, helper, parents),
            description=_description(comments, call.lineno, stmt.lineno),
            section=comments.section_of(stmt.lineno),
            line=call.lineno,
            targets=_targets(source, stmt, call),
            conditions=[f"`{condition}`" for condition in conditions],
        )
        _merge(found, read)
        for inner, inner_conditions in helper.inner if helper else []:
            inner_name = _call_name(inner)
            where = f"`config.env.{helper.name}`"
            inner_read = EnvRead(
                variable=_variable(inner) or "",
                kind=_kind(inner_name, inner, env_parents),
                default=_default(env_source, inner, helpers.get(inner_name), env_parents),
                description=_description(
                    env_comments, inner.lineno, _statement_of(inner, env_parents).lineno
                ),
                section=read.section,
                line=call.lineno,
                targets=read.targets,
                conditions=[
                    *read.conditions,
                    *(f"{where} finds `{c}`" for c in inner_conditions),
                ],
            )
            _merge(found, inner_read, reader=where)
    for read in sorted(found.values(), key=lambda r: r.line):
        sections[read.section].reads.append(read)
    return [section for section in sections.values() if section.reads]


def _merge(found: dict[str, EnvRead], read: EnvRead, reader: str = "") -> None:
    """One row per variable: a second read adds its targets and description to the first, and
    the row moves to the read that sets the setting of the variable's own name."""
    if reader:
        read.description = " ".join(filter(None, [read.description, f"Read by {reader}."]))
    previous = found.get(read.variable)
    if previous is None:
        found[read.variable] = read
        return
    primary, other = (read, previous) if read.variable in read.targets else (previous, read)
    primary.targets = [*primary.targets, *(t for t in other.targets if t not in primary.targets)]
    if other.description and other.description not in primary.description:
        primary.description = " ".join(filter(None, [primary.description, other.description]))
    if other.default != primary.default:
        primary.description += f" Where it sets `{', '.join(other.targets)}`: `{other.default}`."
    primary.conditions = primary.conditions if other.conditions else []
    found[read.variable] = primary


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return "*unset*" if text == UNSET else f"`{_cell(text)}`"


def render(sections: list[Section]) -> str:
    out = [PREAMBLE]
    for section in sections:
        out.append(f"### {section.title}\n")
        if section.intro:
            out.append(f"{section.intro}\n")
        out.append("| variable | type | default | description |")
        out.append("|---|---|---|---|")
        for read in section.reads:
            notes = [read.description] if read.description else []
            others = [t for t in read.targets if t != read.variable]
            if others:
                notes.append("Sets " + ", ".join(f"`{t}`" for t in others) + ".")
            if read.conditions:
                notes.append("Read only when " + " and ".join(read.conditions) + ".")
            out.append(
                f"| `{read.variable}` | {read.kind} | {_code(read.default)} "
                f"| {_cell(' '.join(notes))} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


class Command(BaseCommand):
    help = (
        "Write the configuration reference (docs/configuration.md) from the source of "
        "config/settings.py; --check fails when the file differs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            default=DEFAULT_OUTPUT,
            help=f"file to write, relative to the project root (default {DEFAULT_OUTPUT}; - prints)",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; exit non-zero when the file is not what would be generated",
        )

    def handle(self, *args, output: str, check: bool, **options):
        text = render(environment_reads())
        if output == "-":
            sys.stdout.write(text)
            return
        path = Path(output)
        if not path.is_absolute():
            path = Path(settings.BASE_DIR) / path
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if check:
            if current != text:
                diff = difflib.unified_diff(
                    current.splitlines(), text.splitlines(), str(path), "generated", lineterm=""
                )
                shown = "\n".join(list(diff)[:40])
                raise CommandError(
                    f"{output} is out of date with {SETTINGS_FILE}; run "
                    f"`python manage.py settings_doc --output {output}`.\n{shown}"
                )
            self.stdout.write(f"{output} is up to date.")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        count = text.count("\n| `")
        self.stdout.write(self.style.SUCCESS(f"Wrote {output} ({count} table rows)."))
