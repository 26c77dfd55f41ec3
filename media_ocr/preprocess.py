"""Image preprocessing for photographed documents, one named step per function.

Owns turning a phone photo into images a recogniser reads well: decoding, grayscale, finding the
sheet and warping it flat (perspective correction and cropping to the document), deskewing,
scaling text to a size the recognisers like, flattening uneven light (shadows, low contrast),
denoising, sharpening and adaptive binarisation. Every step is a plain function from an image
to an image (or a measurement), so each can be tested and timed on its own;
:func:`prepare` runs them in order and records how long each took and what it decided.

Must not know about recognition engines, fields or orders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import cv2
import numpy as np
from numpy.typing import NDArray

from errors import UserError

Gray: TypeAlias = NDArray[np.integer[Any] | np.floating[Any]]
"""A single-channel 8-bit image (height × width); typed as OpenCV's stubs type what they return."""
Quad: TypeAlias = NDArray[np.float32]
"""Four corner points, shape (4, 2): top-left, top-right, bottom-right, bottom-left."""

TARGET_TEXT_HEIGHT = 30
"""Median character height (px) the recognisers are fed: small text is enlarged, big text shrunk."""
MAX_SIDE = 1800
"""Longest side after scaling; keeps detection time bounded on big photos."""


class UnreadableImage(UserError):
    """The bytes are not an image OpenCV can decode."""

    code = "unreadable_image"


