"""The peer: NeMo Guardrails (Colang 1.0) on the same model and messages as the engine.

`make bench-peers` runs this with the main .venv. It answers the first N blacksmith
messages of tests/data/understanding with the engine (embedded model), then serves the
same GGUF with `python -m llama_cpp.server` on 127.0.0.1 (one server for completions,
one for embeddings, which NeMo uses to retrieve its examples) and runs NeMo in its own
virtual environment (benchmarks/.venv-peers) through peers_nemo.py. The Colang config
is generated from the policy's catalog: one `define bot` canned message per line, one
user intent per line with the same examples, one flow per intent.

Writes benchmarks/results/peers.json; `benchmarks/run.py` folds its rows into the table.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import POLICIES, RESULTS, ROOT, UNDERSTANDING, median  # noqa: E402

PEERS_PYTHON = ROOT / "benchmarks" / ".venv-peers" / "bin" / "python"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=25)
    args = parser.parse_args(argv)
    if not PEERS_PYTHON.exists():
        raise SystemExit(f"{PEERS_PYTHON} is missing; run `make bench-peers`")
    from dialogue import load_policy

    policy = load_policy(POLICIES["blacksmith"])
    cases = [c for c in tomllib.loads((UNDERSTANDING / "blacksmith.toml").read_text())["case"]
             if not c.get("state")][:args.messages]
    engine = _engine_turns(policy, cases)
    print(f"engine: {len(engine)} turns, median {median([e['seconds'] for e in engine]):.2f} s", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="nemo-") as folder:
        with _server(embedding=False) as chat, _embeddings() as embed:
            _write_config(Path(folder), policy, chat, embed)
            nemo = _nemo_turns(Path(folder), [c["message"] for c in cases])
    rows = _rows(policy, cases, engine, nemo)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows,
           "samples": {"engine": engine, "nemo": nemo, "cases": cases}}
    (RESULTS / "peers.json").write_text(json.dumps(out, indent=1, default=str))
    for row in rows:
        print(f"{row['measure']:<48} {row['value']:>10.3f} {row['unit']:<9} {row['note']}")
    return 0


def _engine_turns(policy, cases) -> list[dict]:
    from dialogue import Engine

    engine = Engine(policy)
    engine.session("peer-prime").say("hello")
    out = []
    for i, case in enumerate(cases):
        turn = engine.session(f"peer-{i}").say(case["message"])
        out.append({"message": case["message"], "id": turn.reply.id, "text": turn.text,
                    "seconds": turn.trace.timings["total_s"], "calls": turn.trace.model_calls})
    engine.close()
    return out


class _server:
    """`python -m llama_cpp.server` on a free port of 127.0.0.1, stopped on exit."""

    def __init__(self, *, embedding: bool) -> None:
        self.embedding = embedding

    def __enter__(self) -> str:
        from dialogue.backends.llamacpp import default_model_path

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2",
             *(["--embedding", "true"] if self.embedding else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                return url
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("llama_cpp.server exited; is the [server] extra installed?")
                time.sleep(0.5)
        raise SystemExit("llama_cpp.server did not start in 5 minutes")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class _embeddings:
    """An OpenAI-style /v1/embeddings endpoint on 127.0.0.1: the same GGUF, mean-pooled.

    `llama_cpp.server --embedding` returns one vector per token for this model (it cannot
    set a pooling type), which NeMo's index cannot use; one vector per text is what an
    embeddings endpoint is expected to answer.
    """

    def __enter__(self) -> str:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import llama_cpp

        from dialogue.backends.llamacpp import default_model_path

        llm = llama_cpp.Llama(str(default_model_path()), embedding=True, n_ctx=2048, verbose=False,
                              pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                texts = body.get("input", [])
                texts = [texts] if isinstance(texts, str) else list(texts)
                with lock:
                    vectors = [llm.embed(text) for text in texts]
                out = json.dumps({"object": "list", "model": body.get("model", "smollm2"),
                                  "data": [{"object": "embedding", "index": i, "embedding": v}
                                           for i, v in enumerate(vectors)],
                                  "usage": {"prompt_tokens": 0, "total_tokens": 0}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.llm = llm
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.llm.close()


def _name(rid: str) -> str:
    return rid.lower()


def _write_config(folder: Path, policy, chat_url: str, embed_url: str) -> None:
    (folder / "config.yml").write_text(
        "models:\n"
        f"  - type: main\n    engine: openai\n    model: smollm2\n"
        f"    parameters:\n      base_url: {chat_url}\n      api_key: none\n      temperature: 0\n"
        f"  - type: embeddings\n    engine: openai\n    model: smollm2\n"
        f"    parameters:\n      base_url: {embed_url}\n      api_key: none\n"
        f"instructions:\n  - type: general\n    content: |\n      You are {policy.persona}.\n")
    examples = _examples_by_reply(policy)
    blocks = []
    for response in policy.catalog:
        if response.status == "retired":
            continue
        name = _name(response.id)
        said = examples.get(response.id) or list(response.examples) or ([response.when] if response.when else [])
        if not said:
            continue
        blocks.append(f"define user {name}\n" + "".join(f"  {json.dumps(e)}\n" for e in said))
        blocks.append(f"define bot reply_{name}\n  {json.dumps(response.text)}\n")
        blocks.append(f"define flow {name}\n  user {name}\n  bot reply_{name}\n")
    (folder / "rails.co").write_text("\n".join(blocks))


def _examples_by_reply(policy) -> dict[str, list[str]]:
    """The examples of the `said` questions, attached to the reply their yes-branch reaches."""
    from dialogue import explore

    out: dict[str, list[str]] = {}
    questions = {q.text: q for q in policy.questions_of()}
    for path in explore(policy, policy.new_state({})).paths:
        asked = [s for s in path.steps if s.kind == "ask" and s.answer is True]
        if asked and isinstance(questions.get(asked[-1].question).examples, (list, tuple)):
            out.setdefault(path.reply.id, list(questions[asked[-1].question].examples))
    return out


def _nemo_turns(folder: Path, messages: list[str]) -> list[dict]:
    job = json.dumps({"config": str(folder), "messages": messages})
    proc = subprocess.run([str(PEERS_PYTHON), str(ROOT / "benchmarks" / "peers_nemo.py")], input=job,
                          capture_output=True, text=True, env={"OPENAI_API_KEY": "none", "PATH": "/usr/bin:/bin",
                                                               "HOME": str(Path.home())})
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    errors = [line[:400] for line in proc.stderr.splitlines() if "ERROR" in line or "Error" in line]
    if errors:  # the first ones are the cause; later ones tend to repeat a consequence
        print("NeMo logged errors (first 10):\n" + "\n".join(errors[:10]), file=sys.stderr)
    if not lines:
        raise SystemExit(f"NeMo produced no answers:\n{proc.stderr[-3000:]}")
    return lines


def _template_regex(text: str) -> re.Pattern:
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", ".+?", re.escape(text)))


def _rows(policy, cases, engine, nemo) -> list[dict]:
    templates = {r.id: _template_regex(r.text) for r in policy.catalog}

    def line_of(text: str) -> str | None:
        return next((rid for rid, rx in templates.items() if rx.fullmatch(text.strip())), None)

    nemo_ids = [line_of(n["text"]) for n in nemo]
    n = len(nemo)
    nemo_s, engine_s = median([x["seconds"] for x in nemo]), median([e["seconds"] for e in engine])
    off = sum(i is None for i in nemo_ids) / n
    nemo_ok = sum(i == c["expect"] for i, c in zip(nemo_ids, cases)) / n
    engine_ok = sum(e["id"] == c["expect"] for e, c in zip(engine, cases)) / len(engine)
    calls = median([x["calls"] for x in nemo])
    return [{"group": "peer", "measure": "(d) NeMo Guardrails 0.24.1, Colang 1.0", "value": nemo_s, "unit": "s",
             "baseline": f"engine {engine_s:.2f} s", "ratio": nemo_s / engine_s,
             "note": f"ratio = NeMo / engine; {n} NPC messages; {calls:g} LLM calls a turn vs 1; "
                     f"off-catalog {off:.0%} vs 0%; accuracy {nemo_ok:.0%} vs {engine_ok:.0%}"}]


if __name__ == "__main__":
    sys.exit(main())
