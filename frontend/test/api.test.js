import assert from "node:assert/strict";
import { test } from "node:test";
import { errorMessage } from "../src/api.js";

test("errorMessage prefers the server's message", () => {
  assert.equal(errorMessage(422, { error: { code: "invalid_input", message: "'text' is empty" } }), "'text' is empty");
});

test("errorMessage falls back on the status", () => {
  assert.equal(errorMessage(413, null), "The request is too large.");
  assert.equal(errorMessage(502, {}), "The server answered 502.");
});
