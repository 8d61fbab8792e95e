import assert from "node:assert/strict";
import { test } from "node:test";
import { collectParams, collectTarget, fieldsFromSchema } from "../src/params.js";

const schema = {
  properties: {
    steps: { type: "integer", default: 50, minimum: 1, title: "Steps" },
    estimator: { $ref: "#/$defs/Estimator", default: "sentence" },
    beta: { anyOf: [{ type: "number" }, { type: "null" }], default: null },
    sweep: { type: "boolean", default: false },
  },
  $defs: { Estimator: { enum: ["sentence", "dataset"], type: "string" } },
};

test("fieldsFromSchema maps JSON schema types to inputs", () => {
  const fields = fieldsFromSchema(schema);
  assert.deepEqual(fields.map((f) => [f.name, f.type]), [
    ["steps", "number"], ["estimator", "select"], ["beta", "number"], ["sweep", "checkbox"],
  ]);
  assert.equal(fields[0].min, 1);
  assert.deepEqual(fields[1].options, ["sentence", "dataset"]);
  assert.equal(fields[2].nullable, true);
});

test("collectParams types numbers and skips empty optional fields", () => {
  const fields = fieldsFromSchema(schema);
  assert.deepEqual(collectParams(fields, { steps: "10", estimator: "dataset", beta: "", sweep: true }), {
    steps: 10, estimator: "dataset", sweep: true,
  });
});

test("fieldsFromSchema tolerates a schema without properties", () => {
  assert.deepEqual(fieldsFromSchema({ title: "NoParams", type: "object" }), []);
});

test("collectTarget builds zero-shot specs from comma separated labels", () => {
  assert.deepEqual(collectTarget({ kind: "zero_shot", labels: " good, bad ,", template: "It is {}.", label: "" }), {
    kind: "zero_shot", labels: ["good", "bad"], template: "It is {}.",
  });
  assert.deepEqual(collectTarget({ kind: "classification", label: "" }), { kind: "classification" });
  assert.equal(collectTarget({}), null);
});

test("collectTarget builds fitted-head specs", () => {
  assert.deepEqual(collectTarget({ kind: "head", head: "abc", label: "" }), { kind: "head", head: "abc" });
  assert.deepEqual(collectTarget({ kind: "head", head: "abc", label: "1" }), { kind: "head", head: "abc", label: "1" });
});
