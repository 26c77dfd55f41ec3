"""Package boundaries: what each top-level package must not import, read from the README's package
table and each package's docstring ("Must not know …"), checked on every import statement.

Imports are collected from the syntax tree of every ``.py`` file, module-level and inside functions
alike (an import inside a function is still a dependency), with relative imports resolved. A failure
names ``file:line``, the import and the rule's reason. Where the architecture and the code disagree,
the code is fixed (an interface owned by the package that needs it, a shared helper in a neutral
package) — never by moving the import into a function, which this test sees just the same.

Some boundaries are about what a module pulls in when it is imported, not only what it names: a
channel adapter importing the message model must not load the MongoDB driver through
``store/__init__``. Those are checked in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FIRST_PARTY = frozenset(
    {
        "backoffice",
        "channels",
        "configuration",
        "console",
        "dialogue",
        "downstream",
        "errors",
        "gateway",
        "intents",
        "ivr",
        "media_ocr",
        "nlu",
        "quality",
        "shop",
        "standins",
        "store",
        "supervisor",
        "textpatterns",
        "twiliohooks",
    }
)
FOUNDATIONS = frozenset({"errors", "configuration", "textpatterns"})
"""Neutral packages anyone may use: the exception tree, settings declarations, bounded regexes."""
DRIVERS = ("pymongo", "motor", "bson")
"""The database: a package that must not know it imports none of these."""


@dataclass(frozen=True)
class Rule:
    why: str
    forbidden: frozenset[str]
    """Module prefixes (first-party or third-party) this package must not import."""
    allowed: frozenset[str] = frozenset()
    """Prefixes allowed although a forbidden prefix covers them (a package's published surface)."""
    allowed_exact: frozenset[str] = frozenset()
    """Modules allowed by exact name only (a package's ``__init__``, not what lies under it)."""
    exempt: frozenset[str] = frozenset()
    """Files (repository paths, or folders ending in ``/``) the rule does not apply to."""

    def breaks(self, module: str, path: str) -> bool:
        if any(path == e or (e.endswith("/") and path.startswith(e)) for e in self.exempt):
            return False
        if module in self.allowed_exact or _under(module, self.allowed):
            return False
        return _under(module, self.forbidden)


def _under(module: str, prefixes: frozenset[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _all_but(*kept: str) -> frozenset[str]:
    return FIRST_PARTY - set(kept)


RULES: dict[str, Rule] = {
    "errors": Rule(
        "errors imports nothing first-party; it must not know HTTP frameworks or the store",
        _all_but("errors") | {"aiohttp", *DRIVERS},
    ),
    "configuration": Rule("configuration must not know any particular package's settings", _all_but(*FOUNDATIONS)),
    "textpatterns": Rule(
        "textpatterns must not know what the patterns mean, or who calls them", _all_but(*FOUNDATIONS)
    ),
    "intents": Rule(
        "intents must not know how intents are recognised, or what any layer does with them",
        _all_but(*FOUNDATIONS, "intents"),
    ),
    "supervisor": Rule(
        "supervisor must not know what the servers it runs are for", _all_but(*FOUNDATIONS, "supervisor")
    ),
    "twiliohooks": Rule(
        "twiliohooks (Twilio's signature check) must not know any channel, the dialogue, NLU or the database",
        _all_but(*FOUNDATIONS, "twiliohooks") | set(DRIVERS),
    ),
    "store": Rule(
        "store must not know channels' wire formats, NLU or dialogue rules: it imports no business package",
        _all_but(*FOUNDATIONS, "store", "supervisor"),
    ),
    "channels": Rule(
        "channels must not know dialogue, NLU or the database (channel → store: only the message model)",
        _all_but(*FOUNDATIONS, "channels", "twiliohooks") | set(DRIVERS),
        # The message model, and the parser for JSON from outside (pure: no driver, no collection).
        allowed=frozenset({"store.models", "store.untrusted_json"}),
        allowed_exact=frozenset({"store"}),
    ),
    "ivr": Rule(
        "ivr must not know the dialogue's internals, NLU or the database; of channels it implements "
        "the interface (channels.base, channels.spec) and borrows no sibling channel's module",
        _all_but(*FOUNDATIONS, "ivr", "intents", "twiliohooks") | set(DRIVERS),
        allowed=frozenset({"channels.base", "channels.operations", "channels.spec", "store.models"}),
        allowed_exact=frozenset({"channels", "store"}),
    ),
    "nlu": Rule(
        "nlu only reads text: it must not know channels, the store, dialogue, backoffice or gateway; "
        "only Rasa's own interpreter imports rasa",
        _all_but(*FOUNDATIONS, "nlu", "supervisor", "intents") | {"rasa", *DRIVERS},
        exempt=frozenset({"nlu/rasa_components/", "nlu/rasa_launch.py"}),
    ),
    "dialogue": Rule(
        "dialogue must not know wire formats, MongoDB, Rasa's server or the gateway: it gets a parsed "
        "turn (nlu.result) and the message model (store.models), and acts through interfaces",
        frozenset(
            {
                "channels",
                "gateway",
                "ivr",
                "console",
                "quality",
                "downstream",
                "standins",
                "supervisor",
                "twiliohooks",
                "store",
                "nlu",
                "aiohttp",
                "rasa",
                *DRIVERS,
            }
        ),
        # The NLU's text-only modules; not its package surface, the client of Rasa's server or training.
        allowed=frozenset(
            {"store.models", "nlu.result", "nlu.normalize", "nlu.keywords", "nlu.entities", "nlu.embeddings"}
        ),
        allowed_exact=frozenset({"store"}),
    ),
    "backoffice": Rule(
        "backoffice must not know wire formats or NLU, nor the dialogue that hands work to it "
        "(dialogue → backoffice → outbox)",
        frozenset(
            {
                "channels",
                "nlu",
                "dialogue",
                "gateway",
                "ivr",
                "console",
                "quality",
                "standins",
                "twiliohooks",
                "aiohttp",
            }
        ),
    ),
    "shop": Rule(
        "shop must not know channels, NLU or dialogue, nor the layers that use it",
        frozenset(
            {
                "channels",
                "nlu",
                "dialogue",
                "backoffice",
                "gateway",
                "ivr",
                "console",
                "quality",
                "media_ocr",
                "standins",
                "twiliohooks",
            }
        ),
    ),
    "media_ocr": Rule(
        "media_ocr must not know channels, dialogue or tickets: it reads images and returns fields",
        frozenset({"channels", "dialogue", "backoffice", "gateway", "ivr", "console", "quality", "twiliohooks"}),
    ),
    "downstream": Rule(
        "downstream must not know after-sales requests, tickets, the dialogue or the channels",
        _all_but(*FOUNDATIONS, "downstream"),
    ),
    "console": Rule(
        "console must not know aiohttp (its HTTP side is gateway.console_*) or channels' wire formats",
        frozenset({"channels", "gateway", "ivr", "twiliohooks", "standins", "aiohttp"}),
    ),
    "quality": Rule(
        "quality must not know HTTP, channels' wire formats or the dialogue's wording",
        frozenset({"channels", "dialogue", "gateway", "ivr", "twiliohooks", "standins", "aiohttp"}),
    ),
    "standins": Rule(
        "standins must not know the gateway's internals, only wire formats (downstream's protocols)",
        _all_but(*FOUNDATIONS, "standins", "downstream", "supervisor"),
    ),
    "gateway": Rule("the composition root may wire every package", frozenset()),
}

GATEWAY_USERS = ("gateway", "run.py", "bench", "tests")
"""Only the composition root itself, the entry point, the benchmarks and the tests import gateway."""
OTHER_SOURCES = ("run.py", "bench", "scripts")


@dataclass(frozen=True)
class Import:
    path: str
    line: int
    module: str


@dataclass
class Violation:
    imp: Import
    why: str

    def __str__(self) -> str:
        return f"{self.imp.path}:{self.imp.line}: imports {self.imp.module} — {self.why}"


def _is_module(dotted: str, root: Path) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(source: str, path: str, root: Path = REPO) -> Iterator[Import]:
    """Every module ``source`` imports, anywhere in the file: ``from a import b`` counts as ``a.b``
    when ``b`` is a module of the repository, else as ``a``."""
    tree = ast.parse(source, path)
    package = Path(path).with_suffix("").parts
    package = package[:-1]  # a module's package; for __init__.py, the package itself
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                yield Import(path, node.lineno, candidate if _is_module(candidate, root) else module)


def _source_files(top: str) -> Iterator[Path]:
    where = REPO / top
    if where.is_file():
        yield where
        return
    for path in sorted(where.rglob("*.py")):
        if "node_modules" not in path.parts:
            yield path


def violations(top: str, rule: Rule) -> list[Violation]:
    found = []
    seen: set[Import] = set()
    for path in _source_files(top):
        relative = path.relative_to(REPO).as_posix()
        for imp in imports_of(path.read_text(encoding="utf-8"), relative):
            if imp.module.split(".")[0] == top:
                continue  # a package's own modules
            if rule.breaks(imp.module, relative) and imp not in seen:
                seen.add(imp)  # ``from a import b, c`` is one import of ``a``
                found.append(Violation(imp, rule.why))
    return found


def test_every_first_party_package_has_a_rule() -> None:
    """A new top-level package fails here until the README's table and this file say what it must not know."""
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}
    assert on_disk == set(RULES) == FIRST_PARTY, sorted(on_disk ^ set(RULES))


@pytest.mark.parametrize("top", sorted(RULES))
def test_package_imports_nothing_it_must_not_know(top: str) -> None:
    found = violations(top, RULES[top])
    assert not found, "\n".join(map(str, found))


def test_nothing_but_the_entry_points_and_tests_imports_the_gateway() -> None:
    rule = Rule("only run.py, bench/ and tests/ import the composition root", frozenset({"gateway"}))
    found = [
        v
        for top in [*sorted(FIRST_PARTY - {"gateway"}), *OTHER_SOURCES]
        if top not in GATEWAY_USERS
        for v in violations(top, rule)
    ]
    assert not found, "\n".join(map(str, found))


LIGHT_MODULES = {
    "channels.base": DRIVERS,
    "channels.spec": DRIVERS,
    "channels.rest": DRIVERS,
    "channels.app_im": DRIVERS,
    "channels.telegram": DRIVERS,
    "channels.wechat": DRIVERS,
    "channels.sms": DRIVERS,
    "channels.email": DRIVERS,
    "store.models": DRIVERS,
    "twiliohooks": DRIVERS,
    "errors": ("aiohttp", *DRIVERS),
    "ivr.channel": (*DRIVERS, "dialogue", "nlu", "backoffice", "shop", "gateway"),
    "nlu.result": (*DRIVERS, "dialogue", "store"),
}
"""Modules whose import must not load these packages at all, through any chain of imports."""

_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def loaded_by(module: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, module], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", sorted(LIGHT_MODULES))
def test_light_modules_do_not_pull_in_what_they_must_not_know(module: str) -> None:
    unwanted = sorted(set(LIGHT_MODULES[module]) & loaded_by(module))
    assert not unwanted, f"importing {module} loads {unwanted}"


# -- the checker can fail ------------------------------------------------------------------------


def test_a_synthetic_forbidden_import_is_found_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "dialogue").mkdir()
    (tmp_path / "dialogue" / "__init__.py").write_text("")
    source = "import os\n\n\ndef later() -> None:\n    from pymongo import MongoClient\n    import gateway.app\n"
    found = [
        Violation(imp, "")
        for imp in imports_of(source, "dialogue/leak.py", tmp_path)
        if RULES["dialogue"].breaks(imp.module, "dialogue/leak.py")
    ]
    assert [(v.imp.line, v.imp.module) for v in found] == [(5, "pymongo"), (6, "gateway.app")]
    assert str(found[0]).startswith("dialogue/leak.py:5: imports pymongo")


def test_relative_and_from_imports_resolve_to_the_module_named() -> None:
    source = "from . import sms\nfrom .base import InputChannel\nfrom store import models\nfrom store import Message\n"
    modules = [i.module for i in imports_of(source, "channels/x.py")]
    assert modules == ["channels.sms", "channels.base", "store.models", "store"]
    assert RULES["ivr"].breaks("channels.sms", "ivr/x.py")
    assert not RULES["ivr"].breaks("channels.base", "ivr/x.py")
    assert RULES["channels"].breaks("store.mongo", "channels/x.py")
    assert not RULES["channels"].breaks("store", "channels/x.py")
    assert RULES["nlu"].breaks("rasa.core", "nlu/client.py")
    assert not RULES["nlu"].breaks("rasa.core", "nlu/rasa_components/x.py")


def test_the_runtime_probe_sees_a_driver_pulled_in() -> None:
    assert "pymongo" in loaded_by("store.mongo")
