"""Request bodies as each server kind documents them, captured on the wire by a local server."""

import json

import pytest

from dialogue.backends import Constraint, Hole, Prompt
from dialogue.backends.openai import OpenAIBackend, bounded_regex

from .fake import FakeServer, Reply, answer, chat_reply, ollama_reply

pytestmark = pytest.mark.server

PROMPT = Prompt(system="STATIC PREFIX: persona, code, catalog ids", user='message: "hello"')
CHOICE = Constraint.choice(["GREETING", "OFFER(item=sword, price=50)"])
HOLES = Constraint((("GREETING",), ("ORDER_NOTED(order=", Hole("[A-Z]{2}-[0-9]{4}", 7), ")")))
FLAGGED = Constraint((("GREETING",), ("NOTE(x=", Hole("(?i)ab", 2), ")")))  # no GBNF form


def backend(server, kind, **options):
    return OpenAIBackend(base_url=server.url, model="test-model", api_key="sk-test", server=kind,
                         **options)


def one_post(server):
    (request,) = server.posts
    return request


def test_messages_put_the_static_prefix_first():
    with FakeServer(answer("GREETING")) as server:
        backend(server, "vllm").generate(PROMPT, CHOICE)
    body = one_post(server).body
    assert body["messages"] == [{"role": "system", "content": PROMPT.system},
                                {"role": "user", "content": PROMPT.user}]
    assert body["model"] == "test-model" and body["temperature"] == 0
    assert one_post(server).headers["authorization"] == "Bearer sk-test"


def test_openai_is_a_strict_json_schema_with_the_reply_as_an_enum():
    content = json.dumps({"reply": "OFFER(item=sword, price=50)"})
    with FakeServer(lambda r: Reply(chat_reply(content, prompt_tokens=120, cached=96))) as server:
        completion = backend(server, "openai").generate(PROMPT, CHOICE)
    request = one_post(server)
    assert request.path == "/v1/chat/completions"
    assert request.body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "reply", "strict": True, "schema": {
            "type": "object", "properties": {"reply": {"type": "string", "enum": list(CHOICE.literals)}},
            "required": ["reply"], "additionalProperties": False}}}
    assert "max_tokens" not in request.body  # a strict enum bounds the output; reasoning models differ
    assert completion.text == "OFFER(item=sword, price=50)"
    assert (completion.cached_tokens, completion.tokens_reused, completion.tokens_new) == (96, 96, 24)


def test_openai_holes_are_string_fields_with_their_patterns():
    content = json.dumps({"answer": {"reply": "ORDER_NOTED(order={value_1})", "value_1": "AB-1234"}})
    with FakeServer(answer(content)) as server:
        completion = backend(server, "openai").generate(PROMPT, HOLES)
    schema = one_post(server).body["response_format"]["json_schema"]["schema"]
    plain, holed = schema["properties"]["answer"]["anyOf"]
    assert plain["properties"] == {"reply": {"type": "string", "enum": ["GREETING"]}}
    assert holed["properties"]["reply"]["enum"] == ["ORDER_NOTED(order={value_1})"]
    assert holed["properties"]["value_1"] == {"type": "string", "pattern": "^([A-Z]{2}-[0-9]{4})$"}
    assert holed["required"] == ["reply", "value_1"] and holed["additionalProperties"] is False
    assert completion.text == "ORDER_NOTED(order=AB-1234)"


def test_vllm_sends_structured_outputs_choice_or_regex():
    with FakeServer(answer("GREETING")) as server:
        model = backend(server, "vllm")
        assert model.generate(PROMPT, CHOICE).text == "GREETING"
        model.generate(PROMPT, HOLES)
    first, second = (r.body for r in server.posts)
    assert first["structured_outputs"] == {"choice": ["GREETING", "OFFER(item=sword, price=50)"]}
    assert second["structured_outputs"] == {"regex": bounded_regex(HOLES)}
    for body in (first, second):
        assert not {"guided_choice", "guided_regex", "response_format", "grammar"} & set(body)
        assert body["max_tokens"] >= len("OFFER(item=sword, price=50)")


def test_sglang_sends_a_regex():
    with FakeServer(answer("GREETING")) as server:
        backend(server, "sglang").generate(PROMPT, CHOICE)
    body = one_post(server).body
    assert body["regex"] == CHOICE.regex() == bounded_regex(CHOICE)
    assert not {"structured_outputs", "response_format", "grammar", "ebnf"} & set(body)


