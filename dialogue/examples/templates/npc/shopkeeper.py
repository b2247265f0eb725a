"""Brann, who keeps the village shop: a game NPC. Every line he can say is in shopkeeper.toml.

The decision function is plain Python over `said` (questions about what the player typed,
each with example messages) and the state; it returns the id of a catalog line.
"""

from pydantic import BaseModel

from dialogue import Policy, reply


class Player(BaseModel):
    """What Brann knows about the player."""

    gold: int = 10
    inventory: list[str] = []


policy = Policy("shopkeeper", catalog="shopkeeper.toml", state=Player,
                persona="Brann, the cheerful keeper of a village shop",
                unclear="PARDON",  # said when nothing the player typed matches well
                sample_states=[{"gold": 0}, {"gold": 50, "inventory": ["potion"]}])

PRICES = {"potion": 8, "rope": 3, "lantern": 12}


@policy.decide
def decide(said, state):
    if said("the player says goodbye", examples=["bye", "farewell", "see you later", "I'm off",
                                                 "goodbye, Brann", "take care"]):
        return reply("GOODBYE", end=True)
    if said("the player wants to buy something or asks a price",
            examples=["I'd like a potion", "how much is the rope?", "sell me a lantern",
                      "what does a potion cost?", "I want to buy something", "can I get some rope?"]):
        item = said.pick("which item does the player want?", list(PRICES),
                         examples={"potion": ["a healing draught", "something for my wounds"],
                                   "rope": ["a coil of rope", "something to climb with"],
                                   "lantern": ["a lamp", "a light for the caves"]})
        if state.gold < PRICES[item]:  # the state guards the sale: gold never goes below 0
            return reply("TOO_POOR", item=item, price=PRICES[item])
        return reply("SOLD", item=item, price=PRICES[item])
    if said("the player greets Brann or asks what he sells",
            examples=["hello", "hi there", "good morning", "what do you sell?", "show me your wares",
                      "greetings, shopkeeper"]):
        return reply("GREETING")
    return reply("FALLBACK")


@policy.effect("SOLD")
def sold(state, r):
    state.gold -= int(r.slots["price"])
    state.inventory.append(r.slots["item"])
