"""Every pattern over outside text survives adversarial input: long runs of each character the
pattern names (and of digits, letters, CJK, spaces, punctuation), alone, followed by a character
that breaks a match, and alternating in pairs — the shapes that make backtracking engines blow up
(the bare-address pattern took 450 s on 1,000 × 市). Each call must finish well inside the
per-call bound; a pattern that times out fails here, naming itself."""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from pathlib import Path

import pytest

import textpatterns
from textpatterns import REGISTRY, Pattern, PatternTimeout

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("nlu", "dialogue", "channels", "backoffice", "media_ocr", "gateway", "ivr", "store", "shop", "console",
            "quality")  # fmt: skip
RUN = 4000  # the longest message a channel accepts
ADVERSARIAL_BOUND_SECONDS = 0.2
"""Generous on a loaded 2-core machine; the catastrophic patterns this guards against took seconds to hours."""

BASE_ALPHABET = "市区省路号1a 。,-.去吗\n@x"


def _import_everything() -> None:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)


_import_everything()


_META = re.compile(r"\\[a-zA-Z]|[\\()\[\]{}|?*+^$.]")


def _alphabet(pattern: Pattern) -> list[str]:
    named = [ch for ch in pattern.pattern if ch.isprintable() and ch not in "\\()[]{}|?*+^$"]
    return list(dict.fromkeys([*BASE_ALPHABET, *named]))[:80]


def _fragments(pattern: Pattern) -> list[str]:
    """The pattern's literal words ("blockquote", "原始邮件", "wrote:"), which repeated make the
    engine enter its alternatives over and over."""
    pieces = _META.split(pattern.pattern)
    return list(dict.fromkeys(p for p in pieces if len(p) >= 2))[:40]


def _inputs(pattern: Pattern) -> list[str]:
    alphabet = _alphabet(pattern)
    inputs: list[str] = []
    for ch in alphabet:
        inputs += [ch * RUN, ch * (RUN - 1) + "\x01", "\x01" + ch * (RUN - 1)]
    for first, second in zip(alphabet, alphabet[1:] + alphabet[:1], strict=True):
        inputs.append((first + second) * (RUN // 2))
    for fragment in _fragments(pattern):
        inputs += [fragment * (RUN // len(fragment)), (fragment + " ") * (RUN // (len(fragment) + 1))]
        inputs += [("<" + fragment) * (RUN // (len(fragment) + 1)), (fragment + "1") * (RUN // (len(fragment) + 1))]
    return inputs


def _patterns() -> list[Pattern]:
    return list(REGISTRY.values())


def test_every_module_with_outside_text_compiles_its_patterns_here() -> None:
    """No module reading outside text matches it with the stdlib's unbounded engine."""
    allowed = {
        "nlu/evaluation.py",  # the project's own test files
        "nlu/rasa_yaml.py",  # the project's own training data
        "channels/email.py",  # one bytes pattern over the IMAP server's SEARCH answer
        "backoffice/routing/vrplib.py",  # operators' instance files
        "backoffice/routing/cli.py",
        "backoffice/routing/plot.py",
        "backoffice/config.py",
    }
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative in allowed:
                continue
            source = path.read_text(encoding="utf-8")
            if "\nimport re\n" in source or "\nfrom re import" in source:
                offenders.append(relative)
    assert offenders == [], f"use textpatterns.compile, not the re module, for outside text: {offenders}"


def test_the_registry_holds_the_patterns_of_every_reader() -> None:
    assert len(REGISTRY) > 100


@pytest.mark.parametrize("pattern", _patterns(), ids=lambda p: p.pattern[:50])
def test_no_pattern_backtracks_catastrophically(pattern: Pattern) -> None:
    slowest = 0.0
    worst = ""
    for text in _inputs(pattern):
        started = time.perf_counter()
        try:
            with textpatterns.deadline(ADVERSARIAL_BOUND_SECONDS * 5):
                pattern.search(text)
                list(pattern.finditer(text))
                pattern.sub("", text)
                pattern.fullmatch(text)
        except PatternTimeout:
            pytest.fail(f"{pattern!r} timed out on {text[:12]!r}… ({len(text)} characters)")
        took = time.perf_counter() - started
        if took > slowest:
            slowest, worst = took, text[:12]
    assert slowest < ADVERSARIAL_BOUND_SECONDS, f"{pattern!r} took {slowest * 1000:.0f} ms on {worst!r}…"


def test_a_timeout_is_an_error_of_the_project() -> None:
    slow = textpatterns.compile(r"(?:a|a)+$")
    with pytest.raises(PatternTimeout), textpatterns.deadline(0.05):
        slow.search("a" * 40 + "b")
    del REGISTRY[(r"(?:a|a)+$", 0)]  # a deliberately bad pattern must not join the adversarial run
