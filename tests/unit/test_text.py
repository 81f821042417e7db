"""Behaviour of the one text normaliser and of the grouping key built on it."""

import sys
import unicodedata

import pytest

from nmt.data.text import fold_for_grouping, normalize_text


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Va\u202f!", "Va !"),  # narrow no-break space before French "!"
        ("Quoi\u00a0?", "Quoi ?"),  # no-break space
        ("Attends\u2009!", "Attends !"),  # thin space
        ("a\u3000b\u2003c", "a b c"),  # ideographic and em space
    ],
)
def test_unicode_spaces_become_one_ascii_space(raw, expected):
    assert normalize_text(raw) == expected


def test_french_space_before_punctuation_is_kept():
    assert normalize_text("Va !") == "Va !"
    assert normalize_text("« Bonjour »") == "« Bonjour »"


def test_zero_width_characters_are_deleted():
    assert normalize_text("in\u200bvisible\u200c\u200d\ufeff") == "invisible"


def test_tabs_and_newlines_become_spaces_so_words_stay_apart():
    assert normalize_text("one\ttwo\nthree\r\nfour") == "one two three four"


def test_other_control_characters_are_deleted():
    assert normalize_text("bell\x07 and\x00 c1\x9b") == "bell and c1"


def test_runs_of_spaces_collapse_and_ends_are_stripped():
    assert normalize_text("  a   b \u00a0 c  ") == "a b c"


def test_output_is_nfc():
    decomposed = "e\u0301te\u0301"
    assert normalize_text(decomposed) == "\u00e9t\u00e9"


def test_deleting_a_zero_width_character_still_yields_nfc():
    # NFC must run after the deletions or "e" + ZWSP + accent would stay decomposed.
    assert normalize_text("e\u200b\u0301") == "\u00e9"


def test_normalization_is_idempotent():
    samples = ["Va\u202f!", " e\u200b\u0301 \t x", "\u2000a\u2001", "plain text"]
    for sample in samples:
        once = normalize_text(sample)
        assert normalize_text(once) == once


def test_every_unicode_space_separator_is_mapped():
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Zs"]
    assert normalize_text("a" + "".join(spaces) + "b") == "a b"


def test_empty_and_blank_strings_normalize_to_empty():
    assert normalize_text("") == ""
    assert normalize_text(" \u00a0\u200b\t") == ""


@pytest.mark.parametrize("variant", ["Go.", "go!", "Go !", "GO", "  go\u202f!  ", "«Go»"])
def test_case_punctuation_and_spacing_variants_fold_to_one_key(variant):
    assert fold_for_grouping(variant) == "go"


def test_folding_removes_symbols_and_keeps_letters_and_digits():
    assert fold_for_grouping("I paid $5 + tax - ok?") == "i paid 5 tax ok"
    assert fold_for_grouping("Straße") == "strasse"


def test_different_sentences_keep_different_keys():
    assert fold_for_grouping("Go now.") != fold_for_grouping("Go.")
