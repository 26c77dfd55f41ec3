"""Recognition engines and whole-photo reading on synthetic, damaged documents."""

from __future__ import annotations

import socket
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rapidocr_onnxruntime

from media_ocr.engines import CombinedEngine, RapidOcrEngine, TesseractEngine, _ctc_decode, make_engine
from media_ocr.fields import FieldConfig
from media_ocr.model import TextLine
from media_ocr.pipeline import assess
from media_ocr.preprocess import prepare
from media_ocr.validation import OrderCheck, ReviewPolicy
from tests.ocr_support import InMemoryOrders, png, reader, sample


def right_fields(layout: str, damage: str, engine: str) -> tuple[int, dict[str, object]]:
    got = reader(engine).read(png(layout, damage))  # type: ignore[arg-type]
    expected = sample(layout, damage).slip.expected_fields()  # type: ignore[arg-type]
    values = {name: got.fields[name].value if name in got.fields else None for name in expected}
    return sum(values[name] == expected[name] for name in expected), values


def test_rapidocr_loads_its_weights_from_the_installed_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    models = Path(rapidocr_onnxruntime.__file__).parent / "models"
    assert (models / "ch_PP-OCRv4_det_infer.onnx").stat().st_size > 1_000_000
    assert (models / "ch_PP-OCRv4_rec_infer.onnx").stat().st_size > 1_000_000

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("OCR must not use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    engine = RapidOcrEngine()
    engine.warm_up()
    assert engine.read_page(prepare(png("lines")))


def test_rapidocr_reads_a_clean_slip_completely() -> None:
    right, values = right_fields("lines", "clean", "rapidocr")
    assert right == 6, values


def test_tesseract_reads_most_of_a_clean_slip() -> None:
    right, values = right_fields("lines", "clean", "tesseract")
    assert right >= 4, values  # Tesseract alone is the weaker engine (see bench/ocr.py)


def test_every_character_gets_a_confidence() -> None:
    lines = RapidOcrEngine().read_page(prepare(png("form")))
    assert lines and all(len(line.confidences) == len(line.text) for line in lines)
    assert all(0.0 <= c <= 1.0 for line in lines for c in line.confidences)


def test_a_near_blank_inside_a_repeated_digit_lowers_its_confidence() -> None:
    characters = ["blank", "1", "2"]
    steps = np.array(
        [
            [0.05, 0.95, 0.0],  # 1
            [0.40, 0.60, 0.0],  # still 1, but blank nearly won: maybe "11"
            [0.05, 0.95, 0.0],  # 1
            [0.90, 0.10, 0.0],  # blank
            [0.05, 0.00, 0.95],  # 2
        ],
        dtype=np.float32,
    )
    text, confidences = _ctc_decode(steps, characters)
    assert text == "12"
    assert confidences[0] < 0.4 and confidences[1] > 0.9


def test_the_combined_engine_asks_tesseract_about_doubtful_lines() -> None:
    page = prepare(png("lines"))
    engine = CombinedEngine()
    lines = engine.read_page(page)
    agreed = lines[1]
    doubted = TextLine("订单号：999", [0.5] * 7, agreed.box, "rapidocr")
    engine.second_opinions(page, [agreed, doubted])
    assert doubted.second_opinion is not None  # a different reading is kept beside it
    assert agreed.second_opinion is None or agreed.confidence >= CombinedEngine.agreed_confidence


def test_an_unknown_engine_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown OCR engine"):
        make_engine("easyocr")
    assert isinstance(make_engine("tesseract"), TesseractEngine)


@pytest.mark.parametrize(
    ("layout", "damage"),
    [("label", "photo"), ("form", "rotation"), ("header_table", "shadow"), ("invoice", "small"), ("lines", "blur")],
)
async def test_damaged_documents_are_read_and_checked_completely(layout: str, damage: str) -> None:
    document = sample(layout, damage)  # type: ignore[arg-type]
    got = reader("combined").read(png(layout, damage))  # type: ignore[arg-type]
    check = OrderCheck(InMemoryOrders(document.slip), today=lambda: date(2026, 11, 22))
    result = await assess(got, image=document.name, config=FieldConfig(), policy=ReviewPolicy(), check=check)
    assert result.fields == document.slip.expected_fields()
    # Only an invoice needs a human: it gives no return reason.
    assert result.review_reasons == (["reason: not found on the photo"] if layout == "invoice" else [])


def test_a_label_qr_code_confirms_the_order_number_and_fields_are_outlined_on_the_photo() -> None:
    got = reader("combined").read(png("label", "photo"))
    assert got.fields["order_id"].source == "text+barcode"
    assert {b.format for b in got.barcodes} >= {"QR Code", "Code 128"}
    height, width = np.array(sample("label", "photo").image).shape[:2]
    for outline in got.regions.values():
        assert all(-5 <= x <= width + 5 and -5 <= y <= height + 5 for x, y in outline)


def test_an_invoice_issue_date_is_not_a_return_date() -> None:
    got = reader("combined").read(png("invoice", "small"))
    assert "return_date" not in got.fields and "reason" not in got.fields


async def test_a_photo_without_text_is_sent_to_review() -> None:
    rng = np.random.default_rng(5)
    photo = (rng.normal(120, 30, (300, 400)).clip(0, 255)).astype(np.uint8)  # a damaged parcel, say
    got = reader("combined").read(__import__("cv2").imencode(".png", photo)[1].tobytes())
    result = await assess(got, image="parcel.png", config=FieldConfig(), policy=ReviewPolicy())
    assert result.needs_review
    assert set(result.review_reasons) >= {"order_id: not found on the photo", "sku: not found on the photo"}


def test_tesseracts_one_thread_limit_stays_in_tesseracts_environment() -> None:
    """OMP_THREAD_LIMIT=1 in the gateway's own environment made CTranslate2's whisper decoder,
    loaded in the same process (and in every CLI it starts), answer phone calls with '))))))'."""
    import os

    import pytesseract

    before = os.environ.get("OMP_THREAD_LIMIT")
    TesseractEngine()
    assert os.environ.get("OMP_THREAD_LIMIT") == before
    handed = dict(pytesseract.pytesseract.environ.items())
    assert handed["OMP_THREAD_LIMIT"] == "1" and handed["PATH"] == os.environ["PATH"]
