import { test } from "node:test";
import assert from "node:assert/strict";
import { withAdmin } from "../src/admin.js";

function memoryStore(entries = {}) {
  const data = new Map(Object.entries(entries));
  return { getItem: (key) => (data.has(key) ? data.get(key) : null), setItem: (k, v) => data.set(k, v), removeItem: (k) => data.delete(k) };
}

test("no token typed: the request options are unchanged", () => {
  const options = { method: "POST", headers: { "Content-Type": "application/json" } };
  assert.deepEqual(withAdmin(options, memoryStore()), options);
});

test("a typed token becomes a bearer header beside the existing headers", () => {
  const options = { method: "POST", headers: { "Content-Type": "application/json" } };
  const sent = withAdmin(options, memoryStore({ "bertscope-admin-token": "s3cret" }));
  assert.equal(sent.headers.Authorization, "Bearer s3cret");
  assert.equal(sent.headers["Content-Type"], "application/json");
  assert.equal(options.headers.Authorization, undefined);
});
