import assert from "node:assert/strict";
import { test } from "node:test";
import { formParams, isActive } from "../src/evaluations.js";

test("formParams collects repeated methods, types numbers, builds a head target, drops empty fields", () => {
  const entries = [["data", "x.tsv"], ["limit", "50"], ["methods", "iba"], ["methods", "lime"], ["text_col", ""], ["target_head", "abc"]];
  assert.deepEqual(formParams(entries, ["limit"]), { data: "x.tsv", limit: 50, methods: ["iba", "lime"], target: { kind: "head", head: "abc" } });
});

test("isActive is true only for queued and running jobs", () => {
  assert.deepEqual(["queued", "running", "done", "failed", "cancelled"].map((status) => isActive({ status })), [true, true, false, false, false]);
});
