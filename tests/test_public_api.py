import subprocess
import sys

import dialogue


def test_all_is_sorted_and_complete():
    assert dialogue.__all__ == sorted(dialogue.__all__)
    for name in dialogue.__all__:
        assert getattr(dialogue, name) is not None


def test_error_tree_has_one_root():
    from dialogue import errors

    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, dialogue.DialogueError)
    assert not issubclass(errors.AuthorError, errors.RunError)
    assert not issubclass(errors.RunError, errors.AuthorError)


def test_import_is_light():
    code = ("import sys, dialogue; heavy = [m for m in ('llama_cpp', 'outlines', 'outlines_core', "
            "'torch', 'openai', 'textual', 'lark') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
