"""Scripted conversations for `dialogue demo`: one per example policy (paths from the repo root)."""

from __future__ import annotations

__all__ = ["DEMOS"]

DEMOS = [
    {
        # Buys what she can afford, haggles as a friend, cannot afford a second item, then insults her.
        "policy": "policies/blacksmith.py",
        "state": {"gold": 60, "reputation": 3},
        "locale": None,
        "messages": [
            "hi there, what have you got?",
            "how much for a sword?",
            "50?! that's robbery. 40 and we have a deal",
            "deal, here's the gold",
            "and a shield to go with it?",
            "pfft, you're a greedy old hag",
            "bye",
        ],
    },
    {
        # Verifies with the billing ZIP code, gives the order number, gets a full refund.
        "policy": "policies/refunds.py",
        "state": {"order_total": "89.90", "days_since_purchase": 12},
        "locale": None,
        "messages": [
            "Hi, I'd like to send back a lamp I ordered",
            "sure, it's 94107",
            "the order number is KT-482913",
            "never used, still in the box. the colour just doesn't match my room",
            "great, when will I see the money?",
            "thanks, that's all",
        ],
    },
]
