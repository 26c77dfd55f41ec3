"""Each preprocessing step on its own, on synthetic documents with a known damage."""

from __future__ import annotations

import numpy as np
import pytest

from media_ocr import preprocess, synthetic
from tests.ocr_support import sample


def clean_page(layout: synthetic.Layout = "lines") -> np.ndarray:
    return np.array(sample(layout).image.convert("L"))


@pytest.mark.parametrize("angle", [-9.0, -2.5, 4.0, 11.0])
def test_deskew_recovers_a_known_angle_within_one_degree(angle: float) -> None:
    turned = preprocess.rotate(clean_page(), angle)
    assert abs(preprocess.estimate_skew(turned) - angle) < 1.0
    straightened, corrected = preprocess.deskew(turned)
    assert abs(corrected - angle) < 1.0
    assert abs(preprocess.estimate_skew(straightened)) < 0.5


def test_an_upright_page_is_not_turned() -> None:
    assert abs(preprocess.estimate_skew(clean_page("form"))) < 0.3


def test_the_sheet_on_a_desk_is_found_and_warped_flat() -> None:
    page = clean_page()
    rng = np.random.default_rng(1)
    photo = synthetic.perspective(page, rng, strength=0.08)
    corners = preprocess.find_document(photo)
    assert corners is not None
    flat = preprocess.correct_perspective(photo, corners)
    # The warped sheet has the page's proportions and no desk left in it.
    assert abs(flat.shape[1] / flat.shape[0] - page.shape[1] / page.shape[0]) < 0.08
    assert np.percentile(flat, 50) > 200


def test_a_page_without_desk_around_it_is_left_alone() -> None:
    assert preprocess.find_document(clean_page("form")) is None  # its table is not a sheet


def test_cropping_keeps_the_text_and_drops_empty_margins() -> None:
    page = clean_page()
    padded = np.pad(page, 200, constant_values=255)
    cropped = preprocess.crop_to_content(padded)
    assert cropped.shape[0] < padded.shape[0] - 300 and cropped.shape[1] < padded.shape[1] - 300
    assert np.count_nonzero(cropped < 128) == np.count_nonzero(padded < 128)


def test_small_text_is_scaled_to_the_target_height() -> None:
    small = synthetic.shrink(clean_page(), 0.45)
    height = preprocess.estimate_text_height(small)
    assert height is not None and height < 18
    scaled, factor = preprocess.normalise_scale(small, height)
    assert factor > 1.5
    rescaled_height = preprocess.estimate_text_height(scaled)
    assert rescaled_height is not None
    assert abs(rescaled_height - preprocess.TARGET_TEXT_HEIGHT) < 5


def test_denoising_lowers_measured_noise() -> None:
    noisy = synthetic.noise(clean_page(), np.random.default_rng(2), sigma=24)
    before = preprocess.estimate_noise(noisy)
    assert before > preprocess.NOISY
    assert preprocess.estimate_noise(preprocess.denoise(noisy, before)) < before / 3


def test_flattening_removes_a_shadow_from_the_paper() -> None:
    page = clean_page()
    shaded = synthetic.shadow(page, np.random.default_rng(3), depth=0.55)
    paper = page > 200
    assert np.std(shaded[paper]) > 20
    flat = preprocess.stretch_contrast(preprocess.flatten_illumination(shaded))
    assert np.std(flat[paper]) < np.std(shaded[paper]) / 3
    assert np.median(flat[paper]) > 230


def test_low_contrast_is_stretched_to_black_on_white() -> None:
    faint = synthetic.low_contrast(clean_page(), 125, 185)
    stretched = preprocess.stretch_contrast(preprocess.flatten_illumination(faint))
    assert stretched.min() < 40 and np.median(stretched) > 230


def test_sharpening_raises_sharpness_of_a_blurred_page() -> None:
    blurred = synthetic.blur(clean_page(), 1.8)
    assert preprocess.sharpness(preprocess.sharpen(blurred)) > 2 * preprocess.sharpness(blurred)


def test_binarisation_gives_black_text_on_white_without_table_rules() -> None:
    page = clean_page("form")
    binary = preprocess.remove_rules(preprocess.binarise(page))
    assert set(np.unique(binary)) <= {0, 255}
    assert 0.01 < np.count_nonzero(binary == 0) / binary.size < 0.2
    # The form's long rules are gone: no row is mostly black any more.
    assert (binary == 0).mean(axis=1).max() < 0.5


def test_prepare_times_every_step_and_maps_points_back_to_the_photo() -> None:
    photo = synthetic.rotate(clean_page(), 6.0, np.random.default_rng(4))
    prepared = preprocess.prepare(photo)
    assert {"perspective", "deskew", "crop", "scale", "illumination", "binarise"} <= set(prepared.steps)
    assert prepared.notes["sheet_found"] is True
    # A point of the prepared page maps onto the photo and back.
    point = np.array([[100.0, 80.0]])
    on_photo = preprocess.to_original(prepared.transform, point)
    back = preprocess.to_original(np.linalg.inv(prepared.transform), on_photo)
    assert np.allclose(back, point, atol=0.01)
    assert 0 <= on_photo[0, 0] < photo.shape[1] and 0 <= on_photo[0, 1] < photo.shape[0]


def test_bytes_that_are_no_image_are_refused() -> None:
    with pytest.raises(preprocess.UnreadableImage):
        preprocess.prepare(b"%PDF-1.4 not an image")
    with pytest.raises(preprocess.UnreadableImage):
        preprocess.prepare(b"")
