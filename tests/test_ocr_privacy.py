"""Personal data found on photos is masked in text, in logs and on the review image."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from media_ocr.model import OcrResult
from media_ocr.privacy import MaskingFilter, holds_personal_data, mask_text
from media_ocr.review import review_image


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("联系电话：13800138000", "联系电话：138****8000"),
        ("手机 139-1234-5678", "手机 139****5678"),
        ("电话 0571-88886666", "电话 0571-****6666"),
        ("姓名：张伟 手机：13912345678", "姓名：张* 手机：139****5678"),
        ("联系人：孙军联系电话：16055183000", "联系人：孙*联系电话：160****3000"),
        ("寄件人：徐强19548344744", "寄件人：徐*195****4744"),
        ("购买方名称：欧阳娜娜", "购买方名称：欧***"),
        ("取件地址：浙江省杭州市西湖区文三路398号5幢1201", "取件地址：浙江省杭州市****"),
        ("地址：北京市海淀区中关村大街92号", "地址：北京市****"),
        ("邮箱 zhang.wei@example.com", "邮箱 z***@example.com"),
        ("身份证 330106199001011234", "身份证 330106********1234"),
    ],
)
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked
    assert holds_personal_data(text)


@pytest.mark.parametrize(
    "text", ["订单号：202611150001", "会员ID：VIP75114040", "客服热线 400-820-8820", "退货原因：破损", "SKU-TEA-500"]
)
def test_fields_and_service_numbers_are_left_alone(text: str) -> None:
    assert mask_text(text) == text
    assert not holds_personal_data(text)


def test_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("media_ocr.test")
    masking = MaskingFilter()
    logger.addFilter(masking)
    try:
        with caplog.at_level(logging.INFO, logger="media_ocr.test"):
            logger.info("read %s", "联系电话：13800138000 地址：浙江省杭州市西湖区文三路398号")
    finally:
        logger.removeFilter(masking)
    assert caplog.messages == ["read 联系电话：138****8000 地址：浙江省杭州市****"]


def test_the_review_image_blurs_personal_data_and_outlines_doubtful_fields() -> None:
    photo = np.full((200, 400, 3), 255, np.uint8)
    cv2.putText(photo, "13800138000", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    ok, encoded = cv2.imencode(".png", photo)
    assert ok
    result = OcrResult(
        image="x",
        fields={"quantity": 2},
        confidence={"quantity": 0.5},
        needs_review=True,
        review_reasons=["quantity: read with low confidence (0.50)"],
        doubtful_fields=["quantity"],
        engine="test",
        regions={"quantity": [[20, 120], [120, 120], [120, 170], [20, 170]]},
        private_regions=[[[10, 25], [260, 25], [260, 75], [10, 75]]],
    )
    shown = cv2.imdecode(np.frombuffer(review_image(encoded.tobytes(), result), np.uint8), cv2.IMREAD_COLOR)
    assert shown is not None
    phone_before, phone_after = photo[25:75, 10:260], shown[25:75, 10:260]
    assert np.abs(phone_after.astype(int) - phone_before.astype(int)).mean() > 5  # pixelated
    red = shown[120, 60]
    assert red[2] > 200 and red[1] < 80  # BGR: the doubtful field is outlined in red


def test_a_line_read_only_up_to_its_label_is_still_private() -> None:
    from media_ocr.privacy import holds_personal_data

    # A slip's long line is read only as far as its label: the rest of it is blurred all the same.
    assert holds_personal_data("联系电话：178")
    assert holds_personal_data("收件人")
    assert not holds_personal_data("订单号：202611150001")
