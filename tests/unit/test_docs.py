"""The docs name only things that exist: commands, settings, files, code, pages and anchors.

README.md and docs/*.md are read as text. A failure names the page and the stale reference: fix
the page (or, when the code lost something by mistake, the code), not this test.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command, get_commands

from tests.conftest import ROOT
from workers.management.commands.settings_doc import environment_reads

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 150

# Environment variables read outside config/settings.py (so not settings), by the file that
# reads them; the test checks that file still does.
OTHER_ENVIRONMENT = {
    "config/gunicorn.conf.py": {"WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_BIND"},
}

FENCED = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
COMMAND = re.compile(r"manage\.py\s+([a-z][\w-]*)")
SETTING_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
APPS = ("config", "models_registry", "evaluation", "arena", "pipeline", "workers")
TOP_DIRS = (*APPS, "benchmarks", "docs", "examples", "static", "templates", "tests", r"\.ci")
REPO_PATH = re.compile(rf"(?<![\w./<>-])((?:{'|'.join(TOP_DIRS)})/[\w./*-]*[\w*])")
DOTTED = re.compile(rf"^((?:{'|'.join(APPS)})(?:\.\w+)+)(?::(\w+))?(?:\(.*)?$")
MODULE_FUNCTION = re.compile(rf"\b((?:{'|'.join(APPS)})(?:\.\w+)+):(\w+)")
SYSTEM_CHECK_ID = re.compile(r"\.[A-Z]\d{3}$")
FILE_NAME = re.compile(r"\.(?:json|py|md|txt|toml|ya?ml|csv|jsonl|npz|safetensors|pt|pth|bin)$")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(text: str) -> str:
    """The page without its fenced code blocks (links and inline code live in the prose)."""
    return FENCED.sub("", text)


def inline_code(text: str) -> list[str]:
    return [span.strip() for span in INLINE_CODE.findall(prose(text))]


@cache
def known_settings() -> frozenset[str]:
    """Django settings, the environment variables config/settings.py reads, and those read by
    the files of OTHER_ENVIRONMENT."""
    names = {name for name in dir(settings) if name.isupper()}
    names |= {read.variable for section in environment_reads() for read in section.reads}
    for variables in OTHER_ENVIRONMENT.values():
        names |= variables
    return frozenset(names)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for _level, title in HEADING.findall(prose(path.read_text(encoding="utf-8"))):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


@cache
def module_names(path: Path) -> dict[str, ast.AST]:
    """The names a module defines or imports at its top level (classes map to their node)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names[name.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
    return names


def class_members(node: ast.ClassDef) -> set[str]:
    members = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            members.add(item.name)
        elif isinstance(item, ast.Assign | ast.AnnAssign):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            members |= {t.id for t in targets if isinstance(t, ast.Name)}
    return members


def resolves(dotted: str) -> bool:
    """Whether `a.b.c` names a module of ours, or a name defined in one (a class's member too)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if base.with_suffix(".py").exists() else None
        module = module or (base / "__init__.py" if (base / "__init__.py").exists() else None)
        if module is None:
            continue
        rest = parts[cut:]
        if not rest:
            return True
        names = module_names(module)
        if rest[0] not in names:
            return False
        owner = names[rest[0]]
        if len(rest) > 1 and isinstance(owner, ast.ClassDef):
            return rest[1] in class_members(owner)
        return True
    return False


def code_references(text: str) -> set[str]:
    """`module.name` in inline code, and `module:name` anywhere (the diagrams)."""
    found = set()
    for span in inline_code(text):
        match = DOTTED.match(span)
        skip = "*" in span or span.endswith("_") or FILE_NAME.search(span)
        if match and not skip and not SYSTEM_CHECK_ID.search(match[1]):
            found.add(match[1] + (f".{match[2]}" if match[2] else ""))
    found |= {f"{module}.{name}" for module, name in MODULE_FUNCTION.findall(text)}
    return found


@pytest.fixture(params=PAGES, ids=page_id)
def page(request) -> tuple[Path, str]:
    return request.param, request.param.read_text(encoding="utf-8")


def test_the_docs_folder_has_pages():
    assert len(DOCS) >= 10, [page_id(p) for p in DOCS]


def code(text: str) -> list[str]:
    """The page's fenced blocks and inline code spans, where commands are written."""
    return [block[0] for block in FENCED.finditer(text)] + inline_code(text)


def test_commands_exist(page):
    path, text = page
    commands = get_commands()
    named = {name for snippet in code(text) for name in COMMAND.findall(snippet)}
    missing = sorted(name for name in named if name not in commands)
    assert not missing, f"{page_id(path)} names management commands that do not exist: {missing}"


def test_settings_exist(page):
    path, text = page
    named = {name for span in inline_code(text) for name in SETTING_NAME.findall(span)}
    missing = sorted(named - known_settings())
    assert not missing, f"{page_id(path)} names settings that do not exist: {missing}"


def test_other_environment_variables_are_still_read_there():
    for file, variables in OTHER_ENVIRONMENT.items():
        source = (ROOT / file).read_text(encoding="utf-8")
        for variable in variables:
            assert f'"{variable}"' in source, f"{file} no longer reads {variable}"


def test_repository_paths_exist(page):
    path, text = page
    missing = sorted(
        {
            found
            for found in REPO_PATH.findall(text)
            if not (any(ROOT.glob(found)) if "*" in found else (ROOT / found).exists())
        }
    )
    assert not missing, f"{page_id(path)} names files that do not exist: {missing}"


def test_code_references_exist(page):
    path, text = page
    missing = sorted(ref for ref in code_references(text) if not resolves(ref))
    assert not missing, f"{page_id(path)} names code that does not exist: {missing}"


def test_links_between_pages_resolve(page):
    path, text = page
    broken = []
    for target in LINK.findall(prose(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert not broken, f"{page_id(path)} has broken links: {broken}"


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    assert lines[0].startswith("# "), "README.md starts with its title"
    body = [line for line in lines[1:] if line.strip()]
    assert body[0].startswith("```"), "the title is followed by the set-up commands block"
    assert body[1].startswith("make run ") and body[2].startswith("make test "), body[:3]
    assert body[3].startswith("```"), "the block holds exactly the two commands"


def test_readme_links_every_docs_page():
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for target in LINK.findall(prose(README.read_text(encoding="utf-8")))
    }
    missing = [page_id(p) for p in DOCS if p.resolve() not in linked]
    assert not missing, f"README.md's contents miss {missing}"


@pytest.mark.parametrize("path", DOCS, ids=page_id)
def test_docs_pages_start_with_a_title_and_a_summary(path):
    blocks = [b.strip() for b in path.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    assert blocks[0].startswith("# ") and "\n" not in blocks[0], f"{page_id(path)}: title"
    summary = blocks[1]
    assert not summary.startswith(("#", "|", "-", "*", "```", "    ")), (
        f"{page_id(path)}: the title is followed by a one-paragraph summary"
    )


def test_configuration_page_is_generated_from_the_settings():
    call_command("settings_doc", "--check")


def test_the_checks_catch_what_they_are_for():
    assert COMMAND.findall("python manage.py seed_demo --wait") == ["seed_demo"]
    assert code("so that manage.py works on a fresh checkout") == []
    assert SETTING_NAME.findall("ARENA_KWISE_K=4") == ["ARENA_KWISE_K"]
    assert not SETTING_NAME.findall("..._PER_IP")
    assert REPO_PATH.findall("see benchmarks/votes.py.") == ["benchmarks/votes.py"]
    assert not REPO_PATH.findall("http://127.0.0.1:8000/arena/text-to-image/")
    assert slug("Generation cost: time, device, NFE and $ per sample") == (
        "generation-cost-time-device-nfe-and--per-sample"
    )
    assert slug("Ratings: Bradley–Terry") == "ratings-bradleyterry"
    assert resolves("arena.services.vote_create")
    assert not resolves("arena.services.no_such_function")
    assert not resolves("arena.no_such_module")
    assert code_references("`evaluation.E001`, `workers.tasks.gpu_*`, `config.json`") == set()
