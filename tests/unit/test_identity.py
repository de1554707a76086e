"""Identity checks: USCC (GB 32100-2015) and resident ID (GB 11643-1999). Codes from docs/domain-notes.md §1.6, §2."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc as stdnum_uscc

from ledger.domain.errors import Rejection
from ledger.domain.identity import (
    WARNING_MESSAGES,
    Category,
    Identity,
    check_ric,
    check_uscc,
    entity_key,
    mask_id_numbers,
    mask_ric,
    normalise,
)

PEPPER = b"unit-test-pepper-0123456789"

# Check characters computed with the formulas of docs/domain-notes.md §1.6 and §2.1, not with stdnum.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_W = [pow(3, i, 31) for i in range(17)]
ID_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]  # = 2**(17-i) mod 11, i = 0..16


def uscc(code17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(code17, USCC_W, strict=True))
    return code17 + USCC_ALPHABET[(31 - total % 31) % 31]


def ric(id17: str) -> str:
    return id17 + "10X98765432"[sum(int(c) * w for c, w in zip(id17, ID_W, strict=True)) % 11]


def rejection(call: Callable[..., object], *args: object, **kwargs: object) -> Rejection:
    with pytest.raises(Rejection) as info:
        call(*args, **kwargs)
    return info.value


# --------------------------------------------------------------------------- normalise


def test_normalise_full_width_ideographic_space_hyphens_and_case() -> None:
    assert normalise("\u3000９１３１０１１５－ＭＡ１Ｋ３ＢＴＰ２ｂ ") == "91310115MA1K3BTP2B"
    assert normalise("9131 0115-ma1k\t3btp\n2b") == "91310115MA1K3BTP2B"
    assert normalise("11010519491231002x") == "11010519491231002X"


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once
    assert not any(c.isspace() for c in once)
    assert "-" not in once


# --------------------------------------------------------------------------- USCC


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("91110000600037341L", "enterprise"),  # python-stdnum doctest, docs/domain-notes.md §1.6
        ("121200004013590816", "public_institution"),  # 事业单位, Tianjin
        ("91310115MA1K3BTP2B", "enterprise"),  # post-2015 MA... body, docs/domain-notes.md §1.5
    ],
)
def test_real_codes_are_accepted_without_warning(code: str, category: Category) -> None:
    identity = check_uscc(code)
    assert identity == Identity("USCC", code, code, category, ())


def test_typed_code_is_normalised_and_raw_kept() -> None:
    raw = " ９１１１００００６０００３７３４１ｌ "
    identity = check_uscc(raw)
    assert identity.normalised == "91110000600037341L"
    assert identity.raw == raw


def test_wrong_check_character_is_accepted_with_warning() -> None:
    # docs/domain-notes.md §1.7: registered codes exist that fail the mod-31 check; flag, never reject.
    identity = check_uscc("91110000600037341X")
    assert identity.warnings == ("uscc.check_character",)
    assert identity.normalised == "91110000600037341X"
    assert identity.category == "enterprise"
    assert "uscc.check_character" in WARNING_MESSAGES


def test_military_prefix_accepted_although_stdnum_validate_rejects_it() -> None:
    code = uscc("A1110000600037341")
    assert not stdnum_uscc.is_valid(code)  # stdnum requires digits in positions 1-8
    assert check_uscc(code) == Identity("USCC", code, code, "public_institution", ())


def test_length_message_names_expected_and_received() -> None:
    error = rejection(check_uscc, "91110000600037341")
    assert (error.field, error.code) == ("subject.id", "uscc.length")
    assert error.message == ("统一社会信用代码应为18位，收到17位 "
                             "(the unified social credit code must have 18 characters, got 17)")


def test_legacy_registration_number_is_rejected_with_explanation() -> None:
    error = rejection(check_uscc, "540000100003419", field="CF_XDR_SHXYM")
    assert (error.field, error.code) == ("CF_XDR_SHXYM", "uscc.legacy_registration_number")
    assert "工商注册号" in error.message and "18位统一社会信用代码" in error.message


def test_organisation_code_is_rejected_with_explanation() -> None:
    error = rejection(check_uscc, "60003734-1")
    assert error.code == "uscc.organisation_code"
    assert "组织机构代码" in error.message


def test_excluded_letter_is_rejected_with_position() -> None:
    error = rejection(check_uscc, "91110000600O37341L")
    assert error.code == "uscc.characters"
    assert "第12位“O”" in error.message


def test_letter_in_division_code_is_rejected() -> None:
    error = rejection(check_uscc, uscc("911A0000600037341"))
    assert error.code == "uscc.region_code"
    assert "1A0000" in error.message


def test_empty_is_rejected() -> None:
    assert rejection(check_uscc, " \u3000 ").code == "uscc.empty"


def test_resident_id_in_uscc_field_is_rejected_without_quoting_it() -> None:
    error = rejection(check_uscc, "11010519491231002X")
    assert error.code == "uscc.resident_id"
    assert "19491231" not in error.message


@pytest.mark.parametrize(
    ("prefix", "category", "warnings"),
    [
        ("11", "government", ()),
        ("13", "government", ()),
        ("12", "public_institution", ()),
        ("A1", "public_institution", ()),
        ("31", "social_organisation", ()),
        ("51", "social_organisation", ()),
        ("52", "social_organisation", ()),
        ("53", "social_organisation", ()),
        ("71", "social_organisation", ()),
        ("81", "social_organisation", ()),
        ("91", "enterprise", ()),
        ("92", "enterprise", ()),
        ("93", "enterprise", ()),
        ("19", "government", ("uscc.category_nearest",)),
        ("N2", "enterprise", ("uscc.category_nearest",)),
        ("Y1", "social_organisation", ("uscc.category_nearest",)),
    ],
)
def test_category_from_prefix(prefix: str, category: str, warnings: tuple[str, ...]) -> None:
    identity = check_uscc(uscc(prefix + "4110026000373410"[:15]))
    assert identity.category == category
    assert identity.warnings == warnings


@pytest.mark.parametrize("prefix", ["94", "14", "G1", "54", "Y2", "B1", "N4", "22"])
def test_prefix_outside_gb32100_table_is_refused(prefix: str) -> None:
    # Issue item 4: an authority/category pair GB 32100 table 1 does not allow is refused, not warned.
    error = rejection(check_uscc, uscc(prefix + "411002MA00000000"[:15]), field="XK_XDR_SHXYM")
    assert (error.field, error.code) == ("XK_XDR_SHXYM", "uscc.prefix")
    assert f"“{prefix}”" in error.message and "GB 32100" in error.message


@pytest.mark.parametrize("division", ["419900", "411071", "999999", "000000", "101010", "102319"])
def test_division_that_never_existed_is_refused(division: str) -> None:
    # 411071 is an NBS statistical code of a development zone, not a GB/T 2260 division (domain-notes §2.2).
    error = rejection(check_uscc, uscc("91" + division + "MA0000000"))
    assert error.code == "uscc.division"
    assert division in error.message and "100000" in error.message


def test_division_abolished_before_credit_codes_began_is_refused() -> None:
    # 412624 许昌县 of the 许昌地区 ended in 1986; credit codes exist since GB 32100-2015 (2015-10-01).
    error = rejection(check_uscc, uscc("91412624MA0000000"))
    assert error.code == "uscc.division"
    assert "2015" in error.message


@pytest.mark.parametrize("division", ["100000", "410000", "411000", "411023", "411003", "411082"])
def test_national_province_prefecture_and_historical_county_divisions_are_accepted(division: str) -> None:
    # 411023 许昌县 1986-2016 registered entities until it became 411003 建安区 (domain-notes §2.2).
    assert check_uscc(uscc("12" + division + "MA0000000")).warnings == ()


@pytest.mark.parametrize(
    "number",
    # Xuchang ID numbers, current and historical address codes (domain-notes §2.2), each chosen so
    # that it ALSO passes the USCC mod-31 check character: still never an organisation.
    ["411023199003150016", "41100219850315018X", "412624198003150388", "411021198703151178",
     "411022199103150228"],
)
def test_id_number_passing_the_uscc_check_is_refused_without_quoting_it(number: str) -> None:
    assert stdnum_uscc.calc_check_digit(number[:17]) == number[17]
    assert check_ric(number).id_type == "RIC"
    for typed in (number, number.lower(), f"{number[:6]} {number[6:14]} {number[14:]}"):
        error = rejection(check_uscc, typed, field="CF_XDR_SHXYM")
        assert (error.field, error.code) == ("CF_XDR_SHXYM", "uscc.resident_id")
        assert number[6:14] not in error.message and number not in error.message


@given(st.sampled_from(["411002", "411023", "411021", "411022", "412624", "411081", "110105"]),
       st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)), st.integers(0, 999))
def test_every_id_number_is_refused_as_a_credit_code(address: str, born: date, seq: int) -> None:
    number = ric(f"{address}{born:%Y%m%d}{seq:03d}")
    assert rejection(check_uscc, number).code == "uscc.resident_id"


@given(st.text(max_size=40))
def test_check_uscc_raises_only_rejection_on_arbitrary_text(text: str) -> None:
    try:
        identity = check_uscc(text)
    except Rejection as error:
        assert error.code.startswith("uscc.")
    else:
        assert len(identity.normalised) == 18


_alnum = st.sampled_from(USCC_ALPHABET)


# Pairs of GB 32100 table 1 (docs/domain-notes.md §1.3) and real divisions, current and historical.
_PAIRS = [a + c for a, cs in {"1": "1239", "2": "19", "3": "123459", "4": "19", "5": "1239", "6": "129",
                                "7": "129", "8": "19", "9": "123", "A": "19", "N": "1239", "Y": "1"}.items()
          for c in cs]
_DIVISIONS = ["100000", "410000", "411000", "411002", "411003", "411023", "411081", "110105", "440305"]


@given(st.sampled_from(_PAIRS), st.sampled_from(_DIVISIONS), st.text(_alnum, min_size=9, max_size=9))
def test_every_code_with_right_check_character_has_no_check_warning(head: str, region: str, body: str) -> None:
    code = uscc(head + region + body)
    identity = check_uscc(code.lower())
    assert identity.normalised == code
    assert "uscc.check_character" not in identity.warnings


# --------------------------------------------------------------------------- resident ID


@pytest.mark.parametrize(
    "number",
    ["11010519491231002X", "360426199101010071", "44011320141005001X", "412723199010050012"],
)
def test_real_resident_ids_are_accepted(number: str) -> None:
    identity = check_ric(number)
    assert (identity.id_type, identity.normalised, identity.category, identity.warnings) == (
        "RIC", number, "individual", ())


def test_lower_case_x_is_accepted() -> None:
    assert check_ric("11010519491231002x").normalised == "11010519491231002X"


def test_standard_example_with_county_code_newer_than_birth_gets_warning() -> None:
    # GB 11643 example: 440524 潮阳县 exists 1983-1993 in stdnum's loc.dat, birth year is 1880.
    identity = check_ric("440524188001010014")
    assert identity.warnings == ("ric.county_code_date",)


@pytest.mark.parametrize(
    ("county", "born", "warnings"),
    [
        ("411000", "19900101", ()),  # 许昌市 since 1986
        ("411002", "19900101", ()),  # 魏都区
        ("411023", "19900101", ()),  # 许昌县 1986-2016
        ("411023", "20170101", ("ric.county_code_date",)),  # abolished in 2016
        ("411003", "20170101", ()),  # 建安区 since 2016
        ("411003", "19900101", ("ric.county_code_date",)),  # did not exist in 1990
        ("411024", "19900101", ()),  # 鄢陵县
        ("411025", "19980101", ()),  # 襄城县, in Xuchang since 1997
        ("411081", "19950101", ()),  # 禹州市 since 1989
        ("411082", "19950101", ()),  # 长葛市 since 1993
        ("412601", "19700101", ()),  # 许昌市 of 许昌地区, before 1986
        ("412624", "19700101", ()),  # 许昌县 of 许昌地区
        ("412624", "19900101", ("ric.county_code_date",)),  # 4126xx ended in 1986
        ("411071", "19900101", ("ric.county_code_date",)),  # NBS statistical code, unknown to loc.dat
    ],
)
def test_xuchang_address_codes(county: str, born: str, warnings: tuple[str, ...]) -> None:
    number = ric(county + born + "001")
    identity = check_ric(number)
    assert identity.warnings == warnings
    assert identity.normalised == number


def test_wrong_check_digit_is_rejected() -> None:
    error = rejection(check_ric, "110105194912310021")
    assert (error.field, error.code) == ("subject.id", "ric.checksum")


def test_fifteen_digit_legacy_id_is_rejected_asking_for_eighteen_digits() -> None:
    error = rejection(check_ric, "110105491231002")
    assert error.code == "ric.legacy_15_digit"
    assert "18位" in error.message


def test_impossible_birth_date_is_rejected_without_quoting_it() -> None:
    number = ric("41100219490230001")  # 30 February
    error = rejection(check_ric, number)
    assert error.code == "ric.birth_date"
    assert "19490230" not in error.message


def test_birth_date_after_today_is_rejected() -> None:
    number = ric("41100220300101001")
    assert check_ric(number).normalised == number
    assert rejection(check_ric, number, today=date(2025, 1, 1)).code == "ric.birth_date"


@pytest.mark.parametrize(("raw", "code"), [("", "ric.empty"), ("1101051949123100", "ric.length"),
                                           ("11010519491231002Y", "ric.characters")])
def test_malformed_resident_ids(raw: str, code: str) -> None:
    assert rejection(check_ric, raw).code == code


@given(st.text(max_size=30))
def test_check_ric_raises_only_rejection_on_arbitrary_text(text: str) -> None:
    try:
        check_ric(text)
    except Rejection as error:
        assert error.code.startswith("ric.")


# --------------------------------------------------------------------------- masking and keys


def test_mask_keeps_county_and_last_four() -> None:
    assert mask_ric("411002199001010012") == "411002********0012"
    assert mask_ric("12345") == "*****"


@given(st.text(st.sampled_from("0123456789"), min_size=17, max_size=17), st.sampled_from("0123456789X"))
def test_mask_never_contains_the_middle_digits(first17: str, last: str) -> None:
    number = first17 + last
    masked = mask_ric(number)
    assert masked[6:14] == "********"
    assert number[6:14] not in masked
    assert masked[:6] + masked[14:] == number[:6] + number[14:]


def test_free_text_never_holds_an_id_number() -> None:
    person = "411002199001010012"
    assert mask_id_numbers(f"/entities/{person}") == "/entities/411002********0012"
    assert mask_id_numbers(f"x {person[:6]}-{person[6:14]} {person[14:]} y") == "x 411002********0012 y"
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in person)
    assert mask_id_numbers(full_width) == "411002********0012"
    assert mask_id_numbers("uscc:91411002MA9XXXXX0C 精密") == "uscc:91411002MA9XXXXX0C 精密"


def test_identity_repr_masks_the_resident_id() -> None:
    identity = check_ric("11010519491231002X")
    assert "19491231" not in repr(identity)
    assert identity.display == "110105********002X"


def test_entity_key_of_an_organisation_is_its_code() -> None:
    assert entity_key(check_uscc("91110000600037341l"), PEPPER) == "uscc:91110000600037341L"


def test_entity_key_of_a_person_is_a_keyed_hash() -> None:
    key = entity_key(check_ric("11010519491231002x"), PEPPER)
    expected = hmac.new(PEPPER, b"11010519491231002X", hashlib.sha256).hexdigest()[:32]
    assert key == "ric:" + expected
    assert len(key) == 4 + 32
    assert "11010519491231002X" not in key
    assert entity_key(check_ric("11010519491231002X"), b"another-pepper-0123456789") != key


def test_entity_key_refuses_a_short_pepper() -> None:
    with pytest.raises(ValueError):
        entity_key(check_ric("11010519491231002X"), b"short")
