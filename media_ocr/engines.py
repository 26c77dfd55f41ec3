"""Text recognition engines behind one interface, and an engine that combines two.

Owns turning a prepared page into :class:`~media_ocr.model.TextLine` objects with a confidence
per character: :class:`TesseractEngine` (Tesseract 5 through pytesseract, ``chi_sim``),
:class:`RapidOcrEngine` (PP-OCRv4 detection and recognition on ONNX Runtime; the weights ship
inside the ``rapidocr-onnxruntime`` wheel, nothing is downloaded), and :class:`CombinedEngine`,
which reads with RapidOCR and asks Tesseract for a second opinion on every line RapidOCR is
unsure of, choosing per line by agreement and confidence.

Must not know about fields, orders or where images come from.
"""

from __future__ import annotations

import logging
import os
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import cv2
import numpy as np
import pytesseract
from numpy.typing import NDArray

from errors import Unavailable
from media_ocr.model import Box, TextLine
from media_ocr.preprocess import Gray, PreparedImage

log = logging.getLogger(__name__)

ENGINE_NAMES = ("combined", "rapidocr", "tesseract")

RestFilter = Callable[[list[TextLine], int], bool]
"""Given every line's beginning (``TextLine`` objects) and a line's index: is the rest of that
line worth reading? Lets an engine skip the long tails of addresses and footers."""


class EngineUnavailable(Unavailable, RuntimeError):
    """An engine's binary or model is missing (e.g. Tesseract or its chi_sim data not installed)."""

    code = "ocr_engine_unavailable"


class OcrEngine(ABC):
    """Reads text from a prepared page."""

    name: ClassVar[str]

    @abstractmethod
    def read_page(self, page: PreparedImage, needs_rest: RestFilter | None = None) -> list[TextLine]:
        """Every line (or table cell) of text on the page, top to bottom, left to right.

        With ``needs_rest``, an engine that can may read only the beginning of a long line
        unless ``needs_rest`` asks for the rest.
        """

    @abstractmethod
    def read_region(self, page: PreparedImage, box: Box) -> TextLine | None:
        """The text inside ``box`` read as one line, or None if there is none."""

    def second_opinions(self, page: PreparedImage, lines: list[TextLine]) -> None:
        """Have another engine re-read these lines (attached as ``second_opinion``); a single
        engine has no other opinion to give."""
        return None

    def warm_up(self) -> None:
        """Load models now rather than on the first page (a worker calls this at start)."""
        return None


