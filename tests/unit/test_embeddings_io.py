"""Vector files: every standard format written by us and by gensim, read back exactly;
malformed files are one clear error naming the place."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from nmt.embeddings.io import (
    FASTTEXT_MAGIC,
    VectorFileError,
    detect_format,
    read_vectors,
    vector_dim,
    write_vectors,
)
from nmt.embeddings.vectors import WordVectors

gensim = pytest.importorskip("gensim")


def tiny_vectors(dim: int = 4) -> WordVectors:
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "été", "한국어"]
    return WordVectors(words, rng.normal(size=(len(words), dim)).astype(np.float32))


@pytest.mark.parametrize("format", ["word2vec", "word2vec_binary", "glove", "fasttext"])
def test_round_trip_in_every_writable_format(tmp_path, format):
    vectors = tiny_vectors()
    path = write_vectors(vectors, tmp_path / f"v.{format}", format)
    assert detect_format(path) == ("word2vec" if format == "fasttext" else format)
    back = read_vectors(path)
    assert back.words == vectors.words
    exact = format == "word2vec_binary"
    np.testing.assert_allclose(back.vectors, vectors.vectors, rtol=0 if exact else 1e-5, atol=0 if exact else 1e-6)
    assert vector_dim(path) == 4


@pytest.mark.parametrize("binary", [False, True])
def test_files_gensim_writes_are_read_and_ours_are_read_by_gensim(tmp_path, binary):
    from gensim.models import KeyedVectors

    vectors = tiny_vectors()
    theirs = tmp_path / "gensim.txt"
    vectors.to_keyed_vectors().save_word2vec_format(str(theirs), binary=binary)
    np.testing.assert_allclose(read_vectors(theirs).vectors, vectors.vectors, atol=1e-5)  # gensim: 6 decimals
    ours = write_vectors(vectors, tmp_path / "ours", "word2vec_binary" if binary else "word2vec")
    keyed = KeyedVectors.load_word2vec_format(str(ours), binary=binary)
    assert list(keyed.index_to_key) == vectors.words
    np.testing.assert_allclose(keyed.vectors, vectors.vectors, atol=0 if binary else 1e-5)  # text: 6 digits
    glove = write_vectors(vectors, tmp_path / "glove.txt", "glove")
    keyed = KeyedVectors.load_word2vec_format(str(glove), binary=False, no_header=True)
    np.testing.assert_allclose(keyed.vectors, vectors.vectors, atol=1e-5)


def test_gzip_text_and_a_vocabulary_filter_and_a_limit(tmp_path):
    vectors = tiny_vectors()
    plain = write_vectors(vectors, tmp_path / "v.txt", "glove")
    packed = tmp_path / "v.txt.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_vectors(packed).words == vectors.words
    assert read_vectors(packed, vocabulary={"cat", "mat", "dog"}).words == ["cat", "mat"]
    assert read_vectors(plain, limit=2).words == ["the", "cat"]


def test_words_with_spaces_keep_the_last_dim_fields_as_the_vector(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("2 3\nnew york 1 2 3\nparis 4 5 6\n", encoding="utf-8")
    assert detect_format(path) == "word2vec"
    vectors = read_vectors(path)
    assert vectors.words == ["new york", "paris"]
    np.testing.assert_array_equal(vectors["new york"], [1, 2, 3])


def test_repeated_words_keep_the_first_vector(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("a 1 2\nb 3 4\na 5 6\n", encoding="utf-8")
    vectors = read_vectors(path)
    assert vectors.words == ["a", "b"]
    np.testing.assert_array_equal(vectors["a"], [1, 2])


def test_fasttext_bin_gives_vectors_to_unseen_words(tmp_path):
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    sentences = [["the", "cats", "sat", "on", "the", "mats"], ["cats", "and", "dogs"]] * 20
    model = FastText(sentences, vector_size=8, min_count=1, min_n=2, max_n=3, bucket=1000, epochs=2, workers=1, seed=1)
    path = tmp_path / "model.bin"
    save_facebook_model(model, str(path))
    assert detect_format(path) == "fasttext_bin" and vector_dim(path) == 8
    vectors = read_vectors(path)
    assert "cats" in vectors and vectors.dim == 8
    np.testing.assert_allclose(vectors["cats"], model.wv["cats"], atol=1e-6)
    assert "cat" not in vectors and vectors.vector_for("cat") is not None  # from its n-grams


@pytest.mark.parametrize(
    "content, format, message",
    [
        ("2 3\na 1 2 3\n", "word2vec", "announces 2 words but the file holds 1"),
        ("2 3\na 1 2 3\nb 1 2\n", "word2vec", "line 3: 2 values after the word, expected 3"),
        ("a 1 2 3\nb 1 x 3\n", "glove", "line 2: 'x' is not a number"),
        ("a 1 2 3\nb 1 nan 3\n", "glove", "holds nan or inf"),
        ("three 3\na 1 2 3\n", "word2vec", "line 1: expected the header"),
        ("", "auto", "is empty"),
        (" 1 2 3\n", "glove", "no word before the vector"),
    ],
)
def test_malformed_text_files_name_the_line(tmp_path, content, format, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(VectorFileError, match=message):
        read_vectors(path, format)


def test_invalid_utf8_and_missing_files(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xe9 1 2\n")
    with pytest.raises(VectorFileError, match="line 1 is not valid UTF-8"):
        read_vectors(path, "glove")
    assert read_vectors(path, "glove", unicode_errors="replace").words == ["caf\ufffd"]
    with pytest.raises(VectorFileError, match="not found"):
        read_vectors(tmp_path / "nope.txt")


def test_truncated_binary_file_is_named(tmp_path):
    path = write_vectors(tiny_vectors(), tmp_path / "v.bin", "word2vec_binary")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(VectorFileError, match="entry 7 of the 7 its header announces ends early"):
        read_vectors(path)


def test_damaged_fasttext_bin_is_one_error(tmp_path):
    path = tmp_path / "broken.bin"
    path.write_bytes(struct.pack("<iii", FASTTEXT_MAGIC, 12, 8) + b"\x00" * 20)
    with pytest.raises(VectorFileError, match="cannot read .* as a fastText .bin model"):
        read_vectors(path)


def test_words_with_spaces_cannot_be_written(tmp_path):
    with pytest.raises(VectorFileError, match="holds a space"):
        write_vectors(WordVectors(["new york"], np.ones((1, 2))), tmp_path / "x", "word2vec")
    with pytest.raises(VectorFileError, match="cannot write format 'fasttext_bin'"):
        write_vectors(tiny_vectors(), tmp_path / "x", "fasttext_bin")
