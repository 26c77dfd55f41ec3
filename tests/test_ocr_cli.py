"""``run.py ocr``: the JSON contract, order checks against the store, errors in a batch."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from shop import MongoOrderService, Order
from store.embedded import EmbeddedMongo
from tests.ocr_support import png, sample
from tests.test_cli import clean_env, run_cli

CONTRACT = {"image", "document_type", "fields", "confidence", "needs_review", "review_reasons", "engine"}
FIELDS = {"order_id", "sku", "quantity", "reason", "customer_id", "return_date"}


async def test_json_output_is_one_contract_object_per_image_and_a_bad_file_does_not_stop_the_batch(
    tmp_path: Path,
) -> None:
    label, slip_file = tmp_path / "label.png", tmp_path / "slip.png"
    label.write_bytes(png("label", "photo"))
    slip_file.write_bytes(png("lines", "rotation"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    missing = tmp_path / "missing.png"

    code, out, err = await run_cli("ocr", str(label), str(broken), str(missing), str(slip_file), "--json")

    assert code == 1, err
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["image"] for r in results] == [str(label), str(slip_file)]
    for result, layout, damage in zip(results, ("label", "lines"), ("photo", "rotation"), strict=True):
        assert set(result) == CONTRACT
        assert set(result["fields"]) == FIELDS and set(result["confidence"]) == FIELDS
        assert result["engine"] == "combined"
        assert isinstance(result["needs_review"], bool) and isinstance(result["review_reasons"], list)
        # Without the shop's orders a field may be wrong, but then it is flagged.
        expected = sample(layout, damage).slip.expected_fields()  # type: ignore[arg-type]
        for name, value in result["fields"].items():
            flagged = any(reason.startswith(f"{name}:") for reason in result["review_reasons"])
            assert value == expected[name] or (flagged and result["needs_review"]), (name, value, result)
    assert f"error: {broken}:" in err and f"error: {missing}: No such file or directory" in err
    assert "error: 2 of 4 images could not be read" in err


async def test_order_check_validates_against_the_gateways_store(mongo: EmbeddedMongo, tmp_path: Path) -> None:
    document = sample("form", "clean")
    database = f"test_{uuid.uuid4().hex[:12]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.uri)
    try:
        orders = MongoOrderService(client[database])
        await orders.upsert([Order.model_validate(document.slip.order_document())])
        image = tmp_path / "form.png"
        image.write_bytes(document.png())
        other = tmp_path / "other.png"
        other.write_bytes(png("header_table"))  # its order is not in the shop
        env = clean_env(MONGODB_URI=mongo.uri, MONGODB_DATABASE=database)

        code, out, err = await run_cli(
            "ocr", str(image), str(other), "--json", "--order-check", "--engine", "rapidocr", env=env
        )
    finally:
        await client.drop_database(database)
        await client.close()

    assert code == 0, err
    checked, unknown = (json.loads(line) for line in out.splitlines())
    assert checked["engine"] == "rapidocr"
    assert checked["needs_review"] is False and checked["review_reasons"] == []
    order_id = sample("header_table").slip.order_id
    assert unknown["needs_review"] is True
    assert f"order_id: no order {order_id} in the shop" in unknown["review_reasons"]


async def test_plain_output_is_a_table_with_review_reasons(tmp_path: Path) -> None:
    image = tmp_path / "invoice.png"
    image.write_bytes(png("invoice"))
    code, out, err = await run_cli("ocr", str(image), "--engine", "rapidocr")
    assert code == 0, err
    assert out.startswith(f"{image}  [NEEDS REVIEW]  engine=rapidocr")
    assert "  - reason: not found on the photo" in out