def normalise_text(text: str) -> str:
    """Full-width forms to ASCII (NFKC), spaces dropped: what two readings are compared by."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def _crop(image: Gray, box: Box, pad: float = 4) -> Gray:
    height, width = image.shape
    x0, y0 = max(0, int(box.x0 - pad)), max(0, int(box.y0 - pad))
    x1, y1 = min(width, int(box.x1 + pad + 0.5)), min(height, int(box.y1 + pad + 0.5))
    return image[y0:y1, x0:x1]


# -- RapidOCR ------------------------------------------------------------------------------


class RapidOcrEngine(OcrEngine):
    """PP-OCRv4 (Chinese and English) through ``rapidocr-onnxruntime``.

    Uses the package's detector and its recogniser's ONNX session directly, decoding the CTC
    output itself so that every character gets a confidence, including the chance that a
    repeated character (``11``) was read once.
    """

    name = "rapidocr"

    min_ratio: ClassVar[float] = 1.0
    """Narrowest input (width ÷ height). The package pads every crop to 320 × 48, so a one-digit
    table cell cost as much as a long line; unpadded short crops read as well (measured) and
    cut recognition time by about a quarter on forms."""
    detection_scale: ClassVar[float] = 0.6
    """Pages arrive with ~30 px text; the detector finds lines as well at ~18 px, 3–4× faster."""

    def __init__(self, threads: int = 1) -> None:
        # One thread per engine measured fastest on a shared 2-core machine; run more
        # engines (processes) for throughput (OCR_THREADS, OCR_WORKERS).
        self.threads = threads
        self._ocr: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._engine()

    def _engine(self) -> Any:
        with self._lock:
            if self._ocr is None:
                from rapidocr_onnxruntime import RapidOCR  # slow import: only when used

                self._ocr = RapidOCR(
                    intra_op_num_threads=self.threads,
                    inter_op_num_threads=1,
                    use_cls=False,
                    print_verbose=False,
                    det_limit_type="max",
                    det_limit_side_len=2000,
                )
            return self._ocr

    head_ratio: ClassVar[float] = 4.5
    """With a :data:`RestFilter`, a line longer than twice this (× its height) is read in two
    parts: its beginning first (labels are there), the rest only if asked for."""

    def read_page(self, page: PreparedImage, needs_rest: RestFilter | None = None) -> list[TextLine]:
        ocr = self._engine()
        colour = cv2.cvtColor(page.gray, cv2.COLOR_GRAY2BGR)
        scale = self.detection_scale
        small = cv2.resize(colour, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        quads, _ = ocr.text_det(small)
        if quads is None or len(quads) == 0:
            return []
        # Boxes back to full size: the recogniser reads the sharper full-size crops.
        quads = ocr.sorted_boxes((np.asarray(quads) / scale).astype(np.float32))
        crops = ocr.get_crop_img_list(colour, quads)
        boxes = [
            Box(float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())) for q in quads
        ]
        cuts = [self._cut(crop) if needs_rest is not None else None for crop in crops]
        heads = self._recognise([crop if cut is None else crop[:, :cut] for crop, cut in zip(crops, cuts, strict=True)])
        lines = [
            TextLine(text, confidences, box if cut is None else box.slice(0, cut, crop.shape[1]), self.name, extent=box)
            for (text, confidences), box, crop, cut in zip(heads, boxes, crops, cuts, strict=True)
        ]
        if needs_rest is not None:
            wanted = [i for i, cut in enumerate(cuts) if cut is not None and needs_rest(lines, i)]
            tails = self._recognise([crops[i][:, cuts[i] :] for i in wanted])
            for i, (text, confidences) in zip(wanted, tails, strict=True):
                cut = cuts[i]
                assert cut is not None
                gap = (
                    " " if self._wide_gap(crops[i], cut) and text[:1].isascii() and lines[i].text[-1:].isascii() else ""
                )
                lines[i] = TextLine(
                    lines[i].text + gap + text,
                    lines[i].confidences + [1.0] * len(gap) + confidences,
                    boxes[i],
                    self.name,
                )
        return [line for line in lines if line.text.strip()]

    def _cut(self, crop: Gray) -> int | None:
        """Where to split a long line: the emptiest column near :attr:`head_ratio` heights."""
        height, width = crop.shape[:2]
        target = int(self.head_ratio * height)
        if width < 2 * target:
            return None
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
        darkest = gray.min(axis=0).astype(np.int32)  # per column: its darkest pixel (ink if any)
        low, high = int(0.8 * target), int(1.4 * target)
        window = darkest[low:high]
        # Prefer a blank column; among equals the one nearest the target.
        best = max(range(len(window)), key=lambda i: (window[i], -abs(low + i - target)))
        return low + best

    @staticmethod
    def _wide_gap(crop: Gray, cut: int) -> bool:
        """A blank run around the cut wider than a third of the line height: a word space."""
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
        blank = gray.min(axis=0) > 160
        left = cut
        while left > 0 and blank[left - 1]:
            left -= 1
        right = cut
        while right < len(blank) and blank[right]:
            right += 1
        return bool(right - left > crop.shape[0] / 3)

    def read_region(self, page: PreparedImage, box: Box) -> TextLine | None:
        crop = _crop(page.gray, box)
        if crop.size == 0:
            return None
        ((text, confidences),) = self._recognise([cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)])
        stripped = text.strip()
        if not stripped:
            return None
        start = text.index(stripped[0])
        return TextLine(stripped, confidences[start : start + len(stripped)], box, self.name)

    def _recognise(self, crops: list[Gray]) -> list[tuple[str, list[float]]]:
        recogniser = self._engine().text_rec
        characters: list[str] = recogniser.postprocess_op.character
        results: list[tuple[str, list[float]]] = []
        # One crop per run: batches are padded to their widest line, and on one CPU thread
        # batching saves nothing (measured: 40 % slower with the package's batches of 6).
        for crop in crops:
            ratio = max(self.min_ratio, crop.shape[1] / max(1, crop.shape[0]))
            batch = recogniser.resize_norm_img(crop, ratio)[np.newaxis].astype(np.float32)
            probabilities = recogniser.session(batch)[0]
            results.append(_ctc_decode(probabilities[0], characters))
        return results


def _ctc_decode(probabilities: NDArray[np.float32], characters: list[str]) -> tuple[str, list[float]]:
    """Greedy CTC decoding with one confidence per character.

    A character's confidence is its lowest probability over the time steps it covers, lowered
    by the highest blank probability strictly inside that run: a near-blank inside a run of
    ``1`` means the model nearly read ``11``.
    """
    best = probabilities.argmax(axis=1)
    text: list[str] = []
    confidences: list[float] = []
    step = 0
    steps = len(best)
    while step < steps:
        index = int(best[step])
        if index == 0:  # blank
            step += 1
            continue
        end = step
        while end + 1 < steps and int(best[end + 1]) == index:
            end += 1
        run = probabilities[step : end + 1, index]
        inside_blank = float(probabilities[step + 1 : end, 0].max()) if end - step >= 2 else 0.0
        confidence = float(run.min()) * (1.0 - inside_blank)
        character = characters[index] if index < len(characters) else ""
        if character:
            text.append(character)
            confidences.append(confidence)
        step = end + 1
    return "".join(text), confidences


# -- Tesseract -----------------------------------------------------------------------------


class TesseractEnvironment(Mapping[str, str]):
    """This process's environment as it is at each call, with OpenMP held to one thread: what
    pytesseract hands the tesseract process (its module-level ``environ``)."""

    OVERRIDES: ClassVar[dict[str, str]] = {"OMP_THREAD_LIMIT": "1"}

    def __getitem__(self, key: str) -> str:
        return self.OVERRIDES[key] if key in self.OVERRIDES else os.environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter({**os.environ, **self.OVERRIDES})

    def __len__(self) -> int:
        return len({**os.environ, **self.OVERRIDES})


class TesseractEngine(OcrEngine):
    """Tesseract 5 (``chi_sim`` by default) on the binarised page."""

    name = "tesseract"

    def __init__(self, languages: str = "chi_sim", page_mode: int = 4) -> None:
        self.languages = languages
        self.page_mode = page_mode
        # Tesseract's OpenMP threads fight over a busy CPU: one thread measured 1.5–2.5× faster
        # per run on this shared 2-core machine (parallelism comes from the worker pool). Only
        # tesseract's own environment says so: in this process the variable would reach
        # CTranslate2 too, whose int8 whisper decoder then answers every call with "))))))".
        pytesseract.pytesseract.environ = TesseractEnvironment()

    def warm_up(self) -> None:
        try:
            available = set(pytesseract.get_languages(config=""))
        except (pytesseract.TesseractNotFoundError, OSError) as exc:
            raise EngineUnavailable("tesseract is not installed (Debian: tesseract-ocr)") from exc
        missing = set(self.languages.split("+")) - available
        if missing:
            raise EngineUnavailable(f"tesseract language data missing: {', '.join(sorted(missing))}")

    def read_page(self, page: PreparedImage, needs_rest: RestFilter | None = None) -> list[TextLine]:
        # Tesseract reads the page in one go: nothing to gain from skipping tails.
        return self._read(page.binary, f"--psm {self.page_mode}", offset=(0.0, 0.0))

    def read_region(self, page: PreparedImage, box: Box) -> TextLine | None:
        crop = _crop(page.binary, box)
        if crop.size == 0:
            return None
        lines = self._read(_framed(crop), "--psm 7", offset=(box.x0 - 4 - _FRAME, box.y0 - 4 - _FRAME))
        if not lines:
            return None
        merged = lines[0]
        for line in lines[1:]:
            merged = _join(merged, line)
        return TextLine(merged.text, merged.confidences, box, self.name)

    def read_many(self, page: PreparedImage, boxes: list[Box]) -> list[TextLine | None]:
        """Each box read as one line, in a single Tesseract run (its start-up costs ~0.2 s)."""
        if not boxes:
            return []
        crops = [_crop(page.binary, box) for box in boxes]
        gap = 24
        width = max(c.shape[1] for c in crops) + 2 * gap
        height = sum(c.shape[0] + gap for c in crops) + gap
        sheet = np.full((height, width), 255, np.uint8)
        spans: list[tuple[int, int]] = []
        y = gap
        for crop in crops:
            sheet[y : y + crop.shape[0], gap : gap + crop.shape[1]] = crop
            spans.append((y, y + crop.shape[0]))
            y += crop.shape[0] + gap
        words = [word for word, _ in self._words(sheet, "--psm 6")]
        found: list[TextLine | None] = []
        for (top, bottom), box in zip(spans, boxes, strict=True):
            mine = [w for w in words if top - gap / 2 <= w.box.centre_y <= bottom + gap / 2]
            if not mine:
                found.append(None)
                continue
            mine.sort(key=lambda w: w.box.x0)
            line = mine[0]
            for word in mine[1:]:
                line = _join(line, word)
            found.append(TextLine(line.text, line.confidences, box, self.name))
        return found

    def _words(self, image: Gray, config: str) -> list[tuple[TextLine, tuple[int, int, int]]]:
        """Each word Tesseract found, with the (block, paragraph, line) it put it in."""
        try:
            data = pytesseract.image_to_data(
                image, lang=self.languages, config=config, output_type=pytesseract.Output.DICT
            )
        except pytesseract.TesseractNotFoundError as exc:
            raise EngineUnavailable("tesseract is not installed (Debian: tesseract-ocr)") from exc
        words: list[tuple[TextLine, tuple[int, int, int]]] = []
        for index, text in enumerate(data["text"]):
            text = text.strip()
            confidence = float(data["conf"][index])
            if not text or confidence < 0:
                continue
            box = Box(
                float(data["left"][index]),
                float(data["top"][index]),
                float(data["left"][index] + data["width"][index]),
                float(data["top"][index] + data["height"][index]),
            )
            # Tesseract scores words, not characters: every character gets its word's score.
            word = TextLine(text, [confidence / 100] * len(text), box, self.name)
            words.append((word, (data["block_num"][index], data["par_num"][index], data["line_num"][index])))
        return words

    def _read(self, image: Gray, config: str, offset: tuple[float, float]) -> list[TextLine]:
        lines: list[TextLine] = []
        current: TextLine | None = None
        current_key: tuple[int, int, int] | None = None
        for word, key in self._words(image, config):
            # A wide gap inside one Tesseract line separates table cells or label and value.
            gap_too_wide = current is not None and word.box.x0 - current.box.x1 > 1.5 * max(word.box.height, 10)
            if current is None or key != current_key or gap_too_wide:
                if current is not None:
                    lines.append(current)
                current, current_key = word, key
            else:
                current = _join(current, word)
        if current is not None:
            lines.append(current)
        dx, dy = offset
        return [
            TextLine(line.text, line.confidences, Box(b.x0 + dx, b.y0 + dy, b.x1 + dx, b.y1 + dy), line.engine)
            for line in lines
            for b in (line.box,)
        ]


_FRAME = 12


def _framed(crop: Gray) -> Gray:
    # Tesseract reads a line better with white space around it.
    return cv2.copyMakeBorder(crop, _FRAME, _FRAME, _FRAME, _FRAME, cv2.BORDER_CONSTANT, value=255)


def _join(left: TextLine, right: TextLine) -> TextLine:
    """Two words as one line; a space only between two Latin/digit words."""
    space = left.text[-1:].isascii() and right.text[:1].isascii()
    text = left.text + (" " if space else "") + right.text
    confidences = left.confidences + ([1.0] if space else []) + right.confidences
    return TextLine(text, confidences, left.box.union(right.box), left.engine)


# -- combined ------------------------------------------------------------------------------


class CombinedEngine(OcrEngine):
    """RapidOCR reads the page; Tesseract re-reads the lines holding doubtful fields.

    Where both read the same text the line is trusted more; where they differ the line keeps
    RapidOCR's reading with Tesseract's as ``second_opinion``: field extraction then chooses
    per field (by confidence, and by what the shop knows) and flags the field for review.
    """

    name = "combined"

    def __init__(self, primary: RapidOcrEngine | None = None, secondary: TesseractEngine | None = None) -> None:
        self.primary = primary or RapidOcrEngine()
        self.secondary = secondary or TesseractEngine()

    doubt_below: ClassVar[float] = 0.9
    """Lines whose weakest character is below this get a second opinion."""
    agreed_confidence: ClassVar[float] = 0.97
    """Two engines reading the same characters: that much trust at least."""

    def warm_up(self) -> None:
        self.primary.warm_up()
        self.secondary.warm_up()

    def read_page(self, page: PreparedImage, needs_rest: RestFilter | None = None) -> list[TextLine]:
        return self.primary.read_page(page, needs_rest)

    def second_opinions(self, page: PreparedImage, lines: list[TextLine]) -> None:
        """Tesseract re-reads the given lines in one run (the caller picks the doubtful ones
        that matter: re-reading every line would double the time per photo)."""
        opinions = self.secondary.read_many(page, [line.box for line in lines])
        for line, opinion in zip(lines, opinions, strict=True):
            self._weigh(line, opinion)

    def read_region(self, page: PreparedImage, box: Box) -> TextLine | None:
        line = self.primary.read_region(page, box)
        if line is None or line.confidence < self.doubt_below:
            opinion = self.secondary.read_region(page, box)
            if line is None:
                return opinion
            self._weigh(line, opinion)
        return line

    def _weigh(self, line: TextLine, opinion: TextLine | None) -> None:
        if opinion is None:
            return
        if normalise_text(opinion.text) == normalise_text(line.text):
            line.confidences = [max(c, self.agreed_confidence) for c in line.confidences]
        else:
            line.second_opinion = opinion


def make_engine(name: str, *, threads: int = 1) -> OcrEngine:
    """An engine by name: ``combined`` (default), ``rapidocr`` or ``tesseract``."""
    match name:
        case "combined":
            return CombinedEngine(RapidOcrEngine(threads))
        case "rapidocr":
            return RapidOcrEngine(threads)
        case "tesseract":
            return TesseractEngine()
    raise ValueError(f"unknown OCR engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
