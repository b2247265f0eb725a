"""The help desk of Fernwood, an online bookshop: a support SOP. Every line a customer can
see is in helpdesk.toml.

The decision function is plain Python over `said` (questions about what the customer typed,
each with example messages) and the state; it returns the id of a catalog line.
"""

from pydantic import BaseModel

from dialogue import Policy, reply


class Ticket(BaseModel):
    """What the desk knows about this conversation."""

    order_number: str | None = None


policy = Policy("helpdesk", catalog="helpdesk.toml", state=Ticket,
                persona="the help desk of Fernwood, an online bookshop",
                unclear="PARDON",  # said when nothing the customer typed matches well
                sample_states=[{"order_number": "FW-123456"}])

ORDER_NUMBER = r"FW-[0-9]{6}"


@policy.decide
def decide(said, state):
    if said("the customer says goodbye or needs nothing else",
            examples=["bye", "that's all, thanks", "goodbye", "nothing else, thank you", "ok cheers"]):
        return reply("GOODBYE", end=True)
    if said("the customer wants to talk to a person",
            examples=["can I talk to a human?", "put me through to an agent", "I want a real person",
                      "let me speak to someone", "get me a member of staff"]):
        return reply("HANDOVER")
    if said("the customer asks where their order is or when it arrives",
            examples=["where is my order?", "my books haven't arrived", "when will my parcel come?",
                      "has my order shipped yet?", "I'm still waiting for my delivery"]):
        if state.order_number:
            return reply("ORDER_CHASED", order=state.order_number)
        return reply("ASK_ORDER")
    if said("the customer gives an order number",
            examples=["FW-482913", "my order number is FW-102938", "it's order FW-554433", "order FW-120034"]):
        number = said.extract("the order number", ORDER_NUMBER, examples=["it's FW-482913"])
        return reply("ORDER_CHASED", order=number)
    if said("the customer asks when we are open or how to reach us",
            examples=["what are your opening hours?", "when are you open?", "can I call you?",
                      "what's your phone number?", "are you open on Sundays?"]):
        return reply("HOURS")
    if said("the customer greets us or asks what we can do",
            examples=["hi", "hello, can you help me?", "good morning", "hey there", "what can you do?"]):
        return reply("GREETING")
    return reply("FALLBACK")


@policy.effect("ORDER_CHASED")
def chased(state, r):
    state.order_number = r.slots["order"]
