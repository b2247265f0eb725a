"""A part whose extra is not installed says which `pip install 'dialogue[...]'` fixes it.

tests/test_packaging.py runs the core from the built wheel with none of the extras' packages
on the path; these tests hide one module at a time in this process.
"""

from __future__ import annotations

import sys

import pytest

from dialogue.cli import main
from dialogue.errors import BackendError, MissingExtra

from .conftest import SHOP


def test_a_missing_extra_is_a_backend_error_that_names_its_pip_install():
    exc = MissingExtra("the terminal UI", "tui", "textual")
    assert isinstance(exc, BackendError)
    assert str(exc) == ("the terminal UI needs dialogue's [tui] extra (textual is not installed); "
                        "run: pip install 'dialogue[tui]'")


def test_the_llamacpp_backend_without_llama_cpp(monkeypatch):
    from dialogue.backends.llamacpp import LlamaCppBackend

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingExtra, match=r"llama-cpp-python is not installed.*pip install 'dialogue\[embedded\]'"):
        LlamaCppBackend()


def test_the_encoder_without_onnxruntime(monkeypatch):
    from dialogue.understanding.encoder import minilm

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtra, match=r"sentence encoder needs .*onnxruntime is not installed.*"
                                           r"pip install 'dialogue\[embedded\]'"):
        minilm().embed(["hello"])


def test_encoder_understanding_without_numpy(monkeypatch):
    from dialogue import Engine, ScriptedBackend, load_policy

    engine = Engine(load_policy(SHOP), backend=ScriptedBackend.first(), understanding="encoder")
    monkeypatch.setitem(sys.modules, "numpy", None)  # find_spec("numpy") is None, as when not installed
    with pytest.raises(MissingExtra, match=r"numpy is not installed.*pip install 'dialogue\[embedded\]'"):
        engine.session("s").say("hello")


def test_dialogue_tui_without_textual_says_which_install_fixes_it(monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "dialogue.tui" or m.startswith(("dialogue.tui.", "textual"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "textual", None)
    assert main(["tui", str(SHOP)]) == 1
    assert capsys.readouterr().err.strip() == ("dialogue: the terminal UI needs dialogue's [tui] extra (textual is "
                                               "not installed); run: pip install 'dialogue[tui]'")


def test_lint_without_numpy_warns_that_overlap_was_not_checked(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "dialogue.understanding.overlap", raising=False)
    monkeypatch.setitem(sys.modules, "numpy", None)
    assert main(["lint", str(SHOP)]) == 0
    out = capsys.readouterr().out
    assert "questions were not checked for overlap: the overlap check needs dialogue's [embedded] extra" in out
