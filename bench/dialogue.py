"""The dialogue on the conversation stories (tests/stories/): how many stories pass, per task and
per variety, and what one dialogue turn costs.

Prints, in one run:
  1. stories passed, overall and per tag (tasks: return_refund, urge, withdraw_request …;
     varieties: mandarin, cantonese, traditional, english, northeastern, southwestern, wu), with
     the first problem of each failing story;
  2. the dialogue's own time per turn (``DialogueEngine.respond``): wall time, and CPU time of the
     process — which leaves out the NLU (parsed before the dialogue runs) and the store server
     (its own process), but keeps the store driver's encoding. Target: p95 ≤ 2 ms of CPU.

Each story runs against a database of its own on the embedded MongoDB server, through the real
Rasa server and the customer's channel, exactly as ``make test`` runs them.

    .venv/bin/python bench/dialogue.py [--only multiask] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialogue import DialogueEngine, TurnInput, TurnOutcome
from gateway import GatewayBuilder, Settings, build_app
from gateway.settings import GatewaySettings
from nlu import NluProject, RasaNluClient
from nlu.server import EmbeddedRasaServer
from nlu.understanding import UnderstandingClient
from store.embedded import EmbeddedMongo
from store.mongo import ConversationStore
from tests.helpers import CUSTOMER_TOKEN_SECRET
from tests.stories_runner import StoryError, StoryRun, load_stories

TURN_CPU_TARGET_MS = 2.0


class TurnClock:
    """Times every ``DialogueEngine.respond`` call (wall and process CPU)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.by_meaning: list[bool] = []
        """The turn asked the sentence-embedding model (an English product name matched by meaning)."""
        self._original = DialogueEngine.respond

    def install(self) -> None:
        original, clock = self._original, self

        async def respond(engine: DialogueEngine, turn_input: TurnInput) -> TurnOutcome:
            model = engine.context.embed
            calls = getattr(model, "calls", 0)
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return await original(engine, turn_input)
            finally:
                clock.cpu.append((time.process_time() - cpu) * 1000)
                clock.wall.append((time.perf_counter() - wall) * 1000)
                clock.by_meaning.append(getattr(model, "calls", 0) > calls)

        DialogueEngine.respond = respond  # type: ignore[method-assign]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))] if ordered else 0.0


async def run_story(story: dict[str, Any], mongo: EmbeddedMongo, nlu: UnderstandingClient, var: Path) -> str | None:
    """None when the story passes, else its first problem."""
    store = ConversationStore.from_uri(mongo.uri, database=f"bench_{uuid.uuid4().hex[:12]}")
    await store.ensure_indexes()
    settings = Settings(gateway=GatewaySettings(var_dir=var / uuid.uuid4().hex[:8])).with_channel(
        "rest", customer_token_secret=CUSTOMER_TOKEN_SECRET
    )
    gateway = GatewayBuilder(settings).store(store).nlu(nlu).build()
    try:
        async with TestClient(TestServer(build_app(gateway))) as http:
            await StoryRun(story, http, gateway).run()
        return None
    except StoryError as exc:
        return str(exc).split("\n")[1] if "\n" in str(exc) else str(exc)
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="run only the stories with this tag")
    parser.add_argument("--repeat", type=int, default=1, help="run the stories this many times (turn timing)")
    args = parser.parse_args()

    stories = [s for s in load_stories() if not args.only or args.only in s.get("tags", [])]
    clock = TurnClock()
    clock.install()
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        mongo = EmbeddedMongo(var / "mongo")
        await mongo.start()
        project = NluProject(var_dir=var / "rasa")
        print("training or loading the NLU model …", file=sys.stderr, flush=True)
        rasa = EmbeddedRasaServer(project, project.train(quiet=True))
        await rasa.start()
        nlu = UnderstandingClient(RasaNluClient(rasa.url, rasa.token, timeout=30))
        failures: dict[str, str] = {}
        passed: Counter[str] = Counter()
        total: Counter[str] = Counter()
        try:
            for round_ in range(args.repeat):
                for n, story in enumerate(stories, start=1):
                    print(f"\r  round {round_ + 1}: story {n}/{len(stories)}", end="", file=sys.stderr, flush=True)
                    problem = await run_story(story, mongo, nlu, var)
                    if round_ == 0:
                        tags = [*story.get("tags", []), "all"]
                        for tag in tags:
                            total[tag] += 1
                            passed[tag] += problem is None
                        if problem is not None:
                            failures[f"{story['_where']} {story['story']}"] = problem
            print(file=sys.stderr)
        finally:
            await nlu.close()
            await rasa.stop()
            await mongo.stop()

    print(f"\nConversation stories: {passed['all']}/{total['all']} passed ({passed['all'] / total['all']:.1%})")
    by_group: dict[str, list[str]] = defaultdict(list)
    varieties = {"mandarin", "cantonese", "traditional", "english", "northeastern", "southwestern", "wu", "mixed"}
    for tag in sorted(total, key=lambda t: (-total[t], t)):
        if tag != "all" and total[tag] >= 3:
            by_group["variety" if tag in varieties else "tag"].append(tag)
    for group in ("variety", "tag"):
        print(f"\n  per {group}:")
        for tag in by_group[group]:
            print(f"    {tag:<22} {passed[tag]:>3}/{total[tag]:<3} {passed[tag] / total[tag]:6.1%}")
    if failures:
        print("\n  failing:")
        for where, problem in failures.items():
            print(f"    {where}\n      {problem[:200]}")
    print(f"\nDialogue turn ({len(clock.cpu)} turns, DialogueEngine.respond):")
    print(f"  CPU  p50 {statistics.median(clock.cpu):.2f} ms  p95 {percentile(clock.cpu, 0.95):.2f} ms"
          f"  (target p95 ≤ {TURN_CPU_TARGET_MS:.0f} ms; NLU and store server excluded)")  # fmt: skip
    print(f"  wall p50 {statistics.median(clock.wall):.2f} ms  p95 {percentile(clock.wall, 0.95):.2f} ms"
          "  (includes the store's round trips)")  # fmt: skip
    plain = [c for c, meaning in zip(clock.cpu, clock.by_meaning, strict=True) if not meaning]
    meaning = [c for c, used in zip(clock.cpu, clock.by_meaning, strict=True) if used]
    print(f"  CPU of the {len(plain)} turns matched by words: p50 {statistics.median(plain or [0]):.2f} ms"
          f"  p95 {percentile(plain, 0.95):.2f} ms")  # fmt: skip
    if meaning:
        print(f"  CPU of the {len(meaning)} turns that asked the embedding model (an English name for a Chinese"
              f" product): p50 {statistics.median(meaning):.1f} ms  max {max(meaning):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
