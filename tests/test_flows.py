"""Nodes, conversation trees as data, multi-line replies and required lines."""

import textwrap

import pytest

from dialogue import Engine, ScriptedBackend, explore, load_policy
from dialogue.errors import PolicyError, SessionError
from dialogue.grammar import display, serialize
from dialogue.reply import Reply

from .conftest import FIXTURES, ROOT

FLOW = FIXTURES / "policies" / "flow.py"
CARD_BLOCK = ROOT / "dialogue" / "examples" / "policies" / "card_block.tree.toml"


def test_prompted_mode_explores_only_the_current_node():
    policy = load_policy(FLOW)
    start = {display(serialize(r, policy.catalog)) for r in explore(policy).reachable}
    assert start == {"VERIFIED + ASK_ORDER", "ASK_NUMBER"}
    order = {display(serialize(r, policy.catalog)) for r in explore(policy, node="order").reachable}
    assert order == {"DISCLOSURE + REFUND(order=<[0-9]{5}>)", "ASK_ORDER"}


def test_goto_moves_the_session_and_end_closes_it():
    policy = load_policy(FLOW)
    engine = Engine(policy, backend=ScriptedBackend(["VERIFIED + ASK_ORDER", "DISCLOSURE + REFUND(order=12345)"]))
    session = engine.session("s")
    first = session.say("C-1234")
    assert [line["id"] for line in first.lines] == ["VERIFIED", "ASK_ORDER"]
    assert first.text == "Thank you, you are verified.\nWhich order is it about?"
    assert first.state.verified and session.node == "order" and first.trace.node == "verify"
    second = session.say("order 12345")
    assert second.reply.id == "REFUND" and second.reply.slots == {"order": "12345"}
    assert second.text.endswith("Order 12345 is refunded.") and session.ended
    with pytest.raises(SessionError, match="has ended"):
        session.say("one more thing")


def test_the_static_prefix_is_per_node():
    from dialogue.prompt import static_prefix

    policy = load_policy(FLOW)
    assert static_prefix(policy, "verify") != static_prefix(policy, "order")
    assert "def order(said, state):" in static_prefix(policy, "order")
    assert "def order(" not in static_prefix(policy, "verify")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


CATALOG = (FIXTURES / "policies" / "flow.toml").as_posix()


def flow_policy(tmp_path, body):
    head = f"from dialogue import Policy, reply\npolicy = Policy('g', catalog={CATALOG!r}, start='a')\n"
    return write(tmp_path, "g.py", head + textwrap.dedent(body))


def test_goto_to_an_unknown_node_is_an_author_error(tmp_path):
    path = flow_policy(tmp_path, """
        @policy.node("a")
        def a(said, state):
            return reply("ASK_NUMBER", goto="ordr")
        @policy.node("order")
        def order(said, state):
            return reply("ASK_ORDER", end=True)
        """)
    with pytest.raises(PolicyError, match="node 'ordr', which does not exist") as info:
        load_policy(path)
    assert "did you mean 'order'?" in str(info.value)


def test_unreachable_and_dead_end_nodes_are_author_errors(tmp_path):
    path = flow_policy(tmp_path, """
        @policy.node("a")
        def a(said, state):
            return reply("ASK_NUMBER", goto="b")
        @policy.node("b")
        def b(said, state):
            return reply("ASK_ORDER")
        @policy.node("island")
        def island(said, state):
            return reply("ASK_ORDER", end=True)
        """)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert "node 'island' cannot be reached" in message
    assert "node 'b' is a dead end" in message


def test_a_required_line_missing_on_the_first_turn_is_an_author_error(tmp_path):
    path = flow_policy(tmp_path, """
        @policy.node("a")
        def a(said, state):
            if said("refund?", examples=["refund"]):
                return reply("REFUND", order="12345", end=True)
            return reply("DISCLOSURE") + reply("REFUND", order="12345", end=True)
        """)
    with pytest.raises(PolicyError, match="REFUND can be said before DISCLOSURE") as info:
        load_policy(path)
    assert info.value.location.line == 7


def test_a_required_line_said_in_an_earlier_node_is_proved(tmp_path):
    path = flow_policy(tmp_path, """
        @policy.node("a")
        def a(said, state):
            return reply("DISCLOSURE", goto="b")
        @policy.node("b")
        def b(said, state):
            return reply("REFUND", order="12345", end=True)
        """)
    assert not [w for w in load_policy(path).warnings if "DISCLOSURE" in str(w)]


def test_the_engine_refuses_a_reply_whose_required_line_was_not_said(tmp_path):
    path = flow_policy(tmp_path, """
        @policy.node("a")
        def a(said, state):
            if said("refund?", examples=["refund"]):
                return reply("ASK_ORDER", goto="b")
            return reply("DISCLOSURE", goto="b")
        @policy.node("b")
        def b(said, state):
            return reply("REFUND", order="12345", end=True)
        """)
    policy = load_policy(path)  # not provable: a warning
    assert any("REFUND can be said before DISCLOSURE" in str(w) for w in policy.warnings)
    engine = Engine(policy, backend=ScriptedBackend(["ASK_ORDER", "REFUND(order=12345)"]))
    session = engine.session("s")
    session.say("refund")
    turn = session.say("12345")
    assert turn.reply.id == "FALLBACK" and turn.trace.fallback
    assert turn.trace.reachable == []


