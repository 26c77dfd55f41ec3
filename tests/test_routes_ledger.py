"""The hash-chained ledger: appends chain, any change to the stored chain is detected."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from backoffice.ledger import GENESIS_HASH, HashChainLedger, canonical_json, entry_hash
from store.mongo import ConversationStore


@pytest.fixture
def ledger(store: ConversationStore) -> HashChainLedger:
    return HashChainLedger(store.db["ledger"], "carbon")


async def test_entries_chain_by_hash_and_verify(ledger: HashChainLedger) -> None:
    await ledger.ensure_indexes()
    first = await ledger.append({"transport_id": "v1", "co2_kg": 1.5})
    second = await ledger.append({"transport_id": "v2", "co2_kg": 2.25, "route": ["a", "b"]})
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert second.hash == entry_hash(
        "carbon", 2, first.hash, {"transport_id": "v2", "co2_kg": 2.25, "route": ["a", "b"]}
    )
    result = await ledger.verify()
    assert result.ok and result.entries == 2 and result.head == second.hash == await ledger.head()
    assert [e.record["transport_id"] for e in await ledger.entries(transport_id="v2")] == ["v2"]


async def test_a_changed_record_is_detected(ledger: HashChainLedger) -> None:
    for n in range(4):
        await ledger.append({"transport_id": f"v{n}", "co2_kg": float(n)})
    await ledger.collection.update_one({"chain": "carbon", "seq": 3}, {"$set": {"record.co2_kg": 0.5}})
    result = await ledger.verify()
    assert not result.ok and result.first_bad_seq == 3
    assert result.problem == "entry 3 was changed after it was written"


async def test_a_rewritten_hash_breaks_the_next_link(ledger: HashChainLedger) -> None:
    for n in range(3):
        await ledger.append({"n": n})
    # A forger who recomputes entry 2's hash after changing it still breaks entry 3's link.
    forged = {"n": 99}
    await ledger.collection.update_one(
        {"chain": "carbon", "seq": 2},
        {"$set": {"record": forged, "hash": entry_hash("carbon", 2, (await ledger.entries())[0].hash, forged)}},
    )
    result = await ledger.verify()
    assert not result.ok and result.first_bad_seq == 3 and "does not follow" in (result.problem or "")


async def test_a_deleted_entry_is_detected(ledger: HashChainLedger) -> None:
    for n in range(3):
        await ledger.append({"n": n})
    await ledger.collection.delete_one({"chain": "carbon", "seq": 2})
    result = await ledger.verify()
    assert not result.ok and result.first_bad_seq == 2 and "missing" in (result.problem or "")


async def test_concurrent_appends_keep_one_unbroken_chain(ledger: HashChainLedger) -> None:
    await asyncio.gather(*(ledger.append({"n": n}) for n in range(12)))
    entries = await ledger.entries()
    assert [e.seq for e in entries] == list(range(1, 13))
    assert sorted(e.record["n"] for e in entries) == list(range(12))
    assert (await ledger.verify()).ok


async def test_chains_are_separate_and_records_must_be_json(ledger: HashChainLedger) -> None:
    audit = HashChainLedger(ledger.collection, "audit")
    await ledger.append({"n": 1})
    await audit.append({"who": "agent-7"})
    assert (await audit.entries())[0].seq == 1
    assert (await ledger.verify()).ok and (await audit.verify()).ok
    with pytest.raises(TypeError):
        await ledger.append({"at": datetime.now(UTC)})
    assert canonical_json({"b": 1, "a": "退货"}) == '{"a":"退货","b":1}'.encode()
