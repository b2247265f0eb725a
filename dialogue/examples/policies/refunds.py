"""A refund SOP for an online store; every line a customer sees is in catalogs/refunds.toml."""

from decimal import Decimal

from pydantic import BaseModel

from dialogue import Policy, reply


class Case(BaseModel):
    """One customer's refund case. The order fields come from the order system."""

    customer_id: str = "C-10442"
    verified: bool = False
    failed_checks: int = 0
    order_number: str | None = None
    order_total: Decimal = Decimal("89.90")
    days_since_purchase: int = 12
    refunds_last_90_days: int = 0
    refund_issued: bool = False
    refund_amount: Decimal = Decimal("0.00")
    escalated: bool = False


policy = Policy("refunds", catalog="../catalogs/refunds.toml", state=Case,
                persona="the refunds assistant of Larkspur, an online homeware store",
                sample_states=[
                    {"failed_checks": 1}, {"failed_checks": 3}, {"verified": True},
                    {"verified": True, "order_number": "KT-482913"},
                    {"verified": True, "order_number": "KT-482913", "order_total": "640.00"},
                    {"verified": True, "order_number": "KT-482913", "days_since_purchase": 45},
                    {"refund_issued": True, "refund_amount": "89.90"}])

REFUND_WINDOW_DAYS = 30
AUTO_REFUND_LIMIT = 250  # larger refunds need a specialist's approval
PARTIAL_REFUND_PERCENT = 50  # for used or worn items
REVIEW_AFTER_REFUNDS = 3  # refunds in the last 90 days that trigger an account review
MAX_FAILED_CHECKS = 3
ZIP_CODE = r"[0-9]{5}"
ORDER_NUMBER = r"[A-Z]{2}-[0-9]{6}"


# The SOP in four steps: verify the customer, find the order, then either refuse a late
# return (window) or decide the refund (outcome). Each node's prompt holds only its own step.


def wrap_up(said):
    """What a customer can say at any step: goodbye ends the conversation, a complaint is logged."""
    if said("the customer says goodbye or needs nothing else", examples=["that's all, thanks", "bye", "ok cheers",
                                                                          "goodbye", "nothing else, thank you",
                                                                          "I'm done here"]):
        return reply("GOODBYE", end=True)
    if said("the customer complains about our service or asks for a manager",
            examples=["this is ridiculous, I want to complain", "let me speak to your manager",
                      "your service is terrible", "I want to make a formal complaint",
                      "nobody has helped me, this is unacceptable"]):
        return reply("COMPLAINT_LOGGED")
    return None


@policy.node("verify")
def verify(said, state):
    if done := wrap_up(said):
        return done
    if state.refund_issued:
        return reply("REFUND_STATUS", amount=state.refund_amount)
    if state.failed_checks >= MAX_FAILED_CHECKS:
        return reply("VERIFY_LOCKED")
    if said("the customer gives a ZIP code", examples=["94107", "my zip is 10001", "it's 60614",
                                                                 "the postcode is 73301", "billing zip: 02139"]):
        # The effect checks it against the account and moves to `order` when it matches.
        return reply("CHECK_ZIP", zip=said.extract("the ZIP code", ZIP_CODE, examples=["zip 94107"]))
    if state.failed_checks:
        return reply("ZIP_MISMATCH")
    if said("the customer wants a refund or to return an item",
            examples=["I want my money back", "can I return these boots?", "refund please",
                      "I'd like to send something back", "how do I return an order?",
                      "I need a refund for my purchase"]):
        return reply("ASK_ZIP")
    if said("the customer greets us or asks what we can do", examples=["hi", "hello, can you help me?", "good morning",
                                                                                    "hey there", "what can you do?"]):
        return reply("WELCOME")
    return reply("FALLBACK")


