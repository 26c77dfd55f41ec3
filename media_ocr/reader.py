"""Reading one photo: preprocessing, recognition, barcodes and field extraction in order.

Owns the synchronous, CPU-bound part of OCR (:class:`PhotoReader`), which runs in a worker
process or thread, and the :class:`Reading` it returns. Checking the fields against the shop
and deciding whether a human must look happen afterwards (:mod:`media_ocr.validation`).

Must not know about the store, the shop, channels or HTTP.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from media_ocr.barcodes import read_barcodes
from media_ocr.documents import Classification, classify
from media_ocr.engines import OcrEngine, make_engine
from media_ocr.fields import Extraction, FieldConfig, FieldExtractor
from media_ocr.invoice import InvoiceExtractor
from media_ocr.model import Barcode, Box, DocumentType, FieldReading, TextLine
from media_ocr.preprocess import PreparedImage, prepare, to_original
from media_ocr.waybill import WaybillExtractor

log = logging.getLogger(__name__)

SECOND_OPINION_BELOW = 0.9
"""Fields read with less confidence than this get a second engine's reading of their line."""
GARBLED_BELOW = 0.6
"""Short lines without a label read with less confidence than this get a second reading too."""


@dataclass(slots=True)
class Reading:
    """Everything read from one photo, before it is checked against the shop."""

    fields: dict[str, FieldReading]
    engine: str
    document_type: DocumentType = "return_slip"
    document_cues: list[str] = field(default_factory=list)
    lines: list[TextLine] = field(default_factory=list)
    barcodes: list[Barcode] = field(default_factory=list)
    regions: dict[str, list[list[float]]] = field(default_factory=dict)
    """Each field's outline on the original photo, for highlighting it for a reviewer."""
    line_outlines: list[tuple[str, list[list[float]]]] = field(default_factory=list)
    """Each line's text and outline on the original photo (to blur personal data on it)."""
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)


class PhotoReader:
    """Reads return slips, courier waybills and VAT invoices; one instance per worker (engines
    hold models). The document's type is told from the beginnings of its lines, before the rest
    of long lines is read: a slip's addresses and footers are skipped, a waybill's and an
    invoice's lines are read whole (their addresses and names are fields)."""

    def __init__(self, engine: OcrEngine | str = "combined", config: FieldConfig | None = None) -> None:
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        self.extractor = FieldExtractor(config)
        self.invoices = InvoiceExtractor()
        self.waybills = WaybillExtractor()

    def _extract(self, document_type: DocumentType, lines: list[TextLine], barcodes: list[Barcode]) -> Extraction:
        if document_type == "vat_invoice":
            return self.invoices.extract(lines, barcodes)
        if document_type == "waybill":
            return self.waybills.extract(lines, barcodes)
        return self.extractor.extract(lines, barcodes)

    def warm_up(self) -> None:
        self.engine.warm_up()

    def read(self, data: bytes) -> Reading:
        """Read one image file's bytes; raises :class:`~media_ocr.preprocess.UnreadableImage`."""
        started = time.perf_counter()
        page = prepare(data)
        timings = {f"preprocess.{name}": seconds for name, seconds in page.steps.items()}

        clock = time.perf_counter()
        barcodes = read_barcodes(page.original)
        timings["barcodes"] = time.perf_counter() - clock

        clock = time.perf_counter()
        told: list[Classification] = []

        def needs_rest(heads: list[TextLine], index: int) -> bool:
            if not told:
                told.append(classify(heads, barcodes))
            if told[0].document_type != "return_slip":
                return True
            return self.extractor.may_hold_field(heads, index)

        lines = self.engine.read_page(page, needs_rest)
        timings["recognise"] = time.perf_counter() - clock

        clock = time.perf_counter()
        kind = classify(lines, barcodes)
        timings["classify"] = time.perf_counter() - clock
        clock = time.perf_counter()
        extraction = self._extract(kind.document_type, lines, barcodes)
        # Doubtful values: another engine re-reads just their lines, then extract again.
        doubtful = {
            found.line
            for found in extraction.readings.values()
            if found.line is not None and found.confidence < SECOND_OPINION_BELOW
        }
        # Badly read short lines of a slip may be labels (a header cell): let the other engine try them.
        doubtful |= {
            index
            for index, line in enumerate(lines)
            if kind.document_type == "return_slip"
            and line.confidence < GARBLED_BELOW
            and len(line.text) <= 6
            and not self.extractor.labels.find(line.text)
        }
        doubtful = {index for index in doubtful if lines[index].second_opinion is None}
        if doubtful:
            clock_opinions = time.perf_counter()
            self.engine.second_opinions(page, [lines[index] for index in sorted(doubtful)])
            timings["second_opinions"] = time.perf_counter() - clock_opinions
            extraction = self._extract(kind.document_type, lines, barcodes)
        # A label whose value could not be read: read just that region again.
        for name, region in list(extraction.retry.items()):
            line = self.engine.read_region(page, region)
            if line is not None:
                self.extractor.reread(extraction, name, line)
        timings["extract"] = time.perf_counter() - clock
        timings["total"] = time.perf_counter() - started

        reading = Reading(
            fields=extraction.readings,
            engine=self.engine.name,
            document_type=kind.document_type,
            document_cues=kind.cues,
            lines=lines,
            barcodes=barcodes,
            timings=timings,
            notes=dict(page.notes),
        )
        reading.regions = _regions(reading, page)
        reading.line_outlines = [(line.text, outline(line.extent or line.box, page)) for line in lines]
        return reading


def _regions(reading: Reading, page: PreparedImage) -> dict[str, list[list[float]]]:
    regions: dict[str, list[list[float]]] = {}
    for name, found in reading.fields.items():
        if found.box is not None and found.source != "barcode":
            regions[name] = outline(found.box, page)
        elif found.source == "barcode":
            code = next((b for b in reading.barcodes if str(found.value) in b.text), None)
            if code is not None and code.box is not None:
                box = code.box  # barcodes are found on the original photo already
                regions[name] = [[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]]
    return regions


def outline(box: Box, page: PreparedImage) -> list[list[float]]:
    """A box on the prepared page as four corner points on the original photo."""
    corners = np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]], dtype=np.float64)
    return [[round(float(x), 1), round(float(y), 1)] for x, y in to_original(page.transform, corners)]