def test_the_bank_tree_compiles_into_a_policy():
    policy = load_policy(CARD_BLOCK)
    assert list(policy.nodes) == ["intake", "verify", "replacement"] and policy.start == "intake"
    assert "def verify(said, state):" in policy.source_of("verify")
    reachable = {display(serialize(r)) for r in explore(policy, node="verify").reachable}
    assert "IDENTITY_CONFIRMED + CARD_BLOCKED + ASK_ADDRESS" in reachable


def test_the_bank_tree_runs_end_to_end_on_a_script():
    policy = load_policy(CARD_BLOCK)
    engine = Engine(policy, backend=ScriptedBackend(
        ["ASK_IDENTITY", "IDENTITY_CONFIRMED + CARD_BLOCKED + ASK_ADDRESS", "REPLACEMENT_SENT + GOODBYE"]))
    session = engine.session("bank")
    session.say("I lost my card")
    turn = session.say("1984-03-12")
    assert turn.state.verified and turn.state.card_blocked and session.node == "replacement"
    turn = session.say("yes, same address")
    assert turn.state.replacement_ordered and session.ended


@pytest.mark.parametrize("body, message, line", [
    ("[[node]]\nid = 'a'\n[[node.branch]]\nsay = 'WELCOME'\ncolour = 'red'\n", "colour", 5),
    ("[[node]]\nid = 'a'\n[[node.branch]]\nif = 'x?'\nsay = 'WELCOME'\n", "no default branch", 1),
    ("[[node]]\nid = 'a'\n[[node.branch]]\nsay = 'WELCOME'\ngoto = 'nowhere'\n", "'nowhere', which does not exist", 3),
    ("[[node]]\nid = 'a'\n[[node.branch]]\nsay = 'WELCOM'\n", "WELCOM is not in catalog", 3),
    ("[[node]]\nid = 'a'\n[[node.branch]\nsay = 'WELCOME'\n", "TOML syntax error", 3),
])
def test_tree_file_errors_show_file_and_line(tmp_path, body, message, line):
    catalog = (ROOT / "dialogue" / "examples" / "catalogs" / "card_block.toml").as_posix()
    head = f"[tree]\nname = 't'\ncatalog = {catalog!r}\n\n"
    path = write(tmp_path, "t.tree.toml", head + body)
    with pytest.raises(PolicyError, match=message) as info:
        load_policy(path)
    assert info.value.location.file.endswith("t.tree.toml")
    assert info.value.location.line == line + 4


EFFECT_MOVES = """
    @policy.node("a")
    def a(said, state):
        if said("a number?", examples=["12345"]):
            return reply("ASK_NUMBER")
        return reply("ASK_ORDER", end=True)
    @policy.node("b")
    def b(said, state):
        return reply("REFUND", order="12345", end=True)
    @policy.effect("ASK_NUMBER", goto="b")
    def check(state, r):
        return MOVE
    """


def moves(value: str) -> str:
    return EFFECT_MOVES.replace("return MOVE", f"return {value}")


def test_an_effect_moves_the_session_to_a_declared_node(tmp_path):
    policy = load_policy(flow_policy(tmp_path, moves("'b'")))
    assert policy.moves(Reply("ASK_NUMBER")) == ("b",) and policy.moves(Reply("REFUND", goto="a")) == ("a",)
    session = Engine(policy, backend=ScriptedBackend(["ASK_NUMBER"])).session("s")
    turn = session.say("12345")
    assert turn.reply.goto == "b" and turn.node == "a" and session.node == "b"
    stays = load_policy(flow_policy(tmp_path, moves("None")))
    session = Engine(stays, backend=ScriptedBackend(["ASK_NUMBER"])).session("s")
    assert session.say("12345").reply.goto is None and session.node == "a"


def test_an_effect_moving_to_an_undeclared_node_changes_nothing(tmp_path):
    from dialogue.errors import EffectError

    policy = load_policy(flow_policy(tmp_path, moves("'a2'")))
    session = Engine(policy, backend=ScriptedBackend(["ASK_NUMBER"])).session("s")
    with pytest.raises(EffectError, match="moved to 'a2', which is not one of the nodes it declares"):
        session.say("12345")
    assert session.node == "a" and session.turns == []


def test_an_effect_goto_counts_as_an_edge_and_is_checked(tmp_path):
    # Without the effect's edge node b could not be reached: lint accepts it.
    assert load_policy(flow_policy(tmp_path, moves("'b'"))).nodes.keys() == {"a", "b"}
    bad = flow_policy(tmp_path, moves("'b'").replace('goto="b"', 'goto="bb"'))
    with pytest.raises(PolicyError, match="the effect for ASK_NUMBER may move to node 'bb', which does not exist"):
        load_policy(bad)


def test_a_session_can_start_in_a_node():
    policy = load_policy(FLOW)
    engine = Engine(policy, backend=ScriptedBackend(["DISCLOSURE + REFUND(order=12345)"]))
    session = engine.session("s", node="order")
    assert session.node == "order" and session.say("order 12345").reply.id == "REFUND"
    with pytest.raises(PolicyError, match="has no node 'ordr'"):
        engine.session("t", node="ordr")
    with pytest.raises(SessionError, match="exists already"):
        engine.session("s", node="verify")
