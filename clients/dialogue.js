// A client for `dialogue serve`: one file, no dependencies, for Node 18+, Deno, Bun and browsers.
//
//   import { DialogueClient } from "./dialogue.js";
//   const client = new DialogueClient("http://127.0.0.1:8000", { token: process.env.DIALOGUE_TOKEN });
//   const session = await client.startSession("blacksmith", { state: { gold: 20 } });
//   const turn = await client.say(session.id, "how much for a dagger?");
//   console.log(turn.text, turn.state);
//
// Every turn carries an Idempotency-Key, so a retry after a network failure returns the turn
// the server already took instead of taking a second one.

/**
 * @typedef {{id: string, slots: Record<string, unknown>, text: string, audio: string | null}} Line
 * @typedef {{session_id: string, index: number, reply_id: string, slots: Record<string, unknown>,
 *   lines: Line[], text: string, audio: (string | null)[], locale: string, state: Record<string, unknown>,
 *   node: string, ended: boolean, fallback: boolean, trace: Record<string, unknown> | null}} Turn
 * @typedef {{id: string, policy: string, state: Record<string, unknown>, node: string, locale: string,
 *   ended: boolean, turns: number, history: {index: number, message: string, reply_id: string, text: string}[]}} Session
 */

/** An error answered by the server: `code` is stable (message_rejected, unknown_session, ...). */
export class DialogueError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "DialogueError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const RETRIED_STATUSES = new Set([429, 502, 503, 504]);

export class DialogueClient {
  /**
   * @param {string} baseUrl e.g. "http://127.0.0.1:8000"
   * @param {{token?: string, retries?: number, timeoutMs?: number, fetch?: typeof fetch}} options
   */
  constructor(baseUrl, { token, retries = 2, timeoutMs = 30000, fetch: fetchImpl } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
    this.retries = retries;
    this.timeoutMs = timeoutMs;
    this.fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
  }

  policies() { return this.request("GET", "/v1/policies"); }
  policy(name) { return this.request("GET", `/v1/policies/${enc(name)}`); }

  /** A new session (or, given only the id of an existing one, that session). @returns {Promise<Session>} */
  startSession(policy, { id, state, node, locale } = {}) {
    return this.request("POST", `/v1/policies/${enc(policy)}/sessions`, { body: { id, state, node, locale } });
  }

  session(id) { return this.request("GET", `/v1/sessions/${enc(id)}`); }
  turns(id) { return this.request("GET", `/v1/sessions/${enc(id)}/turns`); }
  endSession(id) { return this.request("DELETE", `/v1/sessions/${enc(id)}`); }

  /** One turn: the reply's lines, text, audio ids, and the state and node after it. @returns {Promise<Turn>} */
  say(sessionId, message, { trace = false, idempotencyKey = newKey() } = {}) {
    return this.request("POST", `/v1/sessions/${enc(sessionId)}/turns${trace ? "?trace=1" : ""}`,
      { body: { message }, headers: { "Idempotency-Key": idempotencyKey } });
  }

  /** Any endpoint; network failures and 429/502/503/504 are retried (after Retry-After). */
  async request(method, path, { body, headers = {} } = {}) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once(method, path, body, headers);
      } catch (error) {
        const retried = !(error instanceof DialogueError) || RETRIED_STATUSES.has(error.status);
        if (!retried || attempt >= this.retries) throw error;
        await sleep(1000 * Math.min(error.retryAfter ?? 2 ** attempt * 0.25, 10));
      }
    }
  }

  async #once(method, path, body, headers) {
    const all = { Accept: "application/json", ...headers };
    if (this.token) all.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) all["Content-Type"] = "application/json";
    const response = await this.fetch(this.baseUrl + path, {
      method, headers: all, body: body === undefined ? undefined : JSON.stringify(dropUndefined(body)),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (response.ok) return data;
    const error = data?.error ?? { code: "http_error", message: text || response.statusText };
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw new DialogueError(response.status, error.code, error.message, retryAfter);
  }
}

const enc = encodeURIComponent;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const dropUndefined = (body) => Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));

function newKey() {
  return globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}
