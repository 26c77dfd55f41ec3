"""The conversation stories (tests/stories/*.yml, written in customers' own style by someone who
had not read the dialogue code), run against the real NLU through the customer's channel.
A failing story prints its whole transcript."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import Gateway
from tests.stories_runner import StoryRun, load_stories

STORIES = load_stories()


def test_there_are_enough_stories_across_tasks_and_varieties() -> None:
    assert len(STORIES) >= 80
    tags = {tag for story in STORIES for tag in story.get("tags", [])}
    for variety in ("mandarin", "cantonese", "traditional", "english", "northeastern", "southwestern", "wu"):
        assert variety in tags, variety


@pytest.mark.parametrize("story", STORIES, ids=lambda s: s["_where"])
async def test_story(story: dict[str, Any], client: TestClient[object, object], gateway: Gateway) -> None:
    await StoryRun(story, client, gateway).run()
