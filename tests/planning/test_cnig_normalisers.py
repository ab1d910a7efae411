"""Property and unit tests of the CNIG field/code/text normalisers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from territoire_geo.planning import _cnig
from territoire_geo.planning._encoding import (
    EncodingReport,
    decide_encoding,
    fix_mojibake,
    normalise_codec_name,
)

FRENCH = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -'.,éèêëàâäîïôöùûüçœÉÈÊÀÎÔÙÛÇŒ’«»"


@st.composite
def spelling_of(draw: st.DrawFn, name: str) -> str:
    """Any case/underscore variant of a field name."""
    letters = [c for c in name if c != "_"]
    out = []
    for char in letters:
        out.append(char.lower() if draw(st.booleans()) else char.upper())
        out.append("_" * draw(st.integers(0, 1)))
    return "".join(out)


@given(data=st.data(), name=st.sampled_from(_cnig.CNIG_FIELDS))
def test_any_case_or_underscore_variant_maps_back(data: st.DataObject, name: str) -> None:
    variant = data.draw(spelling_of(name))
    assert _cnig.normalize_field_name(variant) == name


def test_field_keys_are_unique() -> None:
    keys = [_cnig.field_key(n) for n in _cnig.CNIG_FIELDS]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("typezone", "TYPEZONE"),
        ("TYPE_ZONE", "TYPEZONE"),
        ("TypeZone", "TYPEZONE"),
        ("lib_idzone", "LIB_IDZONE"),
        ("Libellé", "LIBELLE"),
        ("LIBELLE_LO", "LIBELONG"),
        ("code_insee", "INSEE"),
        ("gid", "GID"),
        ("partition", "PARTITION"),
    ],
)
def test_field_aliases(raw: str, expected: str) -> None:
    assert _cnig.normalize_field_name(raw) == expected


@given(value=st.integers(0, 10**12), width=st.sampled_from([2, 4, 5]))
def test_code_forms_agree(value: int, width: int) -> None:
    forms = [
        value,
        float(value),
        str(value),
        str(value).zfill(width),
        f"{value}.0",
        f" {value} ",
        np.int64(value),
    ]
    results = {_cnig.normalize_code(form, width) for form in forms}
    assert results == {str(value).zfill(width)}


@given(
    value=st.one_of(st.none(), st.integers(-10, 10**9), st.floats(allow_nan=True), st.text(max_size=12)),
    width=st.sampled_from([2, 4, 5]),
)
def test_code_normaliser_is_idempotent(value: object, width: int) -> None:
    once = _cnig.normalize_code(value, width)
    assert _cnig.normalize_code(once, width) == once
    assert once is None or isinstance(once, str)


@pytest.mark.parametrize(
    ("value", "expected"), [(7, "07"), (7.0, "07"), ("7", "07"), ("07", "07"), (None, None)]
)
def test_lost_zeros_restored(value: object, expected: str | None) -> None:
    assert _cnig.normalize_code(value, 2) == expected


def test_non_numeric_codes_kept() -> None:
    assert _cnig.normalize_code("2A004", 5) == "2A004"
    assert _cnig.normalize_code(1004, 5) == "01004"
    assert _cnig.normalize_code(101, 4) == "0101"
    assert _cnig.normalize_code(float("nan"), 2) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("U", "U"), ("auc", "AUc"), ("AUC", "AUc"), ("AUs", "AUs"), ("au", "AUc"), ("Nh", "N"), ("Ah", "A"), ("nd", "N"),
     (" a ", "A"), ("UX", "UX"), (None, None), ("", None)],
)  # fmt: skip
def test_typezone_normaliser(value: object, expected: str | None) -> None:
    assert _cnig.normalize_typezone(value) == expected


@pytest.mark.parametrize(
    ("libelle", "expected"),
    [("1AUh", "AUc"), ("2AU", "AUs"), ("2auE", "AUs"), ("AUa", "AUc"), ("3AU", "AUc"), ("Ua", "U"), ("uc", "U"),
     ("Ap", "A"), ("Nh", "N"), ("nt", "N"), ("ZAC", None), (None, None)],
)  # fmt: skip
def test_typezone_inference(libelle: str | None, expected: str | None) -> None:
    assert _cnig.infer_typezone(libelle) == expected


@given(st.sampled_from(_cnig.TYPEZONES))
def test_typezone_normaliser_is_identity_on_enum(value: str) -> None:
    assert _cnig.normalize_typezone(value) == value
    assert _cnig.normalize_typezone(value.upper()) == value
    assert _cnig.normalize_typezone(value.lower()) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [("20171013", "20171013"), (20171013, "20171013"), (20171013.0, "20171013"), ("2017-10-13", "20171013"),
     ("13/10/2017", "20171013"), (dt.date(2017, 10, 13), "20171013"), ("2011", "2011"), (None, None)],
)  # fmt: skip
def test_dates(value: object, expected: str | None) -> None:
    assert _cnig.normalize_date(value) == expected


def test_date_validity() -> None:
    assert _cnig.is_valid_date("20171013")
    assert not _cnig.is_valid_date("20171332")
    assert not _cnig.is_valid_date("2011")
    assert _cnig.is_valid_date("00000000", allow_zero=True)
    assert not _cnig.is_valid_date("00000000")
    assert _cnig.is_valid_date("20110000", allow_year_only=True)


def test_to_text() -> None:
    assert _cnig.to_text("  Ua ") == "Ua"
    assert _cnig.to_text("") is None
    assert _cnig.to_text(7.5) == "7.5"
    assert _cnig.to_text(np.float64(3.0)) == "3"
    assert _cnig.to_text([1.0, 2.5]) == "[1.0, 2.5]"


def test_guess_version() -> None:
    assert _cnig.guess_version(["LIBELLE", "TYPEZONE", "INSEE", "DATAPPRO", "DESTDOMI"]) == "2014"
    assert _cnig.guess_version(["LIBELLE", "TYPEZONE", "IDURBA"]) == "2017"
    assert _cnig.guess_version(["LIBELLE", "TYPEZONE", "FORMDOMI", "IDURBA"]) == "2022"
    assert _cnig.guess_version(["gid", "partition", "libelle", "typezone", "insee"]) == "apicarto"
    assert _cnig.guess_version(["LIBELLE", "TYPEZONE"], ["Nh", "U"]) == "2014"


# ----------------------------------------------------------------- encoding
french_text = st.text(alphabet=FRENCH, min_size=1, max_size=40)


@given(french_text)
def test_mojibake_repaired(text: str) -> None:
    once = text.encode("utf-8").decode("latin-1")
    twice = once.encode("utf-8").decode("latin-1")
    assert fix_mojibake(once) == text
    assert fix_mojibake(twice) == text


@given(french_text)
@settings(max_examples=200)
def test_clean_text_untouched(text: str) -> None:
    assert fix_mojibake(text) == text


def test_mojibake_examples() -> None:
    assert fix_mojibake("Zone urbanisÃ©e") == "Zone urbanisée"
    assert fix_mojibake("dâ€™urbanisation") == "d’urbanisation"
    assert fix_mojibake(42) == 42
    assert fix_mojibake("plain") == "plain"


def test_decide_encoding() -> None:
    utf8 = "Zone urbanisée".encode().decode("latin-1")
    cp1252 = "Zone urbanisée d’été".encode("cp1252").decode("latin-1")
    assert decide_encoding([utf8, "abc"]) == "utf-8"
    assert decide_encoding([cp1252]) == "cp1252"
    assert decide_encoding(["abc", "def"]) == "ascii"


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("1252", "cp1252"),
        ("UTF-8", "utf-8"),
        ("utf8", "utf-8"),
        ("ISO 88591", "latin-1"),
        ("SYSTEM", None),
        (None, None),
    ],
)
def test_codec_names(name: str | None, codec: str | None) -> None:
    assert normalise_codec_name(name) == codec


def test_encoding_report_flags() -> None:
    assert EncodingReport("UTF-8", "cp1252").cpg_lied
    assert EncodingReport("1252", "utf-8").repaired
    assert not EncodingReport("1252", "cp1252").repaired
    assert EncodingReport(None, "utf-8").repaired  # GDAL would have read Latin-1
    assert not EncodingReport(None, "ascii").repaired
