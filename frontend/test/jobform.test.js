// Job forms from params schemas: hand-written schemas shaped like pydantic's, the fields they give and the
// params a filled form collects (params.js), and the text inputs start with (jobform.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import { fieldId, initialText } from "../src/jobform.js";
import { collectParams, corpusSpecs, fieldsFromSchema, parseList } from "../src/params.js";

const schema = {
  title: "DemoParams",
  required: ["data", "corpora"],
  properties: {
    data: { type: "string", title: "Data file", description: "A file on the server.", examples: ["x.tsv"] },
    column: { anyOf: [{ type: "string" }, { type: "null" }], default: null, title: "Text column" },
    label_col: { anyOf: [{ type: "string" }, { type: "null" }], default: "label" },
    limit: { anyOf: [{ type: "integer", minimum: 1, maximum: 100 }, { type: "null" }], default: null },
    rate: { type: "number", exclusiveMinimum: 0, maximum: 10, default: 0.5 },
    methods: { type: "array", items: { type: "string", enum: ["a", "b", "random"] }, default: ["a", "random"], minItems: 1 },
    layers: { anyOf: [{ type: "array", items: { type: "integer" } }, { type: "null" }], default: null },
    mode: { enum: ["delete", "mask"], type: "string", default: "delete" },
    dtype: { anyOf: [{ enum: ["float32", "float16"], type: "string" }, { type: "null" }], default: null },
    describe: { type: "boolean", default: true },
    seed: { type: "integer", default: 0, minimum: 0, advanced: true },
    target: { anyOf: [{ discriminator: { propertyName: "kind" }, oneOf: [{ $ref: "#/$defs/HeadTarget" }] }, { type: "null" }], default: null, widget: "target", fitted_heads: true },
    corpora: { type: "array", items: { $ref: "#/$defs/CorpusSpec" }, widget: "corpora" },
    method_params: { type: "object", additionalProperties: { type: "object" }, default: {}, widget: "json", title: "Method params" },
    extra: { type: "object", default: { k: 1 } },
  },
  $defs: {
    HeadTarget: { properties: { kind: { const: "head" }, head: { type: "string" } }, required: ["head"], type: "object" },
    CorpusSpec: { properties: { name: { type: "string" }, path: { type: "string" } }, required: ["name", "path"], type: "object" },
  },
};

const byName = (fields) => Object.fromEntries(fields.map((field) => [field.name, field]));

/** What an untouched form holds: every input at its initial text, checkboxes and choices at their defaults. */
function untouched(fields) {
  const raw = {};
  for (const field of fields) {
    if (field.type === "checkbox") raw[field.name] = Boolean(field.default);
    else if (field.type === "choices") raw[field.name] = [...(field.default || [])];
    else if (field.widget === "target") raw[field.name] = { kind: "" };
    else raw[field.name] = initialText(field);
  }
  return raw;
}

test("each property becomes one field of the right kind, in schema order", () => {
  const fields = fieldsFromSchema(schema);
  assert.deepEqual(fields.map((f) => [f.name, f.type, f.widget ?? null]), [
    ["data", "text", null], ["column", "text", null], ["label_col", "text", null], ["limit", "number", null],
    ["rate", "number", null], ["methods", "choices", null], ["layers", "list", null], ["mode", "select", null],
    ["dtype", "select", null], ["describe", "checkbox", null], ["seed", "number", null],
    ["target", "widget", "target"], ["corpora", "widget", "corpora"], ["method_params", "widget", "json"],
    ["extra", "widget", "json"],  // a complex field without a hint is typed as JSON
  ]);
});

test("labels, hints, defaults, bounds, required, optional and advanced come from the schema", () => {
  const f = byName(fieldsFromSchema(schema));
  assert.equal(f.data.label, "Data file");
  assert.equal(f.data.help, "A file on the server.");
  assert.equal(f.data.placeholder, "x.tsv");
  assert.equal(f.data.required, true);
  assert.equal(f.column.required, false);
  assert.equal(f.label_col.default, "label");
  assert.equal(f.column.nullable, true);
  assert.equal(f.mode.nullable, false);
  assert.deepEqual([f.limit.min, f.limit.max, f.limit.step, f.limit.nullable], [1, 100, 1, true]);
  assert.deepEqual([f.rate.min, f.rate.max, f.rate.step, f.rate.default], [0, 10, "any", 0.5]);
  assert.deepEqual(f.methods.options, ["a", "b", "random"]);
  assert.deepEqual(f.methods.default, ["a", "random"]);
  assert.deepEqual(f.dtype.options, ["float32", "float16"]);
  assert.equal(f.layers.items, "integer");
  assert.deepEqual([f.seed.advanced, f.data.advanced], [true, false]);
  assert.equal(f.target.schema.fitted_heads, true);  // widget hints travel with the field
  assert.equal(f.method_params.label, "Method params");
});

