"""The conversation stories (tests/stories/*.yml, written in customers' own style by someone who
had not read the dialogue code), run against the real NLU through the customer's channel.
A failing story prints its whole transcript."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import Gateway
from tests.stories_runner import STORIES as STORIES_DIR
from tests.stories_runner import StoryRun, load_stories

STORIES = load_stories()


def test_there_are_enough_stories_across_tasks_and_varieties() -> None:
    assert len(STORIES) >= 80
    tags = {tag for story in STORIES for tag in story.get("tags", [])}
    for variety in ("mandarin", "cantonese", "traditional", "english", "northeastern", "southwestern", "wu"):
        assert variety in tags, variety


def _case(story: dict[str, Any]) -> Any:
    """A story with a ``known_gap`` (what the bot still gets wrong, in words) is expected to fail
    until that is fixed; ``bench/dialogue.py`` counts it as failed."""
    gap = story.get("known_gap")
    marks = [pytest.mark.xfail(reason=f"known gap: {gap}", strict=False)] if gap else []
    return pytest.param(story, id=story["_where"], marks=marks)


def test_the_backlog_is_well_formed_and_kept_apart() -> None:
    """stories/backlog/ (run with STORIES_BACKLOG=1) validates like the rest and is not in the run."""
    kept = {t["_where"] for t in load_stories(backlog=False)}
    backlog = [s for s in load_stories(backlog=True) if s["_where"] not in kept]
    assert backlog, "no backlog stories found"
    backlog_files = {path.name for path in (STORIES_DIR / "backlog").glob("*.yml")}
    assert all(s["_where"].split("#")[0] in backlog_files for s in backlog)


def test_known_gaps_are_few_and_explained() -> None:
    gaps = [s for s in STORIES if s.get("known_gap")]
    assert len(gaps) <= len(STORIES) // 20, [s["_where"] for s in gaps]
    assert all(isinstance(s["known_gap"], str) and len(s["known_gap"]) > 20 for s in gaps)


@pytest.mark.parametrize("story", [_case(s) for s in STORIES])
async def test_story(story: dict[str, Any], client: TestClient[object, object], gateway: Gateway) -> None:
    await StoryRun(story, client, gateway).run()