@policy.node("order")
def order(said, state):
    if done := wrap_up(said):
        return done
    if said("the customer gives an order number", examples=["KT-482913", "order AB-102938",
                                                                         "my order number is ZX-554433",
                                                                         "it was order QP-120034"]):
        number = said.extract("the order number", ORDER_NUMBER, examples=["it's KT-482913"])
        # The effect looks the order up and moves to `window` instead when it is too old.
        return reply("ORDER_FOUND", order=number, goto="outcome")
    return reply("ASK_ORDER")


@policy.node("window")
def window(said, state):
    if done := wrap_up(said):
        return done
    if state.order_number is None:  # never without an order: back a step
        return reply("ASK_ORDER", goto="order")
    return reply("OUTSIDE_WINDOW", order=state.order_number, days=REFUND_WINDOW_DAYS)


@policy.node("outcome")
def outcome(said, state):
    if done := wrap_up(said):
        return done
    if state.refund_issued:
        return reply("REFUND_STATUS", amount=state.refund_amount)
    if state.order_number is None:  # never without an order: back a step
        return reply("ASK_ORDER", goto="order")
    if state.days_since_purchase > REFUND_WINDOW_DAYS:
        return reply("OUTSIDE_WINDOW", order=state.order_number, days=REFUND_WINDOW_DAYS, goto="window")
    if state.refunds_last_90_days >= REVIEW_AFTER_REFUNDS:
        return reply("ACCOUNT_REVIEW")
    if said("the customer bought the item to resell it", examples=["I resell them online", "bought ten to flip",
                                                                               "I sell these in my shop", "I buy in bulk to resell"]):
        return reply("ACCOUNT_REVIEW")
    if said("the customer wants the money paid to a different card, account or gift card",
            examples=["can you send it to my other card?", "store credit instead",
                      "pay it into my bank account", "can I get a gift card instead?"]):
        return reply("ORIGINAL_METHOD_ONLY")
    if said("the customer has used or worn the item", examples=["I wore them twice", "used it for a week",
                                                                             "I've been using it for a while", "worn a few times",
                                                                             "it's been washed already"]):
        amount = round(state.order_total * PARTIAL_REFUND_PERCENT / 100, 2)
        if amount > AUTO_REFUND_LIMIT:
            return reply("NEEDS_APPROVAL", amount=amount)
        return reply("PARTIAL_REFUND", amount=amount, order=state.order_number)
    if not said("the item is unused, or arrived damaged or faulty",
                examples=["still in the box", "never worn, wrong size", "it arrived cracked",
                          "never used", "brand new with the tags on", "it came broken",
                          "it doesn't work", "unopened"]):
        return reply("ASK_CONDITION")
    if state.order_total > AUTO_REFUND_LIMIT:
        return reply("NEEDS_APPROVAL", amount=state.order_total)
    return reply("REFUND_ISSUED", amount=state.order_total, order=state.order_number)


# The account system, stubbed. Kept out of the state, so the model never sees the ZIP on file.
ZIP_ON_FILE = {"C-10442": "94107"}


@policy.effect("CHECK_ZIP", goto="order")
def check_zip(state, r):
    if ZIP_ON_FILE.get(state.customer_id) == r.slots["zip"]:
        state.verified = True
        return "order"
    state.failed_checks += 1
    return None  # stay in `verify`


@policy.effect("ORDER_FOUND", goto="window")
def note_order(state, r):
    state.order_number = r.slots["order"]  # a deployment loads the order's total and date here
    if state.days_since_purchase > REFUND_WINDOW_DAYS:
        return "window"
    return None  # on to `outcome`


@policy.effect("REFUND_ISSUED")
@policy.effect("PARTIAL_REFUND")
def refunded(state, r):
    state.refund_issued = True
    state.refund_amount = r.slots["amount"]
    state.refunds_last_90_days += 1


@policy.effect("NEEDS_APPROVAL")
@policy.effect("ACCOUNT_REVIEW")
def escalate(state, r):
    state.escalated = True  # the case goes to the specialist queue
