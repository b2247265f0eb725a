"""Hilda, a village blacksmith: a game NPC whose lines are in catalogs/blacksmith.toml (en, de)."""

from typing import Literal

from pydantic import BaseModel

from dialogue import Policy, reply


class Player(BaseModel):
    """What Hilda knows about the player."""

    gold: int = 20
    inventory: list[str] = []
    reputation: int = 0  # Hilda's opinion of the player
    quest: Literal["none", "active", "done"] = "none"
    offer: str | None = None  # the item Hilda last named a price for
    offer_price: int = 0


policy = Policy("blacksmith", catalog="../catalogs/blacksmith.toml", state=Player,
                persona="Hilda, a gruff blacksmith in a mountain village",
                sample_states=[
                    {"gold": 0}, {"reputation": -4}, {"quest": "active"}, {"offer": "nails", "offer_price": 2},
                    {"gold": 60, "reputation": 3, "offer": "sword", "offer_price": 50, "quest": "active",
                     "inventory": ["iron ore", "iron ore", "iron ore", "wolf pelt", "bandit axe"]}])

PRICES = {"sword": 50, "shield": 30, "dagger": 15, "nails": 2}
LOOT_PRICES = {"iron ore": 5, "bandit axe": 12, "wolf pelt": 3}
REPAIR_COST = 5
HAGGLE_REPUTATION = 3  # Hilda haggles with friends only
GRUDGE_REPUTATION = -4  # and does no business with enemies
QUEST_ORE = 3
QUEST_REWARD = 40


@policy.decide
def decide(said, state):
    if said("the player insults or threatens Hilda", examples=["your swords are junk", "shut up, old hag", "you're a cheat and a liar",
                          "I'll burn this forge to the ground", "what a useless old crone",
                          "nobody wants your rusty rubbish", "I'll break your arms"]):
        return reply("INSULTED")
    if said("the player says goodbye", examples=["bye", "farewell", "gotta go", "goodbye, Hilda", "I'll be on my way",
                                                   "take care", "see you next time", "I'm leaving"]):
        return reply("GOODBYE")
    if state.reputation <= GRUDGE_REPUTATION:
        return reply("GET_OUT")
    if state.offer and state.gold >= state.offer_price:
        if said("the player accepts Hilda's offer", examples=["deal", "I'll take it", "yes, here's the gold",
                                                                 "agreed, it's mine", "fine, I'll pay that",
                                                                 "sold!", "ok, give it to me", "yes please"]):
            return reply("SOLD", item=state.offer, price=state.offer_price)
        if said("the player asks for a lower price", examples=["too expensive", "how about 40?", "can you do better?",
                                                                    "that's a lot of coin", "any discount?",
                                                                    "lower the price and we'll talk",
                                                                    "I'll give you half that", "cheaper, please"]):
            if state.reputation < HAGGLE_REPUTATION or state.offer_price < PRICES[state.offer]:
                return reply("NO_HAGGLE", item=state.offer, price=state.offer_price)
            return reply("DISCOUNT", item=state.offer, price=state.offer_price * 4 // 5)
    if said("the player wants to buy an item or asks its price", examples=["I need a sword", "how much for a shield?",
                                                                                       "I'd like to buy a dagger", "what do nails cost?",
                                                                                       "sell me a weapon", "can I get a shield?",
                                                                                       "price of your swords?", "I want to purchase something"]):
        item = said.pick("which item does the player want?", list(PRICES),
                         examples={"sword": ["a blade", "something to fight with"], "dagger": ["a knife", "a small blade"],
                                   "shield": ["something to stop arrows", "protection for my arm"],
                                   "nails": ["a box of nails", "something to build a fence with"]})
        if state.gold < PRICES[item]:
            return reply("TOO_POOR", item=item, price=PRICES[item])
        return reply("OFFER", item=item, price=PRICES[item])
    if said("the player wants to sell something to Hilda", examples=["want to buy some ore?", "I've a pelt to sell",
                                                                          "what will you pay for this?", "I have loot to sell",
                                                                          "would you buy an axe from me?", "take this off my hands for coin"]):
        loot = said.pick("what is the player selling?", list(LOOT_PRICES), examples={"bandit axe": ["this axe", "a bandit's weapon"],
                                                                           "iron ore": ["some ore", "iron from the mine"],
                                                                           "wolf pelt": ["a fur", "a wolf skin"]})
        if loot not in state.inventory:
            return reply("NO_LOOT", loot=loot)
        return reply("BUY_LOOT", loot=loot, price=LOOT_PRICES[loot])
    if said("the player wants something repaired", examples=["can you fix my sword?", "my helmet's dented",
                                                                         "repair my armour, please", "my shield is cracked",
                                                                         "this blade needs mending", "something of mine is broken"]):
        if state.gold < REPAIR_COST:
            return reply("REPAIR_TOO_POOR", price=REPAIR_COST)
        return reply("REPAIRED", price=REPAIR_COST)
    if state.quest != "done" and said("the player asks for work or brings the ore",
                                      examples=["need any help?", "got work for me?", "I brought your ore",
                                               "is there a job I can do?", "any tasks for an adventurer?",
                                               "how can I earn some coin?", "here's the iron ore you wanted",
                                               "I'm back from the mine"]):
        ore = state.inventory.count("iron ore")
        if state.quest == "none":
            return reply("QUEST_GIVEN", ore=QUEST_ORE, reward=QUEST_REWARD)
        if ore >= QUEST_ORE:
            return reply("QUEST_DONE", reward=QUEST_REWARD)
        return reply("QUEST_PROGRESS", have=ore, need=QUEST_ORE)
    if said("the player asks for news or rumours", examples=["heard any rumours?", "what's new around here?", "any news?",
                                                                   "tell me what's happening in the village",
                                                                   "anything interesting lately?", "what do people talk about?"]):
        return reply("RUMOUR")
    if said("the player greets Hilda or asks what she sells", examples=["hello", "what do you sell?", "morning", "hi",
                                                                                 "good day to you", "greetings, smith",
                                                                                 "what can I buy here?", "show me your wares"]):
        return reply("GREETING")
    return reply("FALLBACK")


@policy.effect("OFFER")
@policy.effect("DISCOUNT")
def priced(state, r):
    state.offer, state.offer_price = r.slots["item"], int(r.slots["price"])


@policy.effect("SOLD")
def sold(state, r):
    state.gold -= int(r.slots["price"])
    state.inventory.append(r.slots["item"])
    state.offer = None
    state.reputation += 1


@policy.effect("BUY_LOOT")
def bought_loot(state, r):
    state.gold += int(r.slots["price"])
    state.inventory.remove(r.slots["loot"])


@policy.effect("REPAIRED")
def repaired(state, r):
    state.gold -= int(r.slots["price"])


@policy.effect("QUEST_GIVEN")
def quest_given(state, r):
    state.quest = "active"


@policy.effect("QUEST_DONE")
def quest_done(state, r):
    for _ in range(QUEST_ORE):
        state.inventory.remove("iron ore")
    state.gold += int(r.slots["reward"])
    state.reputation += 3
    state.quest = "done"


@policy.effect("INSULTED")
def insulted(state, r):
    state.reputation -= 2
