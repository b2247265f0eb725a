"""`dialogue chat` and `dialogue demo`: talk to a policy, or watch a scripted conversation."""

from __future__ import annotations

import argparse
import itertools
import time

from ..backends.scripted import FIRST_REACHABLE
from ._shell import ChatShell, spinner
from .tree import parse_state


ORDER = 30


def add(commands) -> None:
    p = commands.add_parser("chat", help="talk to a policy in the terminal",
                            description="An interactive conversation with a policy. Every reply is "
                                        "a catalog line; --trace shows what the model was allowed "
                                        "to say, what it chose and how long it took.")
    p.add_argument("policy", metavar="POLICY", help="a policies/NAME.py file")
    _engine_options(p)
    p.add_argument("--state", metavar="JSON", help='initial state as JSON, e.g. \'{"gold": 10}\'')
    p.add_argument("--trace", action="store_true", help="show each turn's trace")
    p.add_argument("--db", metavar="FILE|URL", help="keep the conversation and its audit trail in this "
                                                    "session store: an SQLite file (created if missing) or a "
                                                    "postgresql:// URL")
    p.add_argument("--session", metavar="ID", help="with --db: the session to resume, or to start "
                                                   "under this id (default: a new id)")
    p.add_argument("--on-change", choices=["error", "continue"], default="error",
                   help="with --db: resuming a session whose policy or catalog changed is an error "
                        "(default) or continues on the new version")
    p.set_defaults(run=run_chat)

    d = commands.add_parser("demo", help="run scripted conversations with the example policies",
                            description="Run a short scripted conversation on each example policy "
                                        "and print every turn's message, reply id, text and latency.")
    _engine_options(d)
    d.set_defaults(run=run_demo)


def _engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=["prompted", "executed"], default="prompted",
                   help="prompted: one model call a turn (default); executed: one call per question")
    p.add_argument("--locale", metavar="L", help="render replies in this catalog locale")
    p.add_argument("--backend", default="llamacpp", metavar="NAME",
                   help="llamacpp (default: the embedded SmolLM2-135M), openai (any OpenAI-compatible "
                        "server), transformers, scripted (no model: always the first reachable reply), "
                        "manual (no model: you pick each reply by number), or a third-party backend's name")
    p.add_argument("--base-url", metavar="URL", help="openai backend: the server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", metavar="M", help="openai: the model name on the server; "
                                                "transformers: a .gguf file or checkpoint directory")
    p.add_argument("--server", metavar="KIND",
                   choices=["openai", "vllm", "sglang", "llama-server", "llama-cpp-python", "ollama"],
                   help="openai backend: how to send the constraint (default: ask the server)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="openai backend: seconds before a request times out (default 60); "
                        "the API key is read from OPENAI_API_KEY")
    p.add_argument("--understanding", choices=["encoder", "model", "hybrid"],
                   help="who picks the reply: encoder (a sentence encoder's matcher trained on the policy's "
                        "examples; default on the embedded model), model (the language model reads the "
                        "prompt; default on other backends) or hybrid (the model among the matcher's best)")
    p.add_argument("--encoder", metavar="NAME|PATH",
                   help="the sentence encoder: minilm (default, embedded) or a sentence-transformers ONNX folder")
    p.add_argument("--dev", action="store_true", help="development switch: allow draft lines")


def make_engine(args: argparse.Namespace, policy_path: str, backend=None):
    from ..engine import Engine, default_understanding
    from ..policy import load_policy

    policy = load_policy(policy_path)
    backend = backend or args.backend
    engine = Engine(policy, mode=args.mode, backend=backend,
                    locale=getattr(args, "locale", None), allow_drafts=args.dev,
                    store=getattr(args, "db", None), on_change=getattr(args, "on_change", "error"),
                    understanding=args.understanding or default_understanding(backend), encoder=args.encoder)
    if engine.understanding != "model":
        with spinner(f"training the matcher of {policy.name}"):
            engine.prepare()
    return engine


def backend_options(args: argparse.Namespace) -> dict:
    """Keyword options for the chosen backend's factory, from the command line."""
    if args.backend == "openai":
        return {"base_url": args.base_url, "model": args.model, "server": args.server,
                "timeout": args.timeout}
    if args.backend == "transformers" and args.model:
        return {"model_path": args.model}
    return {}


def load_backend(args: argparse.Namespace):
    """The backend; the embedded model is left to load on first use when the matcher decides
    (it then runs only to fill extracted values the message does not decide)."""
    from ..backends import create_backend

    if args.backend == "llamacpp" and args.understanding != "model" and not backend_options(args):
        return None
    with spinner(f"loading the {args.backend} backend"):
        return create_backend(args.backend, **backend_options(args))


