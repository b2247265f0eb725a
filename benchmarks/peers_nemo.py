"""NeMo Guardrails on the same messages: run by peers.py with benchmarks/.venv-peers/bin/python.

Reads a JSON job on stdin (config folder, messages), answers each message with a fresh
conversation and prints one JSON object per message: reply text, seconds, LLM calls.
"""

import json
import logging
import os
import sys
import time

from nemoguardrails import LLMRails, RailsConfig


def main() -> None:
    # NeMo answers "an internal error has occurred" and logs the cause: keep the log on stderr.
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("NEMO_LOG", "WARNING"))
    job = json.load(sys.stdin)
    rails = LLMRails(RailsConfig.from_path(job["config"]))
    for message in job["messages"]:
        t = time.perf_counter()
        try:
            result = rails.generate(messages=[{"role": "user", "content": message}])
            text = result["content"] if isinstance(result, dict) else str(result)
            error = None
        except Exception as exc:  # a peer's failure is a measured outcome, not a crash
            text, error = "", f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - t
        calls = len(rails.explain().llm_calls) if error is None else 0
        print(json.dumps({"message": message, "text": text, "seconds": seconds, "calls": calls,
                          "error": error}), flush=True)


if __name__ == "__main__":
    main()
