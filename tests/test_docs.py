"""The documentation stays readable and connected: a short README that points into docs/, and no
relative link (in README.md or docs/*.md) to a file or heading that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """The text without code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        anchor, n = base, 0
        while anchor in found:
            n += 1
            anchor = f"{base}-{n}"
        found.add(anchor)
    return found


def relative_links(path: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(path.read_text(encoding="utf-8")))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto: …
    ]


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into a docs/ page"


def test_the_readme_has_the_commands_the_architecture_and_an_index_of_docs() -> None:
    readme = README.read_text(encoding="utf-8")
    flow = "channel adapter ─► store ─► NLU ─► dialogue ─► backoffice ─► outbox ─► channel adapter"
    for needed in ("make run", "make test", "make setup", "| package | owns | must not know |", flow):
        assert needed in readme, needed
    linked = {target.split("#")[0] for target in relative_links(README)}
    missing = [page.name for page in sorted(DOCS.glob("*.md")) if f"docs/{page.name}" not in linked]
    assert not missing, f"docs pages the README's index does not link: {missing}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_existing_files_and_headings(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(f"{target}: no file {destination}")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.relative_to(REPO)}")
    assert not broken, "\n".join(broken)


def test_the_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[gone](missing.md) `[code](not-a-link.md)`\n\n```\n[x](nor-this.md)\n```\n"
                    "[here](#title) [web](https://example.com)\n", encoding="utf-8")  # fmt: skip
    assert relative_links(page) == ["missing.md", "#title"]
    assert anchors(page) == {"title"}
    assert slug("Several gateway processes (scale-out)") == "several-gateway-processes-scale-out"
    assert slug("What `make run` shows") == "what-make-run-shows"
