import assert from "node:assert/strict";
import { test } from "node:test";
import { afterJob, exampleCount } from "../src/pages/evaluations.js";

test("a settled job opens its evaluation, reloads after a model swap, and is otherwise ignored", () => {
  const job = (kind, status = "done", result_id = "r1") => ({ kind, status, result_id });
  assert.deepEqual(afterJob(job("eval_mixing")), { evaluation: "r1" });
  assert.deepEqual(afterJob(job("eval_degradation")), { evaluation: "r1" });
  assert.deepEqual(afterJob(job("load_model")), { reload: true });
  assert.equal(afterJob(job("fit_head")), null);
  assert.equal(afterJob(job("train_probes")), null);  // a probe set is no evaluation
  assert.equal(afterJob(job("eval_mixing", "failed", null)), null);
  assert.equal(afterJob(job("load_model", "cancelled", null)), null);
});

test("example counts: sentences for mixing evaluations, examples for the other kinds", () => {
  assert.equal(exampleCount({ kind: "mixing", summary: { sentences: 200 } }), 200);
  assert.equal(exampleCount({ kind: "degradation", summary: { examples: 50 } }), 50);
  assert.equal(exampleCount({ kind: "neurons", summary: { examples: 7 } }), 7);
});
