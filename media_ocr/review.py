"""The photo as a reviewer sees it: doubtful fields outlined in red, the others in green, and the
lines holding personal data blurred.

Owns drawing on the original photo from a stored :class:`~media_ocr.model.OcrResult` (its
``regions`` and ``private_regions`` are outlines on that photo). Must not know where the photo
or the result are stored.
"""

from __future__ import annotations

import cv2
import numpy as np

from media_ocr.model import OcrResult
from media_ocr.preprocess import UnreadableImage, decode

DOUBTFUL = (40, 40, 230)  # BGR red
TRUSTED = (60, 170, 60)  # BGR green


def review_image(photo: bytes, result: OcrResult, *, blur_private: bool = True) -> bytes:
    """PNG bytes of the photo with the fields outlined (and personal data blurred)."""
    image = decode(photo)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    canvas = np.ascontiguousarray(image)
    height, width = canvas.shape[:2]
    thickness = max(2, round(max(height, width) / 400))
    if blur_private:
        for outline in result.private_regions:
            _pixelate(canvas, np.array(outline, dtype=np.float32))
    for name, outline in result.regions.items():
        colour = DOUBTFUL if name in result.doubtful_fields else TRUSTED
        points = np.array(outline, dtype=np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [points], True, colour, thickness)
    ok, encoded = cv2.imencode(".png", canvas)
    if not ok:
        raise UnreadableImage("could not encode the review image")
    return encoded.tobytes()


def _pixelate(canvas: np.ndarray, outline: np.ndarray) -> None:
    x, y, w, h = cv2.boundingRect(outline)
    x, y = max(0, x), max(0, y)
    w, h = min(canvas.shape[1] - x, w), min(canvas.shape[0] - y, h)
    if w < 2 or h < 2:
        return
    block = max(4, h // 3)
    region = canvas[y : y + h, x : x + w]
    small = cv2.resize(region, (max(1, w // block), max(1, h // block)), interpolation=cv2.INTER_AREA)
    canvas[y : y + h, x : x + w] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
