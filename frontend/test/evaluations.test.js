import assert from "node:assert/strict";
import { test } from "node:test";
import { isActive, summaryRows } from "../src/evaluations.js";

test("summaryRows formats mean ± std per layer and marks missing layers", () => {
  const summary = { summary: { value_zeroing: { mean: [0.5, null], std: [0.1234, null], n: [3, 0] } } };
  assert.deepEqual(summaryRows(summary), [["value_zeroing", "0.500 ± 0.123", "n/a"]]);
});

test("isActive is true only for queued and running jobs", () => {
  assert.deepEqual(["queued", "running", "done", "failed", "cancelled"].map((status) => isActive({ status })), [true, true, false, false, false]);
});
