import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { ApiError, errorMessage, getJSON, postJSON, request } from "../src/api.js";

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
  delete globalThis.window;
});

/** fetch answering `status` with `body` (a JSON value, or raw text), recording every call. */
function fakeFetch(status, body) {
  const calls = [];
  globalThis.fetch = async (url, options) => {
    calls.push({ url, options });
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { "Content-Type": "application/json" } });
  };
  return calls;
}

test("errorMessage prefers the server's message", () => {
  assert.equal(errorMessage(422, { error: { code: "invalid_input", message: "'text' is empty" } }), "'text' is empty");
});

test("errorMessage falls back on the status", () => {
  assert.equal(errorMessage(413, null), "The request is too large.");
  assert.equal(errorMessage(502, {}), "The server answered 502.");
});

test("a GET returns the parsed answer and sends no body", async () => {
  const calls = fakeFetch(200, { items: [1, 2] });
  assert.deepEqual(await getJSON("/api/neurons?limit=2"), { items: [1, 2] });
  assert.equal(calls[0].url, "/api/neurons?limit=2");
  assert.equal(calls[0].options.method, "GET");
  assert.equal(calls[0].options.body, undefined);
});

test("a POST sends its payload as JSON", async () => {
  const calls = fakeFetch(202, { id: "j1", status: "queued" });
  assert.equal((await postJSON("/api/jobs", { kind: "eval_mixing", params: { limit: 3 } })).id, "j1");
  assert.equal(calls[0].options.method, "POST");
  assert.equal(calls[0].options.headers["Content-Type"], "application/json");
  assert.deepEqual(JSON.parse(calls[0].options.body), { kind: "eval_mixing", params: { limit: 3 } });
});

test("a 4xx answer becomes an ApiError with the server's message, status and code", async () => {
  fakeFetch(403, { error: { code: "forbidden", message: "This needs the admin token." } });
  await assert.rejects(request("/api/jobs", { method: "POST", payload: {} }), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.message, "This needs the admin token.");
    assert.equal(error.status, 403);
    assert.equal(error.code, "forbidden");
    return true;
  });
});

test("an error answer that is not JSON still names its status", async () => {
  fakeFetch(502, "<html>Bad Gateway</html>");
  await assert.rejects(getJSON("/api/jobs"), { message: "The server answered 502.", status: 502, code: null });
});

test("an unreachable server is said so", async () => {
  globalThis.fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  await assert.rejects(getJSON("/api/jobs"), { message: "Cannot reach the server (Failed to fetch).", status: 0 });
});

test("every request carries the admin token typed in this tab", async () => {
  const stored = new Map([["bertscope-admin-token", "s3cret"]]);
  globalThis.window = { sessionStorage: { getItem: (key) => stored.get(key) ?? null } };
  const calls = fakeFetch(200, {});
  await getJSON("/api/jobs");
  await postJSON("/api/jobs/j1/cancel");
  assert.deepEqual(calls.map((call) => call.options.headers.Authorization), ["Bearer s3cret", "Bearer s3cret"]);
  assert.equal(calls[1].options.body, undefined);  // a POST without payload sends no body
});