test("labels: the schema's own title, else the name in sentence case (not pydantic's made-up title)", () => {
  const fields = fieldsFromSchema({ properties: { max_epochs: { type: "integer", title: "Max Epochs" }, k: { type: "integer", title: "Exemplars per neuron" }, seed: { type: "integer" } } });
  assert.deepEqual(fields.map((f) => f.label), ["Max epochs", "Exemplars per neuron", "Seed"]);
});

test("inputs start from the schema's defaults: lists comma separated, JSON as JSON, {} and null as nothing", () => {
  const f = byName(fieldsFromSchema(schema));
  assert.equal(initialText(f.label_col), "label");
  assert.equal(initialText(f.column), "");
  assert.equal(initialText(f.rate), "0.5");
  assert.equal(initialText({ ...f.layers, default: [0, 3] }), "0, 3");
  assert.equal(initialText(f.method_params), "");
  assert.equal(initialText(f.extra), '{"k":1}');
  assert.equal(fieldId("eval_mixing", "data"), "eval_mixing-data");
});

test("an untouched form sends its defaults and leaves every empty optional field to the server", () => {
  const fields = fieldsFromSchema(schema);
  const raw = { ...untouched(fields), data: "x.tsv", corpora: "wiki=/w.txt" };
  assert.deepEqual(collectParams(fields, raw), {
    data: "x.tsv", label_col: "label", rate: 0.5, methods: ["a", "random"], mode: "delete", describe: true, seed: 0,
    corpora: [{ name: "wiki", path: "/w.txt" }], extra: { k: 1 },
  });
});

test("numbers typed, lists parsed, unticked checkboxes false, choices as ticked", () => {
  const fields = fieldsFromSchema(schema);
  const raw = { ...untouched(fields), data: "x.tsv", limit: "20", rate: "2.5", layers: "0, 3,6,", describe: false, methods: ["b"], dtype: "float16" };
  const params = collectParams(fields, raw);
  assert.deepEqual([params.limit, params.rate, params.layers, params.describe, params.methods, params.dtype], [20, 2.5, [0, 3, 6], false, ["b"], "float16"]);
  assert.deepEqual(collectParams(fields, { ...raw, methods: [] }).methods, []);  // required list: the server says why
  assert.equal("layers" in collectParams(fields, { ...raw, layers: " , " }), false);
  assert.deepEqual(parseList("1, x", "integer"), [1, "x"]);  // kept as typed: the server's error names it
  assert.deepEqual(parseList("a, b", "string"), ["a", "b"]);
});

test("widgets: the default target is omitted, a fitted head or typed JSON becomes a target spec", () => {
  const fields = fieldsFromSchema(schema);
  const base = { ...untouched(fields), data: "x.tsv" };
  assert.equal("target" in collectParams(fields, base), false);
  assert.deepEqual(collectParams(fields, { ...base, target: { kind: "head", head: "h1" } }).target, { kind: "head", head: "h1" });
  const typed = { kind: "json", json: '{"kind": "zero_shot", "labels": ["good", "bad"]}' };
  assert.deepEqual(collectParams(fields, { ...base, target: typed }).target, { kind: "zero_shot", labels: ["good", "bad"] });
  assert.deepEqual(collectParams(fields, { ...base, method_params: '{"lime": {"samples": 500}}' }).method_params, { lime: { samples: 500 } });
  assert.throws(() => collectParams(fields, { ...base, method_params: "{lime" }), /Method params: not valid JSON/);
  assert.throws(() => collectParams(fields, { ...base, corpora: "wiki /w.txt" }), /NAME=PATH/);
});

test("a widget the page does not know is an error naming it", () => {
  const fields = fieldsFromSchema({ properties: { x: { type: "string", widget: "telescope" } } });
  assert.throws(() => collectParams(fields, { x: "1" }), /no widget called "telescope"/);
});

test("corpus specs are NAME=PATH lines; blank lines are ignored", () => {
  assert.deepEqual(corpusSpecs("wiki=/data/w.txt\n\n news = /data/n=1.txt "), [
    { name: "wiki", path: "/data/w.txt" },
    { name: "news", path: "/data/n=1.txt" },
  ]);
  assert.throws(() => corpusSpecs("no-equals"), /NAME=PATH/);
});
