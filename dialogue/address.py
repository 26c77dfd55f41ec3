"""Is a delivery address complete? Province, city, district and street with a number.

A courier needs all four; a customer typing on a phone often leaves one out ("南山区科技园路1号").
The check says which parts are missing so the bot can ask for exactly those.
"""

from __future__ import annotations

from dataclasses import dataclass

import textpatterns

_SPACES = textpatterns.compile(r"\s+")
_DIGIT = textpatterns.compile(r"\d")

_MUNICIPALITY = textpatterns.compile(r"^(北京|上海|天津|重庆)(市)?")
_PROVINCE = textpatterns.compile(r"^(.{2,7}?(?:省|自治区|特别行政区))")
_CITY = textpatterns.compile(r"^(.{2,9}?(?:市|自治州|地区|盟))")
_DISTRICT = textpatterns.compile(r"^(.{1,9}?(?:区|县|旗|市))")
# Prefecture-level cities with towns directly under them (no districts).
_NO_DISTRICT_CITIES = ("东莞市", "中山市", "儋州市", "嘉峪关市")
_STREET = textpatterns.compile(r"(路|街|道|巷|弄|胡同|村|镇|乡|大厦|广场|小区|园|苑)")
_NUMBER = textpatterns.compile(r"\d+\s*(号|弄|栋|幢|座|室|楼|单元|层)|[A-Za-z]?\d+")
_ENGLISH = textpatterns.compile(r"^[\x00-\x7f]+$")

PARTS = ("province", "city", "district", "street")
PART_LABELS = {
    "province": {"zh": "省份", "en": "province"},
    "city": {"zh": "城市", "en": "city"},
    "district": {"zh": "区/县", "en": "district"},
    "street": {"zh": "街道和门牌号", "en": "street and number"},
}


@dataclass(frozen=True, slots=True)
class AddressCheck:
    address: str
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing

    def missing_labels(self, language: str) -> str:
        joiner = "、" if language == "zh" else ", "
        return joiner.join(PART_LABELS[p][language if language in ("zh", "en") else "zh"] for p in self.missing)


def check_address(raw: str) -> AddressCheck:
    """Which of province, city, district and street (with a number) the address lacks."""
    address = _SPACES.sub(" ", raw).strip(" ,，。.")
    if _ENGLISH.match(address):
        return _check_english(address)
    rest = address.replace(" ", "")
    missing: list[str] = []
    if match := _MUNICIPALITY.match(rest):
        rest = rest[match.end() :]  # 上海市 is both province and city
    else:
        if match := _PROVINCE.match(rest):
            rest = rest[match.end() :]
        else:
            missing.append("province")
        if match := _CITY.match(rest):
            rest = rest[match.end() :]
            if match.group(1).endswith(_NO_DISTRICT_CITIES):
                return AddressCheck(address, () if _STREET.search(rest) and _NUMBER.search(rest) else ("street",))
        else:
            missing.append("city")
    if match := _DISTRICT.match(rest):
        rest = rest[match.end() :]
    else:
        missing.append("district")
    if not (_STREET.search(rest) and _NUMBER.search(rest)):
        missing.append("street")
    return AddressCheck(address, tuple(missing))


def _check_english(address: str) -> AddressCheck:
    """Latin-script addresses: a street with a number and at least a city after a comma."""
    parts = [p.strip() for p in address.split(",") if p.strip()]
    missing: list[str] = []
    if not parts or not _DIGIT.search(parts[0]) or len(parts[0].split()) < 2:
        missing.append("street")
    if len(parts) < 2:
        missing.append("city")
    return AddressCheck(address, tuple(missing))