def run_chat(args: argparse.Namespace) -> int:
    backend = load_backend(args)
    engine = make_engine(args, args.policy, backend)
    shell = ChatShell(engine, session_id=_session_ids(args), state=parse_state(args.state) or None,
                      trace=args.trace, format_trace=format_trace,
                      show_progress=not getattr(backend, "interactive", False))
    if getattr(backend, "name", None) == "manual" and backend.describe is None:
        backend.describe = shell.reply_text  # list each reply with the text it would say
    print(f"Talking to {engine.policy.name} ({engine.mode} mode, {_who_answers(engine, backend)}). "
          "/help lists the commands; Ctrl-D leaves.")
    if args.db:
        session = shell.session
        print(f"Session {session.id} in {engine.store.path}, {len(session.turns)} turns so far; "
              f"resume with --session {session.id}.")
    return shell.run()


def _who_answers(engine, backend) -> str:
    """Who picks the replies, in words (the scripted and manual backends say what they do)."""
    name = getattr(backend, "name", None)
    if engine.understanding != "model":
        return f"{engine.understanding} understanding"
    if name == "scripted" and backend.model == FIRST_REACHABLE:
        return "scripted backend: always the first reachable reply"
    if name == "manual":
        return "manual backend: you pick each reply by number"
    return f"{name or 'llamacpp'} backend"


def _session_ids(args: argparse.Namespace):
    """The ids of the chat's sessions: --session (or a new id) first, then a new one per /reset."""
    first = args.session or _new_session_id(args.db)
    later = (f"{first}-{n}" if not args.db else _new_session_id(args.db) for n in itertools.count(2))
    ids = itertools.chain([first], later)
    return lambda: next(ids)


def _new_session_id(db: str | None) -> str:
    """"chat" in memory; in a store, a new id that names the time it started."""
    if not db:
        return "chat"
    import secrets

    return f"chat-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def format_trace(turn) -> str:
    t = turn.trace
    lines = [f"  reply {turn.reply.id}  {1000 * t.timings.get('total_s', 0):.0f} ms"
             f"  calls {t.model_calls}  tokens new {t.tokens_new} reused {t.tokens_reused}"]
    if t.reachable:
        lines.append("  allowed: " + " | ".join(t.reachable))
    if t.candidates:
        best = " | ".join(f"{c['reply']} {c['score']:.2f}" for c in t.candidates[:4])
        weak = "  (weak: nothing matched well)" if t.unclear else ""
        lines.append(f"  matcher ({t.understanding}): {best}; match {t.confidence:.2f}, "
                     f"threshold {t.threshold:.2f}{weak}")
    if t.raw:
        who = f" ({t.backend} {t.model})" if t.backend else ""
        lines.append(f"  model chose{who}: " + " ; ".join(repr(r) for r in t.raw))
    for step in t.steps:
        lines.append(f"  {step['kind']}: {step['question']} -> {step['answer']}")
    if t.path and not t.steps:
        lines.append("  path: " + " / ".join(t.path))
    if t.fallback:
        lines.append(f"  FALLBACK: {t.fallback_reason}")
    return "\n".join(lines)


def run_demo(args: argparse.Namespace) -> int:
    from ..demo_script import DEMOS
    from ..examples import FOLDER

    backend = load_backend(args)
    right = total = 0
    for demo in DEMOS:
        engine = make_engine(args, str(FOLDER / demo["policy"]), backend)
        locale = args.locale or demo.get("locale")
        session = engine.session("demo", state=demo.get("state"), locale=locale)
        print(f"\n== {engine.policy.name} ({engine.mode} mode, {engine.understanding} understanding, "
              f"{session.locale}) ==")
        for message, expected in demo["messages"]:
            turn = session.say(message)
            ms = 1000 * turn.trace.timings.get("total_s", 0.0)
            flag = "  [fallback]" if turn.trace.fallback else ""
            mark = "ok" if turn.reply.id == expected else f"expected {expected}"
            print(f"  you: {message}\n  {turn.reply.id:<18} {ms:6.0f} ms  {turn.text}{flag}\n"
                  f"  {'':<18} ({mark})")
            right += turn.reply.id == expected
            total += 1
            if session.ended:
                break
    print(f"\n{right} of {total} turns got the reply a person would expect.")
    print(f"The example policies are in {FOLDER / 'policies'}; `dialogue init FOLDER` starts one of your own.")
    return 0
