"""Barcode and QR-code reading with zxing-cpp (a wheel with no system library).

Owns finding and decoding every 1-D barcode and 2-D code on a photo (QR, Code 128, EAN, Data
Matrix, PDF417 …). The symbologies carry their own error detection, so a decoded code is what
was printed. Must not know what the codes mean (order number, tracking number): see
:mod:`media_ocr.fields`.
"""

from __future__ import annotations

import zxingcpp

from media_ocr.model import Barcode, Box
from media_ocr.preprocess import Gray


def read_barcodes(image: Gray) -> list[Barcode]:
    """Every code zxing-cpp finds, tried as is and, if none, on a contrast-stretched copy."""
    found = _decode(image)
    if not found:
        import cv2  # only for the retry

        found = _decode(cv2.equalizeHist(image))
    return found


def _decode(image: Gray) -> list[Barcode]:
    results = zxingcpp.read_barcodes(image, try_rotate=True, try_downscale=True)
    codes: list[Barcode] = []
    seen: set[tuple[str, str]] = set()
    for result in results:
        if not result.valid or not result.text:
            continue
        key = (str(result.format), result.text)
        if key in seen:
            continue
        seen.add(key)
        corners = result.position
        xs = [corners.top_left.x, corners.top_right.x, corners.bottom_right.x, corners.bottom_left.x]
        ys = [corners.top_left.y, corners.top_right.y, corners.bottom_right.y, corners.bottom_left.y]
        codes.append(Barcode(str(result.format), result.text, Box(min(xs), min(ys), max(xs), max(ys))))
    return codes
