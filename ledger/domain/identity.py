"""Subject identities: the unified social credit code and the resident identity number.

Legal sources:
  * GB 32100-2015 《法人和其他组织统一社会信用代码编码规则》 — 18 characters: registration
    authority (pos. 1), category (pos. 2), registering authority's division code (pos. 3-8,
    GB/T 2260), subject identifier (pos. 9-17), mod-31 check character (pos. 18); the alphabet
    omits I, O, S, V, Z (docs/domain-notes.md §1.1-1.4).
  * GB 11643-1999 《公民身份号码》 — 6-digit address code, 8-digit birth date, 3-digit sequence,
    ISO 7064 MOD 11-2 check character (docs/domain-notes.md §2.1).

Checks are delegated to python-stdnum (``stdnum.cn.uscc``, ``stdnum.cn.ric``) with two
deliberate departures, both documented where they happen:

  * ``stdnum.cn.uscc.validate`` requires positions 1-8 to be digits, so it rejects the real
    authority codes ``A`` (军队), ``N`` (农业) and ``Y`` (其他) of GB 32100 §4 table 1
    (docs/domain-notes.md §1.3). The structure is checked here and only stdnum's ``calc_check_digit`` is used.
  * A wrong USCC check character is a warning, not a rejection: registered codes exist that fail
    it (docs/domain-notes.md §1.7). Likewise a resident ID whose address code did not exist in the birth year
    (python-stdnum's ``loc.dat`` year ranges) is a warning: the ID is issued by the public-security
    organ, the ledger only records it.

Stricter than stdnum (docs/domain-notes.md §1.3, §1.8): positions 3-8 must be a real division of
stdnum's ``loc.dat`` (or 100000), positions 1-2 a pair of GB 32100 table 1 (``GB32100_PAIRS``), and
a value shaped like a resident ID number is never taken for a credit code, whatever its check character.

Reason codes (``Rejection.code``): ``uscc.empty``, ``uscc.legacy_registration_number``,
``uscc.organisation_code``, ``uscc.length``, ``uscc.characters``, ``uscc.region_code``,
``uscc.division``, ``uscc.prefix``, ``uscc.resident_id``;
``ric.empty``, ``ric.legacy_15_digit``, ``ric.length``, ``ric.characters``, ``ric.checksum``,
``ric.birth_date``. Warning codes (``Identity.warnings``): see ``WARNING_MESSAGES``.

A natural person's ID number never leaves this module in clear except in ``Identity.raw`` and
``Identity.normalised`` (rejection messages never quote it):
``mask_ric`` is for every public view and log line, ``mask_id_numbers`` for free text that may hold
one (request paths, search input), ``entity_key`` for Kafka keys and entity ids.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from stdnum import numdb
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc
from stdnum.exceptions import ValidationError

from ledger.domain.errors import Rejection

__all__ = [
    "Category",
    "Identity",
    "ID_NUMBER_RUN",
    "IdType",
    "WARNING_MESSAGES",
    "check_ric",
    "check_uscc",
    "entity_key",
    "mask_id_numbers",
    "mask_ric",
    "normalise",
]

IdType = Literal["USCC", "RIC"]
Category = Literal["government", "public_institution", "social_organisation", "enterprise", "individual"]

WARNING_MESSAGES: dict[str, str] = {
    "uscc.check_character": "统一社会信用代码校验码不符，已收录并转人工复核 "
    "(the check character does not match; recorded and sent to manual review)",
    "uscc.category_nearest": "该机构类别不属于五大数据库的典型类别，已归入最接近的数据库 "
    "(this category has no database of its own; mapped to the nearest one)",
    "ric.county_code_date": "身份号码中的地址码在出生年份不存在或未知，已收录并转人工复核 "
    "(the address code was not in use in the birth year, or is unknown; recorded for review)",
}

# GB 32100-2015 alphabet: value = index; I, O, S, V, Z are excluded (docs/domain-notes.md §1.2).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# GB 32100-2015 table 1: the registration authorities (pos. 1) and the categories (pos. 2) each may
# issue. Source: GB 32100-2015 §4 表1 as restated in docs/domain-notes.md §1.3 (two secondary copies of
# the table and the npm package uscc-utils 0.7.0's USCC_CATEGORY_MAP agree entry for entry). A code
# whose first two characters form no pair of this table is refused (``uscc.prefix``).
GB32100_TABLE_SOURCE = ("GB 32100-2015《法人和其他组织统一社会信用代码编码规则》表1 登记管理部门代码和机构类别代码 "
                        "(docs/domain-notes.md §1.3)")
GB32100_PAIRS: dict[str, tuple[str, ...]] = {
    "1": ("1", "2", "3", "9"),       # 机构编制: 机关, 事业单位, 中央编办直管群众团体, 其他
    "2": ("1", "9"),                 # 外交: 外国常驻新闻机构, 其他
    "3": ("1", "2", "3", "4", "5", "9"),  # 司法行政: 律师, 公证, 基层法律服务, 司法鉴定, 仲裁, 其他
    "4": ("1", "9"),                 # 文化: 外国在华文化中心, 其他
    "5": ("1", "2", "3", "9"),       # 民政: 社会团体, 民办非企业单位, 基金会, 其他
    "6": ("1", "2", "9"),            # 旅游: 外国/港澳台旅游部门常驻代表机构, 其他
    "7": ("1", "2", "9"),            # 宗教: 宗教活动场所, 宗教院校, 其他
    "8": ("1", "9"),                 # 工会: 基层工会, 其他
    "9": ("1", "2", "3"),            # 工商 (市场监管): 企业, 个体工商户, 农民专业合作社
    "A": ("1", "9"),                 # 中央军委改革和编制办公室: 军队事业单位, 其他
    "N": ("1", "2", "3", "9"),       # 农业: 组级/村级/乡镇级集体经济组织, 其他
    "Y": ("1",),                     # 其他
}

# Mapping from (registration authority, category) to the five credit databases of Xuchang.
# A design choice, not a legal rule (docs/domain-notes.md §1.3 note c, docs/design-notes.md §3):
#   government          11 机关, 13 中央编办直管群众团体
#   public_institution  12 事业单位, A1 军队事业单位
#   social_organisation 3x 律师/公证/基层法律服务/司法鉴定/仲裁, 5x 社会团体/民非/基金会,
#                       7x 宗教活动场所/院校, 81 基层工会
#   enterprise          91 企业, 92 个体工商户, 93 农民专业合作社
#   individual          resident identity numbers only
_CORE_PREFIXES: dict[str, Category] = {
    "11": "government", "13": "government",
    "12": "public_institution", "A1": "public_institution",
    "31": "social_organisation", "32": "social_organisation", "33": "social_organisation",
    "34": "social_organisation", "35": "social_organisation", "39": "social_organisation",
    "51": "social_organisation", "52": "social_organisation", "53": "social_organisation",
    "59": "social_organisation",
    "71": "social_organisation", "72": "social_organisation", "79": "social_organisation",
    "81": "social_organisation",
    "91": "enterprise", "92": "enterprise", "93": "enterprise",
}
# Pairs of GB 32100 table 1 that no database is made for: nearest database, and the warning
# ``uscc.category_nearest`` (docs/design-notes.md §3: "map to the nearest database and are reported").
_NEAREST_PREFIXES: dict[str, Category] = {
    "19": "government",  # 机构编制 其他
    "21": "social_organisation", "29": "social_organisation",  # 外交: 外国常驻新闻机构, 其他
    "41": "social_organisation", "49": "social_organisation",  # 文化: 外国在华文化中心, 其他
    "61": "social_organisation", "62": "social_organisation", "69": "social_organisation",  # 旅游
    "89": "social_organisation",  # 工会 其他
    "A9": "public_institution",  # 军队 其他
    "N1": "enterprise", "N2": "enterprise", "N3": "enterprise", "N9": "enterprise",  # 农村集体经济组织
    "Y1": "social_organisation",  # 其他
}

# Characters 3-8: the administrative division (GB/T 2260) of the registering authority. Real
# divisions, current or historical, are those of python-stdnum's loc.dat (province XX0000,
# prefecture XXXX00 and county codes, with their years of use); 100000 stands for the national
# bodies (docs/domain-notes.md §1.1). Credit codes exist since GB 32100-2015 came into force on
# 2015-10-01, so a division whose every use ended before 2015 registered none.
NATIONAL_DIVISION = "100000"
USCC_FIRST_YEAR = 2015

_WHITESPACE = re.compile(r"\s+")
# Anything in free text that could be an ID number: 14-17 digits and a digit or X, a space or a
# hyphen allowed between them (the shapes people type), so that it is never shown or logged in clear.
ID_NUMBER_RUN = re.compile(r"(?:[0-9][\s\-]?){14,17}[0-9Xx]")
_HYPHENS = str.maketrans("", "", "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")


@dataclass(frozen=True)
class Identity:
    """A checked subject identifier.

    ``raw`` is what the emitter sent, ``normalised`` the canonical form; for a natural person both
    hold the clear ID number, so ``repr`` masks them. Use ``display`` in views and logs.
    """

    id_type: IdType
    raw: str = field(repr=False)
    normalised: str = field(repr=False)
    category: Category
    warnings: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        """The form that may be shown publicly: the masked ID for a person, the USCC otherwise."""
        return mask_ric(self.normalised) if self.id_type == "RIC" else self.normalised

    def __repr__(self) -> str:
        return (f"Identity(id_type={self.id_type!r}, display={self.display!r}, "
                f"category={self.category!r}, warnings={self.warnings!r})")


def normalise(raw: str) -> str:
    """Canonical form of a typed identifier.

    NFKC (full-width to half-width, e.g. ``９１`` -> ``91``), all whitespace removed (including
    U+3000 ideographic space), hyphens and dashes removed, upper-cased. Repeated until stable, so
    that ``normalise(normalise(x)) == normalise(x)`` for any text.
    """
    text = raw
    for _ in range(8):
        step = unicodedata.normalize("NFKC", text)
        step = _WHITESPACE.sub("", step).translate(_HYPHENS).upper()
        if step == text:
            break
        text = step
    return text


def check_uscc(raw: str, field: str = "subject.id") -> Identity:
    """Check a unified social credit code (GB 32100-2015); raise ``Rejection`` if malformed.

    Rejected: empty input, a 15-digit 工商注册号, a 9-character 组织机构代码, any other length than
    18, anything with the shape of a resident identity number (``has_id_number_shape``) even if it
    also passes the mod-31 check (it would be published in clear), characters outside the GB 32100
    alphabet, non-digits in positions 3-8, a division code (positions 3-8) that is no real
    administrative division (``uscc.division``), and first two characters that form no pair of GB
    32100 table 1 (``uscc.prefix``). Accepted with a warning: a wrong check character
    (``uscc.check_character``, docs/domain-notes.md §1.7) or a pair without a database of its own
    (``uscc.category_nearest``).
    """
    code = normalise(raw)
    if not code:
        raise Rejection(field, "uscc.empty",
                        "未填写统一社会信用代码 (the unified social credit code is missing)")
    if re.fullmatch(r"[0-9]{15}", code):
        raise Rejection(
            field, "uscc.legacy_registration_number",
            "这是15位工商注册号，不是统一社会信用代码，请填写18位统一社会信用代码 "
            "(this is a 15-digit business registration number; the 18-character USCC is required)")
    if len(code) == 9 and re.fullmatch(r"[0-9A-Z]{8}[0-9X]", code):
        raise Rejection(
            field, "uscc.organisation_code",
            f"{code} 是9位组织机构代码，不是统一社会信用代码，请填写18位统一社会信用代码 "
            "(this is a 9-character organisation code; the 18-character USCC is required)")
    if len(code) != 18:
        raise Rejection(
            field, "uscc.length",
            f"统一社会信用代码应为18位，收到{len(code)}位 "
            f"(the unified social credit code must have 18 characters, got {len(code)})")
    if has_id_number_shape(code):
        # A person's ID number in the organisation field: keying it as a USCC would publish it, so it
        # is refused even when it also passes the USCC check character (about one in 31 does).
        raise Rejection(
            field, "uscc.resident_id",
            "这是公民身份号码，不是统一社会信用代码；自然人请按公民身份号码报送 "
            "(this is a resident identity number, not a USCC; report natural persons by their ID number)")
    for position, char in enumerate(code, start=1):
        if char not in USCC_ALPHABET:
            raise Rejection(
                field, "uscc.characters",
                f"统一社会信用代码第{position}位“{char}”不是允许的字符"
                "（只能是数字和除 I、O、S、V、Z 以外的大写字母） "
                f"(character {position} '{char}' is not allowed: digits and capital letters except "
                "I, O, S, V, Z)")
    if not code[2:8].isdigit():
        raise Rejection(
            field, "uscc.region_code",
            f"统一社会信用代码第3至8位应为行政区划代码（6位数字），收到“{code[2:8]}” "
            f"(characters 3-8 must be the 6-digit administrative division code, got '{code[2:8]}')")
    _check_division(code[2:8], field)
    if code[1] not in GB32100_PAIRS.get(code[0], ()):
        raise Rejection(
            field, "uscc.prefix",
            f"统一社会信用代码前两位“{code[:2]}”不是 GB 32100 表1中的登记管理部门代码和机构类别代码组合 "
            f"(the first two characters '{code[:2]}' are no registration-authority and category pair of "
            "GB 32100 table 1)")

    warnings: list[str] = []
    if not _uscc_check_character_ok(code):
        warnings.append("uscc.check_character")
    if code[:2] in _CORE_PREFIXES:
        category = _CORE_PREFIXES[code[:2]]
    else:
        category = _NEAREST_PREFIXES[code[:2]]
        warnings.append("uscc.category_nearest")
    return Identity("USCC", raw, code, category, tuple(warnings))


def _check_division(division: str, field: str) -> None:
    status = _division_status(division)
    if status == "unknown":
        raise Rejection(
            field, "uscc.division",
            f"统一社会信用代码第3至8位“{division}”不是任何时期的行政区划代码（国家机关为100000） "
            f"(characters 3-8, '{division}', must be the administrative division of the registering "
            "authority, current or historical, or 100000 for national bodies; no division has this code)")
    if status == "retired":
        raise Rejection(
            field, "uscc.division",
            f"统一社会信用代码第3至8位“{division}”的行政区划在{USCC_FIRST_YEAR}年统一社会信用代码启用前已撤销 "
            f"(characters 3-8, '{division}', are a division abolished before credit codes began in "
            f"{USCC_FIRST_YEAR})")


def has_id_number_shape(code: str) -> bool:
    """True if the normalised ``code`` could be a resident identity number (GB 11643-1999): 17 digits
    and a digit or X, a real address code of any period (python-stdnum's loc.dat, e.g. 411023
    许昌县 1986-2016 or 412624 before 1986), a real calendar birth date, and the right MOD 11-2 check
    character (docs/domain-notes.md §2.1-2.2)."""
    if not re.fullmatch(r"[0-9]{17}[0-9X]", code) or stdnum_ric.calc_check_digit(code) != code[17]:
        return False
    try:
        born = stdnum_ric.get_birth_date(code)
    except ValidationError:
        return False
    return born.year >= 1800 and _division_status(code[:6], first_year=0) == "ok"


_YEARS = re.compile(r"\[(\d*)-(\d*)\]")


@functools.lru_cache(maxsize=1 << 14)
def _division_status(division: str, first_year: int = USCC_FIRST_YEAR) -> Literal["ok", "unknown", "retired"]:
    """Whether ``division`` is a real GB/T 2260 code in python-stdnum's loc.dat ("unknown" if not),
    in use in ``first_year`` or later ("retired" if every use of it ended before)."""
    if division == NATIONAL_DIVISION:
        return "ok"
    parts = numdb.get("cn/loc").info(division)
    county = next((props["county"] for _, props in parts if "county" in props), None)
    if not county:
        return "unknown"
    for entry in county.split(","):
        years = _YEARS.match(entry)
        if years is None or not years.group(2) or int(years.group(2)) >= first_year:
            return "ok"
    return "retired"


def check_ric(raw: str, field: str = "subject.id", *, today: date | None = None) -> Identity:
    """Check a resident identity number (GB 11643-1999); raise ``Rejection`` if it cannot be one.

    Rejected: empty input, a 15-digit first-generation number (GB 11643-1989), any other length
    than 18, non-digits in positions 1-17 or a last character other than a digit or X, a wrong
    check character, an impossible birth date (or one after ``today`` when given). Accepted with
    the warning ``ric.county_code_date``: an address code that python-stdnum's ``loc.dat`` does not
    know, or that was not in use in the birth year (e.g. 411003 建安区, created 2016, with an earlier
    birth year). Older Xuchang codes (411023 许昌县 1986-2016, 4126xx 许昌地区 before 1986) are
    valid for the birth years in which they existed (docs/domain-notes.md §2.2).
    """
    number = normalise(raw)
    if not number:
        raise Rejection(field, "ric.empty", "未填写公民身份号码 (the resident identity number is missing)")
    if re.fullmatch(r"[0-9]{15}", number):
        raise Rejection(
            field, "ric.legacy_15_digit",
            "这是15位旧身份证号码，请填写18位公民身份号码 "
            "(this is a 15-digit first-generation ID number; please give the 18-digit number)")
    if len(number) != 18:
        raise Rejection(
            field, "ric.length",
            f"公民身份号码应为18位，收到{len(number)}位 "
            f"(the resident identity number must have 18 characters, got {len(number)})")
    if not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        raise Rejection(
            field, "ric.characters",
            "公民身份号码前17位应为数字，第18位应为数字或 X "
            "(the first 17 characters must be digits and the last a digit or X)")
    if stdnum_ric.calc_check_digit(number) != number[17]:
        raise Rejection(
            field, "ric.checksum",
            "公民身份号码校验码不符，请核对号码 "
            "(the check character does not match; please check the number)")
    try:
        birth = stdnum_ric.get_birth_date(number)
    except ValidationError:
        raise Rejection(
            field, "ric.birth_date",
            "公民身份号码中的出生日期不存在 (the birth date in the number does not exist)",
        ) from None
    if today is not None and birth > today:
        raise Rejection(
            field, "ric.birth_date",
            "公民身份号码中的出生日期晚于今天 (the birth date in the number is in the future)")

    warnings = () if _county_known(number[:6], birth.year) else ("ric.county_code_date",)
    return Identity("RIC", raw, number, "individual", warnings)


# The same subjects come back event after event: the two slow library checks are cached (by code,
# and by address code and birth year, which is all the birth-place check depends on).
@functools.lru_cache(maxsize=1 << 16)
def _uscc_check_character_ok(code: str) -> bool:
    return bool(stdnum_uscc.calc_check_digit(code) == code[17])


@functools.lru_cache(maxsize=1 << 16)
def _county_known(address: str, birth_year: int) -> bool:
    """Whether python-stdnum knows the address code as in use in the birth year."""
    try:
        stdnum_ric.get_birth_place(f"{address}{birth_year:04d}0101000")
    except (ValidationError, KeyError):
        # stdnum 2.2 raises KeyError (not a ValidationError) for an address code whose province is
        # known but whose county is not, e.g. 411071 (an NBS statistical code, docs/domain-notes.md §2.2).
        return False
    return True


def mask_ric(normalised: str) -> str:
    """Mask a resident ID for public views and log lines: ``411002********0012``.

    Keeps the 6-digit address code (a county, not a person) and the last 4 characters (sequence
    and check character) so a clerk can tell two records apart; hides the 8-digit birth date,
    which with the address code narrows the person down most. Any input that is not 18 characters
    long is masked completely, so a malformed number never leaks either.
    """
    if len(normalised) != 18:
        return "*" * len(normalised)
    return normalised[:6] + "*" * 8 + normalised[14:]


def mask_id_numbers(text: str) -> str:
    """Free text (a request path, a search) as it may be shown or logged: NFKC first, so full-width
    digits count, then every run that could be an ID number (``ID_NUMBER_RUN``) replaced by
    ``mask_ric`` of its normalised form. A unified social credit code is left as it is."""
    return ID_NUMBER_RUN.sub(lambda m: mask_ric(normalise(m.group())), unicodedata.normalize("NFKC", text))


# What an entity id looks like (entity_key): ``uscc:`` + 18 characters, or ``ric:`` + 32 hex digits.
ENTITY_ID = re.compile(r"(uscc:[0-9A-Z]{18}|ric:[0-9a-f]{32})")


def entity_key(identity: Identity, pepper: bytes) -> str:
    """The Kafka key and entity id of a subject.

    An organisation is keyed by its USCC in clear (``uscc:91110000600037341L``): it is public. A
    natural person is keyed by ``ric:`` + the first 32 hex digits (128 bits) of
    HMAC-SHA256(pepper, normalised ID), so the ID number never appears in keys, logs or views.
    The ID space is small (address x birth date x sequence), so the pepper must stay secret and
    must never change once events exist; at least 16 bytes are required.
    """
    if identity.id_type == "USCC":
        return "uscc:" + identity.normalised
    if len(pepper) < 16:
        raise ValueError("the pepper for resident-ID entity keys must have at least 16 bytes")
    digest = hmac.new(pepper, identity.normalised.encode("ascii"), hashlib.sha256).hexdigest()
    return "ric:" + digest[:32]


def birth_date(identity: Identity) -> date | None:
    """A natural person's birth date, read from the ID number (None for organisations)."""
    if identity.id_type != "RIC":
        return None
    return stdnum_ric.get_birth_date(identity.normalised)
