"""Photo OCR: return slips, courier waybills, VAT invoices and damage photos into checked,
structured fields.

Owns reading photos: preprocessing (:mod:`~media_ocr.preprocess`), text recognition with
Tesseract and RapidOCR (:mod:`~media_ocr.engines`), barcodes (:mod:`~media_ocr.barcodes`), the
document's type (:mod:`~media_ocr.documents`), field extraction for return slips
(:mod:`~media_ocr.fields`), waybills (:mod:`~media_ocr.waybill`) and invoices
(:mod:`~media_ocr.invoice`), checks against the shop's orders and the review decision
(:mod:`~media_ocr.validation`), masking personal data (:mod:`~media_ocr.privacy`), the reviewer's
picture (:mod:`~media_ocr.review`), results and their corrections (:mod:`~media_ocr.store`), the
worker pool and service (:mod:`~media_ocr.pipeline`), the command line (:mod:`~media_ocr.batch`)
and synthetic test documents (:mod:`~media_ocr.synthetic`).

Must not know about channels, dialogue or tickets: it reads images and returns fields with
confidences and review reasons; the gateway attaches them to conversations.
"""
