"""The embedded sentence encoder: real MiniLM weights on onnxruntime, pinned by hash."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from dialogue.errors import BackendError
from dialogue.understanding import OnnxEncoder, create_encoder, default_encoder
from dialogue.understanding.encoder import MINILM_ID, minilm


def test_vectors_are_unit_length_and_batched_like_single():
    encoder = default_encoder()
    texts = ["how much for a sword?", "bye", "a much longer message " * 20]
    batch = encoder.embed(texts)
    assert batch.shape == (3, 384)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for text, row in zip(texts, batch):
        assert np.allclose(encoder.embed([text])[0], row, atol=1e-4)


def test_meaning_is_closer_than_words():
    encoder = default_encoder()
    a, b, c = encoder.embed(["what does a blade cost?", "how much for a sword?", "see you tomorrow"])
    assert a @ b > a @ c + 0.2


def test_model_id_and_pinned_hash_are_known():
    encoder = default_encoder()
    assert encoder.model_id == MINILM_ID
    assert encoder.hash == "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


def test_many_threads_share_one_session():
    encoder = default_encoder()
    expected = encoder.embed(["hello there"])[0]
    results, errors = [], []

    def work():
        try:
            for _ in range(10):
                results.append(encoder.embed(["hello there"])[0])
        except Exception as exc:  # collected: the test fails below with it
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 40
    assert all(np.allclose(r, expected, atol=1e-5) for r in results)


def test_an_onnx_folder_by_path(tmp_path):
    shipped = minilm()
    folder = tmp_path / "my-encoder"
    (folder / "onnx").mkdir(parents=True)
    shutil.copy(shipped.model_path, folder / "onnx" / "model.onnx")
    shutil.copy(shipped.tokenizer_path, folder / "tokenizer.json")
    encoder = create_encoder(str(folder))
    assert isinstance(encoder, OnnxEncoder) and encoder.model_id == "my-encoder"
    assert np.allclose(encoder.embed(["hi"]), default_encoder().embed(["hi"]), atol=1e-5)


def test_a_damaged_model_file_is_refused(tmp_path):
    shipped = minilm()
    damaged = tmp_path / "model.onnx"
    data = bytearray(shipped.model_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    encoder = OnnxEncoder(damaged, shipped.tokenizer_path, sha256=shipped.hash)
    with pytest.raises(BackendError, match="SHA-256"):
        encoder.embed(["hello"])


def test_missing_or_unknown_encoders_say_what_to_do(tmp_path):
    with pytest.raises(BackendError, match="no encoder named 'nope'"):
        create_encoder("nope")
    with pytest.raises(BackendError, match="no ONNX model"):
        create_encoder(str(tmp_path))
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(BackendError, match="tokenizer.json"):
        create_encoder(str(tmp_path))
