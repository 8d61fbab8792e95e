import assert from "node:assert/strict";
import test from "node:test";

import { corpusName, datasetLabel, datasetRef, pickedCorpora, servingDatasets } from "../src/datasetlist.js";
import { collectParams, corporaValue, fieldsFromSchema } from "../src/params.js";

const texts = { id: "t1", name: "my wiki", kind: "texts", rows: 12 };
const labelled = { id: "l1", name: "reviews", kind: "labelled", rows: 200 };
const treebank = { id: "b1", name: "ewt", kind: "treebank", rows: 40 };

test("a field needing texts is served by every kind; labels and trees only by their own", () => {
  const all = [texts, labelled, treebank];
  assert.deepEqual(servingDatasets(all, "texts").map((d) => d.id), ["t1", "l1", "b1"]);
  assert.deepEqual(servingDatasets(all, "labelled").map((d) => d.id), ["l1"]);
  assert.deepEqual(servingDatasets(all, "treebank").map((d) => d.id), ["b1"]);
  assert.deepEqual(servingDatasets(all, "nonsense"), []);
});

test("datasets are described and referenced as the server expects", () => {
  assert.equal(datasetRef(labelled), "dataset:l1");
  assert.equal(datasetLabel(labelled), "reviews (labelled texts, 200 rows)");
  assert.equal(datasetLabel(treebank), "ewt (treebank, 40 sentences)");
});

test("corpus names keep letters, digits, - and _, and never collide", () => {
  assert.equal(corpusName("my wiki"), "my_wiki");
  assert.equal(corpusName("<script>.txt"), "script_txt");
  assert.equal(corpusName("   "), "corpus");
  assert.equal(corpusName("news", new Set(["news", "news-2"])), "news-3");
  assert.equal(corpusName("x".repeat(100)).length, 56);
});

test("picked datasets become corpora named after them, after the typed ones", () => {
  assert.deepEqual(pickedCorpora([texts, { ...texts, id: "t2" }], ["my_wiki"]), [
    { name: "my_wiki-2", path: "dataset:t1" },
    { name: "my_wiki-3", path: "dataset:t2" },
  ]);
  assert.deepEqual(corporaValue({ text: "news=/srv/news.txt\n", datasets: [texts] }), [
    { name: "news", path: "/srv/news.txt" },
    { name: "my_wiki", path: "dataset:t1" },
  ]);
  assert.equal(corporaValue({ text: " ", datasets: [] }), undefined);
});

test("a dataset field collects the picked reference or the typed path, and nothing when empty", () => {
  const schema = {
    properties: { data: { type: "string", widget: "dataset", dataset_kind: "labelled" } },
    required: ["data"],
  };
  const fields = fieldsFromSchema(schema);
  assert.equal(fields[0].type, "widget");
  assert.equal(fields[0].widget, "dataset");
  assert.deepEqual(collectParams(fields, { data: "dataset:l1" }), { data: "dataset:l1" });
  assert.deepEqual(collectParams(fields, { data: " /srv/x.tsv " }), { data: "/srv/x.tsv" });
  assert.deepEqual(collectParams(fields, { data: "" }), {});
});

test("the neuron evaluation takes ticked labelled datasets after typed JSON specs", async () => {
  const { labelledDatasetsValue } = await import("../src/params.js");
  const reviews = { id: "l1", name: "reviews", kind: "labelled", rows: 200 };
  assert.deepEqual(labelledDatasetsValue({ text: '[{"name": "reviews", "path": "/srv/r.tsv"}]', datasets: [reviews] }), [
    { name: "reviews", path: "/srv/r.tsv" },
    { name: "reviews-2", path: "dataset:l1" },
  ]);
  assert.equal(labelledDatasetsValue({ text: "", datasets: [] }), undefined);
  assert.throws(() => labelledDatasetsValue({ text: "{nope", datasets: [] }, "Datasets"), /Datasets: not valid JSON/);
  assert.throws(() => labelledDatasetsValue({ text: '{"name": "x"}', datasets: [] }, "Datasets"), /JSON list/);
});
