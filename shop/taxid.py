"""Taxpayer identification numbers as printed on Chinese invoices (纳税人识别号).

Owns the checks of the numbers themselves: the unified social credit code of GB 32100-2015
(18 characters, the last a mod-31 check over the first 17) and the shapes older registrations
take (15, 17 or 20 characters, which carry no check character). The dialogue checks a tax id a
customer types, photo OCR one read off an invoice: both use this module, so the rule is one.

Must not know where a number comes from (a message, a photo) or what it is for.
"""

from __future__ import annotations

from typing import Literal

CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters a unified social credit code is written in (no I, O, S, V, Z)."""
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

TaxIdKind = Literal["credit_code", "old_registration", "invalid"]


def credit_code_check_character(first17: str) -> str:
    """The check character (18th) of a unified social credit code whose first 17 are given."""
    total = sum(CREDIT_CODE_CHARS.index(c) * w for c, w in zip(first17.upper(), _WEIGHTS, strict=True))
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31]


def valid_credit_code(code: str) -> bool:
    """The unified social credit code (GB 32100-2015): 18 characters, the last a mod-31 check."""
    code = code.upper()
    if len(code) != 18 or any(c not in CREDIT_CODE_CHARS for c in code):
        return False
    return credit_code_check_character(code[:17]) == code[17]


def tax_id_kind(value: str) -> TaxIdKind:
    """What a taxpayer number is: a checked credit code, an older registration number (15,
    17 or 20 digits and capitals: no check character to verify), or not
    a taxpayer number at all (wrong length, wrong characters, or an 18-character code whose
    check fails)."""
    value = value.upper()
    if len(value) == 18:
        return "credit_code" if valid_credit_code(value) else "invalid"
    if len(value) in (15, 17, 20) and value.isascii() and value.isalnum():
        return "old_registration"
    return "invalid"
