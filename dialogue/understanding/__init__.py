"""Understanding: which reachable reply fits what the person typed.

A sentence encoder turns messages into vectors; a matcher trained per policy node on the
author's own examples ranks the replies exploration found reachable. The catalog-only
guarantee stays where it was: the matcher only ranks, validation still checks.
"""

from .encoder import (Encoder, OnnxEncoder, available_encoders, create_encoder, default_encoder,
                      register_encoder)

__all__ = ["Encoder", "OnnxEncoder", "available_encoders", "create_encoder", "default_encoder",
           "register_encoder"]
