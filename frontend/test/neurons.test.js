import assert from "node:assert/strict";
import { test } from "node:test";

import { shade } from "../src/pages/neuron.js";
import { corpusSpecs } from "../src/pages/neurons.js";
import { probeParams } from "../src/pages/probes.js";

test("corpus specs are NAME=PATH lines; blank lines are ignored", () => {
  assert.deepEqual(corpusSpecs("wiki=/data/w.txt\n\n news = /data/n=1.txt "), [
    { name: "wiki", path: "/data/w.txt" },
    { name: "news", path: "/data/n=1.txt" },
  ]);
  assert.throws(() => corpusSpecs("no-equals"), /NAME=PATH/);
});

test("token shade grows with the activation and is clear for specials", () => {
  assert.equal(shade(null, 2), "transparent");
  assert.equal(shade(1, 0), "transparent");
  assert.equal(shade(1, 2), "rgba(244, 162, 97, 0.500)");
  assert.equal(shade(-3, 2), "rgba(244, 162, 97, 0.000)");
});

test("probe training params: layers parsed, numbers typed, checkboxes as booleans", () => {
  const params = probeParams([["treebank", "t.conllu"], ["layers", "0, 3,6"], ["rank", "64"], ["topological", "on"], ["name", ""]]);
  assert.deepEqual(params, { treebank: "t.conllu", layers: [0, 3, 6], rank: 64, topological: true, control: false });
});