@pytest.mark.parametrize("kind", ["llama-server", "llama-cpp-python"])
def test_llama_cpp_servers_send_a_gbnf_grammar(kind):
    with FakeServer(answer("ORDER_NOTED(order=AB-1234)")) as server:
        completion = backend(server, kind).generate(PROMPT, HOLES)
    body = one_post(server).body
    assert body["grammar"] == ('root ::= "GREETING" | "ORDER_NOTED(order=" '
                               '(([A-Z]){2} "-" ([0-9]){4}) ")"\n')
    assert "response_format" not in body  # never both
    assert completion.text == "ORDER_NOTED(order=AB-1234)"


@pytest.mark.parametrize("kind, response_format", [
    ("llama-server", "json_schema"),
    ("llama-cpp-python", "json_object"),  # measured: it refuses type json_schema with HTTP 500
])
def test_llama_cpp_servers_fall_back_to_a_json_schema(kind, response_format):
    content = json.dumps({"answer": {"reply": "NOTE(x={value_1})", "value_1": "aB"}})
    with FakeServer(answer(content)) as server:
        completion = backend(server, kind).generate(PROMPT, FLAGGED)
    body = one_post(server).body
    assert "grammar" not in body
    assert body["response_format"]["type"] == response_format
    if kind == "llama-server":
        schema = body["response_format"]["json_schema"]["schema"]
    else:
        schema = body["response_format"]["schema"]
    assert schema["properties"]["answer"]["anyOf"][1]["properties"]["value_1"]["maxLength"] == 2
    assert completion.text == "NOTE(x=aB)"


def test_ollama_uses_the_native_chat_with_a_format_schema():
    content = json.dumps({"reply": "GREETING"})
    with FakeServer(lambda r: Reply(ollama_reply(content))) as server:
        completion = backend(server, "ollama").generate(PROMPT, CHOICE)
    request = one_post(server)
    assert request.path == "/api/chat"
    body = request.body
    assert body["stream"] is False and body["model"] == "test-model"
    assert body["format"]["properties"]["reply"]["enum"] == list(CHOICE.literals)
    assert body["options"]["temperature"] == 0 and body["options"]["num_predict"] > 0
    assert body["messages"][0] == {"role": "system", "content": PROMPT.system}
    assert completion.text == "GREETING" and completion.tokens_new == 42


def test_executed_mode_questions_take_the_same_path():
    yes_no = Constraint.choice(["yes", "no"])
    extract = Constraint(((Hole("[A-Z]{2}-[0-9]{4}", 7),),))
    replies = iter([json.dumps({"reply": "no"}), json.dumps({"reply": "{value_1}", "value_1": "XY-9876"})])
    with FakeServer(lambda r: Reply(chat_reply(next(replies)))) as server:
        model = backend(server, "openai")
        assert model.generate(PROMPT, yes_no).text == "no"
        assert model.generate(PROMPT, extract).text == "XY-9876"
    schema = server.posts[1].body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["value_1"]["pattern"] == "^([A-Z]{2}-[0-9]{4})$"


def test_a_server_that_ignores_the_constraint_gets_its_raw_text_back():
    with FakeServer(answer("Sure! I would love to help.")) as server:
        for kind in ("openai", "vllm", "llama-cpp-python"):
            assert backend(server, kind).generate(PROMPT, CHOICE).text == "Sure! I would love to help."


def test_extra_body_is_merged_into_every_request():
    with FakeServer(answer("GREETING")) as server:
        backend(server, "vllm", extra_body={"top_k": 1}, temperature=None).generate(PROMPT, CHOICE)
    body = one_post(server).body
    assert body["top_k"] == 1 and "temperature" not in body


@pytest.mark.parametrize("owner, kind", [("vllm", "vllm"), ("sglang", "sglang"), ("llamacpp", "llama-server"),
                                         ("me", "llama-cpp-python"), ("someone", "openai")])
def test_the_server_kind_is_asked_once_when_not_given(owner, kind):
    def respond(request):
        if request.method == "GET":
            return Reply({"object": "list", "data": [{"id": "m", "object": "model", "owned_by": owner}]})
        return Reply(chat_reply(json.dumps({"reply": "GREETING"}) if kind == "openai" else "GREETING"))

    with FakeServer(respond) as server:
        model = OpenAIBackend(base_url=server.url, model="m")
        assert model.generate(PROMPT, CHOICE).text == "GREETING"
        model.generate(PROMPT, CHOICE)
    assert model.server == kind and model.capabilities.choice
    assert [r.path for r in server.requests] == ["/v1/models", "/v1/chat/completions", "/v1/chat/completions"]