@dataclass(slots=True)
class PreparedImage:
    """The outputs of :func:`prepare`: a normalised grayscale page and its binarised twin."""

    gray: Gray
    """Flat, deskewed, evenly lit, denoised grayscale: what neural recognisers read best."""
    binary: Gray
    """Black text (0) on white (255): what Tesseract reads best."""
    original: Gray
    """The decoded photo in grayscale, untouched (barcodes are read from it too)."""
    transform: NDArray[np.float64] = field(default_factory=lambda: np.eye(3))
    """3×3 matrix taking original-photo pixels to prepared-page pixels (for drawing on the photo)."""
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds spent in each step, in order."""
    notes: dict[str, object] = field(default_factory=dict)
    """What the steps decided (skew angle, scale, whether a sheet was found …)."""


# -- decoding ------------------------------------------------------------------------------


def decode(data: bytes) -> Gray:
    """Decode image bytes (PNG, JPEG, WebP, BMP, TIFF …) to a BGR or grayscale array."""
    if not data:
        raise UnreadableImage("empty file")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise UnreadableImage("not an image (or a format OpenCV cannot read)")
    return np.asarray(image, dtype=np.uint8) if image.dtype == np.uint8 else _to_uint8(image)


def _to_uint8(image: Gray) -> Gray:
    # 16-bit PNG/TIFF: scale to 8 bits.
    return cv2.convertScaleAbs(image, alpha=255.0 / max(1.0, float(np.max(image))))


def grayscale(image: Gray) -> Gray:
    """One channel; transparent areas become white (paper), not black."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255
        image = (image[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


# -- geometry ------------------------------------------------------------------------------


def find_document(gray: Gray) -> Quad | None:
    """Corners of a bright sheet lying on a darker background, or None if there is none.

    The sheet's outline is the largest four-cornered edge contour whose inside is clearly
    brighter than its outside (so a table printed on a white page is not taken for the page).
    None also when the sheet fills the picture (a scan or a close crop): nothing to correct.
    """
    scale = min(1.0, 600 / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    blurred = cv2.GaussianBlur(small, (7, 7), 0)
    # Edges rather than a global threshold: a shadow across the sheet breaks any threshold.
    edges = cv2.dilate(cv2.Canny(blurred, 30, 90), np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:3]:
        hull = cv2.convexHull(contour)
        approx = cv2.approxPolyDP(hull, 0.03 * cv2.arcLength(hull, True), True)
        if len(approx) != 4 or cv2.contourArea(approx) < 0.2 * small.size:
            continue
        corners = order_corners(approx.reshape(4, 2).astype(np.float32))
        if _is_sheet(blurred, corners):
            on_photo: Quad = np.asarray(corners / scale, dtype=np.float32)
            return on_photo
    return None


def _is_sheet(gray: Gray, corners: Quad) -> bool:
    """Roughly rectangular, not the whole picture, and brighter inside than outside."""
    for index in range(4):
        before, here, after = corners[index - 1], corners[index], corners[(index + 1) % 4]
        first, second = before - here, after - here
        cosine = float(np.dot(first, second) / (np.linalg.norm(first) * np.linalg.norm(second) + 1e-6))
        if abs(cosine) > 0.5:  # a corner outside 60°–120°
            return False
    mask = np.zeros(gray.shape, np.uint8)
    cv2.fillConvexPoly(mask, corners.astype(np.int32), 255)
    inside = cv2.erode(mask, np.ones((9, 9), np.uint8))
    outside = cv2.erode(255 - mask, np.ones((9, 9), np.uint8))
    if cv2.countNonZero(outside) < 0.03 * gray.size:
        return False
    return float(cv2.mean(gray, inside)[0]) - float(cv2.mean(gray, outside)[0]) > 25


def order_corners(points: NDArray[np.float32]) -> Quad:
    """Sort four points as top-left, top-right, bottom-right, bottom-left."""
    total = points.sum(axis=1)
    diff = np.diff(points, axis=1).ravel()
    return np.array(
        [points[np.argmin(total)], points[np.argmin(diff)], points[np.argmax(total)], points[np.argmax(diff)]],
        dtype=np.float32,
    )


def perspective_matrix(corners: Quad) -> tuple[NDArray[np.float64], tuple[int, int]]:
    """The homography taking ``corners`` to an upright rectangle of their own size, and that size."""
    top_left, top_right, bottom_right, bottom_left = corners
    width = int(max(np.linalg.norm(top_right - top_left), np.linalg.norm(bottom_right - bottom_left)))
    height = int(max(np.linalg.norm(bottom_left - top_left), np.linalg.norm(bottom_right - top_right)))
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32)
    return cv2.getPerspectiveTransform(corners, target).astype(np.float64), (width, height)


def correct_perspective(gray: Gray, corners: Quad) -> Gray:
    """Warp the quadrilateral ``corners`` to an upright rectangle of its own size."""
    matrix, size = perspective_matrix(corners)
    return cv2.warpPerspective(gray, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def text_mask(gray: Gray) -> Gray:
    """255 where there is ink (dark on light), found locally so shadows do not matter."""
    block = _odd(max(15, min(gray.shape) // 20))
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)


def text_lines(gray: Gray) -> list[tuple[float, float, float]]:
    """(slope in degrees counter-clockwise, length px, thickness px) of each text line found.

    Characters are smeared sideways into one blob per line; long thin blobs are lines.
    """
    scale = min(1.0, 1000 / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    mask = cv2.morphologyEx(text_mask(small), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    mask = cv2.bitwise_and(mask, cv2.bitwise_not(rules_of(mask)))  # table rules would join the lines
    smear = max(9, int(small.shape[1] / 40))
    blobs = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (smear, 3)))
    contours, _ = cv2.findContours(blobs, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found: list[tuple[float, float, float]] = []
    for contour in contours:
        (_, _), (w, h), angle = cv2.minAreaRect(contour)
        long_side, short_side = max(w, h), min(w, h)
        if long_side < small.shape[1] / 12 or short_side < 3 or long_side < 4 * short_side:
            continue
        # OpenCV 3/4/5 disagree on minAreaRect's angle range: fold to the line's slope.
        slope = angle if w >= h else angle - 90
        slope = (slope + 45) % 90 - 45
        found.append((-slope, long_side / scale, short_side / scale))
    return found


def _weighted_median(values: list[float], weights: list[float]) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(np.array(weights)[order])
    return float(np.array(values)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def estimate_skew(gray: Gray) -> float:
    """The angle (degrees, counter-clockwise positive) the text lines are turned by; 0 if unsure."""
    lines = text_lines(gray)
    if len(lines) < 2:
        return 0.0
    median = _weighted_median([slope for slope, _, _ in lines], [length for _, length, _ in lines])
    return median if abs(median) <= 30 else 0.0


def rotation_matrix(shape: tuple[int, ...], degrees: float) -> tuple[NDArray[np.float64], tuple[int, int]]:
    """The affine turn by ``degrees`` (counter-clockwise) about the centre, moved so nothing is
    cut off, and the canvas size that needs."""
    height, width = shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width, new_height = int(height * sin + width * cos + 0.5), int(height * cos + width * sin + 0.5)
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    return matrix.astype(np.float64), (new_width, new_height)


def rotate(gray: Gray, degrees: float) -> Gray:
    """Turn by ``degrees`` counter-clockwise, growing the canvas so nothing is cut off."""
    if abs(degrees) < 0.05:
        return gray
    matrix, (new_width, new_height) = rotation_matrix(gray.shape, degrees)
    paper = int(np.percentile(gray, 90))  # fill the new corners with paper, not smeared edges
    return cv2.warpAffine(gray, matrix, (new_width, new_height), flags=cv2.INTER_CUBIC, borderValue=paper)


def deskew(gray: Gray) -> tuple[Gray, float]:
    """The image with its text lines made horizontal, and the angle corrected."""
    angle = estimate_skew(gray)
    return rotate(gray, -angle), angle


def content_bounds(gray: Gray, margin: int = 16) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around the ink plus a margin; the whole page if unsure."""
    height, width = gray.shape
    # Thicken strokes so small text survives, then ignore specks: they are not content.
    ink = cv2.dilate(text_mask(gray), np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    keep = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= 30]
    if not keep:
        return 0, 0, width, height
    x0 = min(int(stats[i, cv2.CC_STAT_LEFT]) for i in keep)
    y0 = min(int(stats[i, cv2.CC_STAT_TOP]) for i in keep)
    x1 = max(int(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH]) for i in keep)
    y1 = max(int(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT]) for i in keep)
    if (x1 - x0) * (y1 - y0) < 0.05 * gray.size:
        return 0, 0, width, height
    return max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)


def crop_to_content(gray: Gray, margin: int = 16) -> Gray:
    """Cut away empty border around the ink (keeps a margin)."""
    x0, y0, x1, y1 = content_bounds(gray, margin)
    return gray[y0:y1, x0:x1]


# -- size and light ------------------------------------------------------------------------


def estimate_text_height(gray: Gray) -> float | None:
    """Typical height (px) of a line of text (about the character height), None if no lines."""
    lines = text_lines(gray)
    if len(lines) < 2:
        return None
    return _weighted_median([thickness for _, _, thickness in lines], [length for _, length, _ in lines])


def normalise_scale(gray: Gray, text_height: float | None) -> tuple[Gray, float]:
    """Scale so characters are about :data:`TARGET_TEXT_HEIGHT` px tall (bounded by :data:`MAX_SIDE`)."""
    factor = 1.0 if text_height is None else TARGET_TEXT_HEIGHT / text_height
    factor = max(0.35, min(factor, 3.0, MAX_SIDE / max(gray.shape)))
    if abs(factor - 1.0) < 0.1:
        return gray, 1.0
    interpolation = cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA
    return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=interpolation), factor


def flatten_illumination(gray: Gray) -> Gray:
    """Divide by the estimated paper brightness: removes shadows and gradients, whitens paper."""
    height, width = gray.shape
    small = cv2.resize(gray, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA)
    # Paper is the bright majority: a max filter wipes the text out, a median smooths what is left.
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9))
    background = cv2.medianBlur(cv2.dilate(small, kernel), 15)
    background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
    flat = gray.astype(np.float32) / np.maximum(background.astype(np.float32), 1.0) * 255
    return np.clip(flat, 0, 255).astype(np.uint8)


def stretch_contrast(gray: Gray, low_percentile: float = 1.0, high_percentile: float = 99.0) -> Gray:
    """Map the darkest ink to black and the paper to white."""
    low, high = np.percentile(gray, (low_percentile, high_percentile))
    if high - low < 8:
        return gray
    lut = np.clip((np.arange(256, dtype=np.float32) - low) * 255 / (high - low), 0, 255).astype(np.uint8)
    return cv2.LUT(gray, lut)


def estimate_noise(gray: Gray) -> float:
    """Standard deviation of pixel noise (Immerkær's fast estimator)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    response = cv2.filter2D(gray.astype(np.float32), -1, kernel)
    height, width = gray.shape
    return float(np.sum(np.abs(response)) * math.sqrt(math.pi / 2) / (6 * max(1, (width - 2) * (height - 2))))


def denoise(gray: Gray, strength: float) -> Gray:
    """Median filter for specks, then non-local means scaled to the measured noise."""
    cleaned = cv2.medianBlur(gray, 3)
    if strength >= 12:
        cleaned = cv2.fastNlMeansDenoising(
            cleaned, None, h=min(25.0, strength * 0.6), templateWindowSize=7, searchWindowSize=15
        )
    return cleaned


def sharpness(gray: Gray) -> float:
    """Variance of the Laplacian: low for blurred images."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def sharpen(gray: Gray, amount: float = 1.0, sigma: float = 1.5) -> Gray:
    """Unsharp mask: add back the difference to a blurred copy."""
    blurred = cv2.GaussianBlur(gray, (0, 0), sigma)
    return cv2.addWeighted(gray, 1 + amount, blurred, -amount, 0)


def binarise(gray: Gray) -> Gray:
    """Adaptive (local mean) threshold: black text on white, robust to what light is left."""
    block = _odd(max(21, int(TARGET_TEXT_HEIGHT * 1.5)))
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, 12)


def rules_of(ink: Gray) -> Gray:
    """The long horizontal and vertical lines (table rules, borders) in an ink mask (ink = 255)."""
    height, width = ink.shape
    across = cv2.getStructuringElement(cv2.MORPH_RECT, (max(40, width // 15), 1))
    down = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(40, height // 10)))
    rules = cv2.bitwise_or(cv2.morphologyEx(ink, cv2.MORPH_OPEN, across), cv2.morphologyEx(ink, cv2.MORPH_OPEN, down))
    return cv2.dilate(rules, np.ones((3, 3), np.uint8))


def remove_rules(binary: Gray) -> Gray:
    """Erase table rules and borders (they confuse Tesseract's line finder)."""
    return cv2.bitwise_or(binary, rules_of(255 - binary))


def _odd(value: int) -> int:
    return value if value % 2 else value + 1


# -- the whole preparation -----------------------------------------------------------------

NOISY = 7.0
"""Noise σ above which :func:`denoise` runs (clean renders and good photos measure 1–4)."""
BLURRY = 400.0
"""Laplacian variance (at the normalised scale) below which :func:`sharpen` runs."""


def prepare(data: bytes | Gray) -> PreparedImage:
    """Run every step in order, timing each; the decisions are in ``notes``.

    Geometry first (sheet, noise, skew, crop, scale: each remembered in ``transform``), then
    light (shadows, contrast, blur), then the binarised copy for Tesseract.
    """
    steps: dict[str, float] = {}
    notes: dict[str, object] = {}

    def timed(name: str, step: Callable[[], Gray]) -> Gray:
        started = time.perf_counter()
        result = step()
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - started
        return result

    original = timed("grayscale", lambda: grayscale(decode(data))) if isinstance(data, bytes) else data
    transform = np.eye(3)
    page = original

    def flatten_sheet() -> Gray:
        nonlocal transform
        corners = find_document(page)
        notes["sheet_found"] = corners is not None
        if corners is None:
            return page
        matrix, size = perspective_matrix(corners)
        transform = matrix @ transform
        return cv2.warpPerspective(page, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)

    page = timed("perspective", flatten_sheet)
    # Before anything measures lines: specks would pass for tiny characters.
    noise_level = estimate_noise(page)
    notes["noise"] = round(noise_level, 1)
    if noise_level > NOISY:
        page = timed("denoise", lambda: denoise(page, noise_level))

    def straighten() -> Gray:
        nonlocal transform
        angle = estimate_skew(page)
        notes["skew_degrees"] = round(angle, 2)
        if abs(angle) < 0.05:
            return page
        matrix, _ = rotation_matrix(page.shape, -angle)
        transform = np.vstack([matrix, [0, 0, 1]]) @ transform
        return rotate(page, -angle)

    page = timed("deskew", straighten)

    def crop() -> Gray:
        nonlocal transform
        x0, y0, x1, y1 = content_bounds(page)
        transform = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64) @ transform
        return page[y0:y1, x0:x1]

    page = timed("crop", crop)

    def rescale() -> Gray:
        nonlocal transform
        height = estimate_text_height(page)
        scaled, factor = normalise_scale(page, height)
        notes["text_height"] = None if height is None else round(height, 1)
        notes["scale"] = round(factor, 3)
        fx, fy = scaled.shape[1] / page.shape[1], scaled.shape[0] / page.shape[0]
        transform = np.diag([fx, fy, 1.0]) @ transform
        return scaled

    page = timed("scale", rescale)
    page = timed("illumination", lambda: stretch_contrast(flatten_illumination(page)))
    blur_level = sharpness(page)
    notes["sharpness"] = round(blur_level, 1)
    if blur_level < BLURRY:
        page = timed("sharpen", lambda: sharpen(page))
    binary = timed("binarise", lambda: remove_rules(binarise(page)))
    return PreparedImage(gray=page, binary=binary, original=original, transform=transform, steps=steps, notes=notes)


def to_original(transform: NDArray[np.float64], points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map points (N × 2) on the prepared page back onto the original photo."""
    mapped = cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), np.linalg.inv(transform))
    return np.asarray(mapped, dtype=np.float64).reshape(-1, 2)
