"""`dialogue chat` as a shell: echoed piped input, slash commands, the manual backend,
progress on terminals only, readline history, and an exit status that tells failed turns."""

import io
import os
import re
import select
import socket
import subprocess
import sys
import time

import pytest

from dialogue import Engine, ScriptedBackend, load_policy
from dialogue.backends import create_backend
from dialogue.backends.base import Constraint, Prompt
from dialogue.backends.manual import ManualBackend
from dialogue.cli import main
from dialogue.cli._shell import ChatShell, history_path
from dialogue.cli.chat import format_trace

from .conftest import EXAMPLES, FIXTURES, ROOT, SHOP

BLACKSMITH = EXAMPLES["blacksmith"]
FLOW = FIXTURES / "policies" / "flow.py"
INSULTED = "Mind your tongue in my forge, or find another smith."
GREETING = "Hilda's forge. Swords, shields, daggers, nails, and I mend what you break. What'll it be?"


def chat(*args, stdin="", env=None):
    """`dialogue chat ARGS` with `stdin` piped in: the finished process."""
    return subprocess.run([sys.executable, "-m", "dialogue", "chat", *map(str, args)], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, **(env or {})})


def test_piped_input_is_echoed_so_the_transcript_reads_as_a_conversation(tmp_path):
    out = chat(BLACKSMITH, "--backend", "scripted", stdin="hello\n\nhow are you\n",
               env={"XDG_STATE_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert f"you> hello\nblacksmith> {INSULTED}\nyou> \nyou> how are you\nblacksmith> {INSULTED}\n" in out.stdout
    assert "thinking" not in out.stderr  # progress is for terminals only
    assert not (tmp_path / "dialogue").exists()  # and so is the history


def test_slash_commands_show_the_state_trace_and_node_and_reset_and_quit():
    lines = ["hello", "/state", "/trace", "/reset", "/state", "/node", "/trace on", "//quit", "/trace off",
             "/help", "/nonsense", "/quit", "never sent"]
    out = chat(BLACKSMITH, "--backend", "scripted", stdin="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    states = re.findall(r"^\{.*\}$", out.stdout, re.M)
    assert ['"reputation": -2' in states[0], '"reputation": 0' in states[1]] == [True, True]
    assert "you> /trace\n  reply INSULTED" in out.stdout and "  allowed: INSULTED | GOODBYE |" in out.stdout
    assert "new session chat-2: the starting state, node main" in out.stdout
    assert "  node main (nodes: main)" in out.stdout
    assert f"you> //quit\nblacksmith> {INSULTED}\n  reply INSULTED" in out.stdout  # "//" sends "/quit"
    for command in ("/help", "/state", "/node", "/trace", "/reset", "/quit"):
        assert re.search(rf"^  {command} +\S", out.stdout, re.M), command
    assert "unknown command /nonsense; /help lists them" in out.stderr
    assert "never sent" not in out.stdout


def test_node_shows_where_the_flow_is_and_moves_a_new_session_there():
    out = chat(FLOW, "--backend", "scripted", stdin="C-1234\n/node\n/node nowhere\n/node verify\n/node\n")
    assert out.returncode == 0, out.stderr
    assert "  node order (nodes: verify, order)" in out.stdout
    assert "no node 'nowhere'; nodes: verify, order" in out.stderr
    assert "new session chat-2 in node verify, with the state as it was" in out.stdout
    assert "  node verify (nodes: verify, order)" in out.stdout


def test_a_down_server_fails_the_turns_and_the_exit_status():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = chat(BLACKSMITH, "--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m",
               "--timeout", "1", stdin="hello\nbye\n")
    assert out.returncode == 1
    assert out.stderr.count("cannot reach the OpenAI-compatible server") == 2
    assert "2 of 2 turns failed" in out.stderr and "Traceback" not in out.stderr


def test_the_manual_backend_lists_the_reachable_replies_with_their_text_and_takes_a_number():
    out = chat(BLACKSMITH, "--backend", "manual", stdin="hello\n99\nthirteen\n13\nwork?\n11\n/state\n")
    assert out.returncode == 0, out.stderr
    assert "manual backend: you pick each reply by number" in out.stdout
    assert f"you> hello\n   1  {'INSULTED':<32}  {INSULTED}\n" in out.stdout
    assert f"  13  {'GREETING':<32}  {GREETING}\n  14  FALLBACK" in out.stdout
    assert (f"  11  {'QUEST_GIVEN(ore=3, reward=40)':<32}  Bring me 3 iron ore from the old mine and I'll pay "
            "you 40 Gold.") in out.stdout
    assert out.stdout.count("  type a number from 1 to 14") == 2
    assert f"pick 1-14> 13\nblacksmith> {GREETING}" in out.stdout
    assert "blacksmith> Bring me 3 iron ore" in out.stdout and '"quest": "active"' in out.stdout


def test_the_manual_backend_asks_each_question_in_executed_mode_and_checks_typed_values():
    out = chat(SHOP, "--backend", "manual", "--mode", "executed", stdin="hi\n1\nab-12\nAB-1234\n")
    assert out.returncode == 0, out.stderr
    assert "  Question: the customer gives an order number? Answer yes or no.\n   1  yes\n   2  no" in out.stdout
    assert "  'ab-12' is not a value matching [A-Z]{2}-[0-9]{4}" in out.stdout
    assert "shop> Order AB-1234 is noted." in out.stdout


def test_the_manual_backend_takes_the_one_value_the_message_holds():
    out = chat(SHOP, "--backend", "manual", stdin="my order is AB-1234\n1\n")
    assert "   1  ORDER_NOTED(order=<AB-1234>)" in out.stdout
    assert "(the one value the message holds: AB-1234)\nshop> Order AB-1234 is noted." in out.stdout


def test_input_ending_before_a_pick_fails_the_turn():
    out = chat(BLACKSMITH, "--backend", "manual", stdin="hello\n")
    assert out.returncode == 1
    assert "the manual backend's input ended before a reply was chosen" in out.stderr
    assert "1 of 1 turns failed" in out.stderr


def test_the_manual_backend_in_python_and_in_the_registry():
    asked, shown = [], []
    backend = ManualBackend(read=lambda prompt: asked.append(prompt) or "2", write=shown.append,
                            describe=lambda s: s.lower())
    completion = backend.generate(Prompt("", "hello"), Constraint.choice(["A", "B", "C"]))
    assert completion.text == "B" and asked == ["pick 1-3> "]
    assert shown == ["   1  A                                 a", "   2  B                                 b",
                     "   3  C                                 c"]
    assert isinstance(create_backend("manual"), ManualBackend)


def test_the_tui_refuses_the_manual_backend_and_says_where_it_works(capsys):
    assert main(["tui", str(BLACKSMITH), "--backend", "manual"]) == 1
    assert "use `dialogue chat POLICY --backend manual`" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_turn_shows_progress_on_a_terminal(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))

    def slow(prompt, constraint):  # answers once the spinner has shown (or after 10 s)
        deadline = time.monotonic() + 10
        while "thinking" not in terminal.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        return "GREETING"

    engine = Engine(load_policy(BLACKSMITH), backend=ScriptedBackend(slow))
    shell = ChatShell(engine, session_id=lambda: "s", state=None, trace=False, format_trace=format_trace,
                      show_progress=True)
    assert shell.run() == 0
    assert re.search(r"\r. thinking \(\d+s\)", terminal.getvalue())
    assert shell.session.turns[0].text == GREETING


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_on_a_terminal_lines_go_to_a_history_that_the_next_chat_recalls(tmp_path):
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "TERM": "xterm"}
    first = _on_terminal(env, ["hello there\r", "\x04"])  # Ctrl-D leaves
    assert "blacksmith> " + INSULTED in first
    assert "hello there" in (tmp_path / "dialogue" / "chat_history").read_text()
    assert (tmp_path / "dialogue" / "chat_history").stat().st_mode & 0o077 == 0
    assert history_path() != tmp_path / "dialogue" / "chat_history"  # only the child saw the variable
    again = _on_terminal(env, ["\x1b[A\r", "/quit\r"])  # the up arrow recalls the line
    assert "hello there" in again and "blacksmith> " + INSULTED in again


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_manual_pick_stays_out_of_the_history(tmp_path):
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "TERM": "xterm"}
    seen = _on_terminal(env, ["hello\r", "13\r", "\x04"], backend="manual", prompts=("you> ", "pick 1-14> "))
    assert "blacksmith> " + GREETING in seen
    assert (tmp_path / "dialogue" / "chat_history").read_text().split() == ["hello"]


def _on_terminal(env, keys, backend="scripted", prompts=("you> ",)):
    """Run a chat on a pseudo-terminal, typing each of `keys` once another prompt shows."""
    leader, follower = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "dialogue", "chat", str(BLACKSMITH), "--backend", backend],
                               stdin=follower, stdout=follower, stderr=follower, cwd=ROOT, env=env)
    os.close(follower)
    seen = ""
    try:
        for typed, key in enumerate(keys):
            seen = _read_until(leader, seen, lambda text: sum(map(text.count, prompts)) > typed)
            os.write(leader, key.encode())
        process.wait(timeout=60)
        seen = _read_until(leader, seen, lambda text: False, wait=0.2)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    return seen


def _read_until(fd, seen, done, wait=60.0):
    deadline = time.monotonic() + wait
    while not done(seen) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk.decode(errors="replace")
    return seen
