"""Over-long messages (in characters or tokens) and lone surrogates are refused before a backend or store sees them."""

import sqlite3

import pytest

from dialogue import Engine, ScriptedBackend
from dialogue.errors import MessageRejected


class CountingBackend(ScriptedBackend):
    """A scripted backend that counts tokens with the embedded model's own tokenizer."""

    def __init__(self, answers) -> None:
        import llama_cpp

        from dialogue.backends.llamacpp import default_model_path

        super().__init__(answers)
        self._vocab = llama_cpp.Llama(str(default_model_path()), vocab_only=True, verbose=False)
        self.counted: list[str] = []

    def count_tokens(self, text: str) -> int:
        self.counted.append(text)
        return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def close(self) -> None:
        self._vocab.close()


@pytest.fixture
def counting():
    backend = CountingBackend(["GREETING"])
    yield backend
    backend.close()


def stored_turns(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM turns").fetchone()[0]


@pytest.mark.model
def test_a_message_of_too_many_tokens_is_rejected_before_the_backend_and_the_store(shop, counting, tmp_path):
    engine = Engine(shop, backend=counting, understanding="model", store=tmp_path / "s.db")
    emoji = "\N{GRINNING FACE}" * 4000  # under the 4,000-character limit, about 15,000 tokens
    with pytest.raises(MessageRejected, match=r"message of \d+ tokens is over the limit of 2000 \(4000 characters\)"):
        engine.session("s").say(emoji)
    assert counting.calls == [] and stored_turns(tmp_path / "s.db") == 0
    engine.close()


@pytest.mark.model
def test_a_long_plain_message_within_the_token_limit_is_answered(shop, counting):
    engine = Engine(shop, backend=counting, understanding="model")
    assert engine.session("s").say("hello there " * 300).reply.id == "GREETING"
    assert len(counting.counted) == 1


@pytest.mark.model
def test_a_short_message_is_not_even_counted(shop, counting):
    engine = Engine(shop, backend=counting, understanding="model", max_message_tokens=50)
    engine.session("s").say("hello")  # 5 bytes: at most 5 tokens
    assert counting.counted == []


@pytest.mark.parametrize("understanding", ["model", "encoder"])
def test_a_lone_surrogate_is_rejected_before_the_backend_and_the_store(shop, understanding, tmp_path):
    backend = ScriptedBackend(["GREETING"])
    engine = Engine(shop, backend=backend, understanding=understanding, store=tmp_path / "s.db")
    with pytest.raises(MessageRejected, match="lone surrogate at character 6"):
        engine.session("s").say("hello \ud83d there")
    assert backend.calls == [] and stored_turns(tmp_path / "s.db") == 0
    engine.close()


def test_the_character_limit_still_holds(shop):
    engine = Engine(shop, backend=ScriptedBackend(["GREETING"]), understanding="model")
    with pytest.raises(MessageRejected, match="4001 characters is over the limit of 4000"):
        engine.session("s").say("a" * 4001)
