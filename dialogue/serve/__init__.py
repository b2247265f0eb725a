"""`dialogue serve`: the engine over HTTP, for game engines and chat backends in any language.

`make_app(engines, ...)` builds the ASGI app (FastAPI) to run with uvicorn or mount in an
existing ASGI server. Needs the `serve` extra: ``pip install 'dialogue[serve]'``.
"""

from __future__ import annotations

from .app import make_app

__all__ = ["make_app"]
