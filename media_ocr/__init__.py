"""Photo OCR: return slips, labels, invoices and damage photos into checked, structured fields.

Owns image preprocessing, text recognition (Tesseract and a second engine), barcode decoding
and field extraction. Must not know about channels, dialogue or tickets: it reads images and
returns fields with confidences.

The walking skeleton has no OCR path yet; the OCR issue builds it here.
"""
