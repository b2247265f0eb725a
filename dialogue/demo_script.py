"""Scripted conversations for `dialogue demo`: one per example policy (paths in dialogue/examples).

Each message comes with the reply a person reading the policy would expect; the demo
prints it beside what the engine chose.
"""

from __future__ import annotations

__all__ = ["DEMOS"]

DEMOS = [
    {
        # Buys what she can afford, haggles as a friend, cannot afford a second item, then insults her.
        "policy": "policies/blacksmith.py",
        "state": {"gold": 60, "reputation": 3},
        "locale": None,
        "messages": [
            ("hi there, what have you got?", "GREETING"),
            ("how much for a sword?", "OFFER"),
            ("50?! that's robbery. 40 and we have a deal", "DISCOUNT"),
            ("deal, here's the gold", "SOLD"),
            ("and a shield to go with it?", "TOO_POOR"),
            ("pfft, you're a greedy old hag", "INSULTED"),
            ("bye", "GOODBYE"),
        ],
    },
    {
        # Verifies with the billing ZIP code, gives the order number, gets a full refund.
        "policy": "policies/refunds.py",
        "state": {"order_total": "89.90", "days_since_purchase": 12},
        "locale": None,
        "messages": [
            ("Hi, I'd like to send back a lamp I ordered", "ASK_ZIP"),
            ("sure, it's 94107", "CHECK_ZIP"),
            ("the order number is KT-482913", "ORDER_FOUND"),
            ("never used, still in the box. the colour just doesn't match my room", "REFUND_ISSUED"),
            ("great, when will I see the money?", "REFUND_STATUS"),
            ("thanks, that's all", "GOODBYE"),
        ],
    },
]
