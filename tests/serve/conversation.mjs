// Talks to a `dialogue serve` with the JS client (clients/dialogue.js) and Node's fetch; prints
// one JSON line per check for tests/serve/test_node.py. Usage: node conversation.mjs URL TOKEN before|after SESSION [GATE_FILE]
import { writeFileSync } from "node:fs";
import { DialogueClient, DialogueError } from "../../clients/dialogue.js";

const [url, token, phase, arg, gateFile] = process.argv.slice(2);
const client = new DialogueClient(url, { token, retries: 0 });
const report = (name, value) => console.log(JSON.stringify({ name, value }));

async function failure(promise) {
  try { await promise; return null; } catch (error) {
    if (!(error instanceof DialogueError)) throw error;
    return { status: error.status, code: error.code, message: error.message };
  }
}

async function inFlight(policy) {
  for (let i = 0; i < 600; i++) {
    const metrics = await (await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text();
    if (metrics.includes(`dialogue_turns_in_flight{policy="${policy}"} 1`)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("the first turn never showed as in flight");
}

if (phase === "before") {
  report("policies", (await client.policies()).policies.map((p) => p.name));
  const session = await client.startSession("blacksmith", { id: arg });
  const offer = await client.say(session.id, "how much for a dagger?");
  report("offer", { reply: offer.reply_id, slots: offer.slots, text: offer.text, gold: offer.state.gold });
  const key = "node-key-1";
  const first = await client.say(session.id, "any rumours?", { idempotencyKey: key });
  const again = await client.say(session.id, "any rumours?", { idempotencyKey: key });
  report("idempotent", { first: first.index, again: again.index, same: JSON.stringify(first) === JSON.stringify(again) });
  report("unauthorized", await failure(new DialogueClient(url, { token: "wrong-token-0123456789" }).policies()));
  report("unknown_session", await failure(client.say("no-such-session", "hi")));
  report("too_long", await failure(client.say(session.id, "x".repeat(201))));
  const badJson = await fetch(`${url}/v1/sessions/${session.id}/turns`, {
    method: "POST", body: '{"message": ', headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` } });
  report("bad_json", { status: badJson.status, body: await badJson.json() });
  const gate = await client.startSession("gate", { state: { gate: gateFile } });
  const pending = client.say(gate.id, "let me through");
  await inFlight("gate");
  report("concurrent", await failure(client.say(gate.id, "me too")));
  writeFileSync(gateFile, "");
  report("after_gate", (await pending).state.passed);
} else {
  const resumed = await client.session(arg);
  report("resumed", { turns: resumed.turns, offer: resumed.state.offer });
  const sold = await client.say(arg, "deal, here's the gold");
  report("sold", { reply: sold.reply_id, gold: sold.state.gold, inventory: sold.state.inventory });
  await client.endSession(arg);
  report("ended", await failure(client.say(arg, "hello again")));
}
