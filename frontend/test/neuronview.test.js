import assert from "node:assert/strict";
import { test } from "node:test";

import {
  browserColumns,
  browserStateFromQuery,
  browserStateToQuery,
  directionsText,
  comparisonCorpora,
  comparisonRows,
  illusionSentence,
  illusionVerdict,
  tokenLayout,
} from "../src/neuronview.js";

test("browser state: defaults give an empty query, filters a stable one", () => {
  assert.equal(browserStateToQuery({ q: "", layer: "", label: "", sort: "score", offset: 0 }), "");
  assert.equal(
    browserStateToQuery({ q: "sport & games", layer: "0", label: "single corpus", sort: "consistency", offset: 100 }),
    "?q=sport+%26+games&layer=0&label=single+corpus&sort=consistency&offset=100",
  );
});

test("browser state round-trips through the query string", () => {
  const state = { basis: "neurons", q: "number", layer: "3", label: "consistent", sort: "layer", offset: 50 };
  assert.deepEqual(browserStateFromQuery(browserStateToQuery(state)), state);
  assert.deepEqual(browserStateFromQuery(""), { basis: "neurons", q: "", layer: "", label: "", sort: "score", offset: 0 });
  for (const basis of ["features:ab_C-9", "random:neurons", "random:features:x1"]) {
    const query = browserStateToQuery({ ...state, basis });
    assert.ok(query.startsWith(`?basis=${encodeURIComponent(basis)}&`), query);
    assert.equal(browserStateFromQuery(query).basis, basis);
  }
});

test("browser state: malformed values fall back to defaults, offsets snap to a page", () => {
  const state = browserStateFromQuery("?layer=-1&sort=drop&offset=73&q=%20x%20&basis=features:");
  assert.deepEqual(state, { basis: "neurons", q: "x", layer: "", label: "", sort: "score", offset: 50 });
  assert.equal(browserStateFromQuery("?basis=random:random:neurons").basis, "neurons");
  assert.equal(browserStateFromQuery("?basis=features:a%2Fb").basis, "neurons");
  assert.equal(browserStateFromQuery("?offset=abc").offset, 0);
  assert.equal(browserStateFromQuery("?layer=007").layer, "7");
});

test("columns: max only before descriptions exist, match only while searching", () => {
  assert.deepEqual(browserColumns(false, ""), ["neuron", "mean", "std", "max"]);
  assert.deepEqual(browserColumns(true, ""), ["neuron", "best descriptors", "score", "label", "consistency"]);
  assert.deepEqual(browserColumns(true, "sport"), ["neuron", "best descriptors", "match", "score", "label", "consistency"]);
});

test("token layout: word pieces join their word, specials are marked and keep their text", () => {
  const pieces = tokenLayout(["[CLS]", "play", "##ing", "chess", "[SEP]"], [null, 1, 2, 0.5, null]);
  assert.deepEqual(
    pieces.map((p) => [p.text, p.space, p.special]),
    [["[CLS]", false, true], ["play", true, false], ["ing", false, false], ["chess", true, false], ["[SEP]", true, true]],
  );
  assert.equal(pieces[2].raw, "##ing");
});

test("token layout: byte-level (Ġ) tokens start words, the rest continue them", () => {
  const pieces = tokenLayout(["<s>", "The", "Ġplay", "ing", "Ġcat", "</s>"], [null, 1, 1, 1, 1, null]);
  assert.deepEqual(
    pieces.map((p) => [p.text, p.space]),
    [["<s>", false], ["The", true], ["play", true], ["ing", false], ["cat", true], ["</s>", true]],
  );
});

test("random directions: counted over their layers", () => {
  assert.equal(directionsText({ units: 256, per_layer: { 0: 43, 1: 43, 2: 43, 3: 43, 4: 42, 5: 42 } }), "256 directions over 6 layers");
  assert.equal(directionsText({ units: 10, per_layer: { 2: 10 } }), "10 directions over 1 layer");
});

test("the illusion sentence is computed from the summary's numbers", () => {
  const summary = {
    corpora: ["wiki", "news"],
    neurons: { labels: { consistent: 0.0625 }, mean_consistency: 0.2 },
    random_directions: { labels: { consistent: 0.051 }, mean_consistency: 0.2249 },
  };
  assert.equal(
    illusionSentence(summary),
    "Neurons: 6.3 % consistent, mean consistency 0.20; random directions: 5.1 %, 0.22." +
      " Random directions are as consistent as neurons or more on these corpora: a description, even a" +
      " consistent one, is no evidence beyond what noise also gets.",
  );
  const other = { ...summary, random_directions: { labels: {}, mean_consistency: 0.5 } };
  assert.match(illusionSentence(other), /random directions: 0\.0 %, 0\.50\./);
  const none = { ...summary, neurons: { labels: {}, mean_consistency: null } };
  assert.match(illusionSentence(none), /^Neurons: 0\.0 % consistent, mean consistency –;/);
});

test("the verdict follows the numbers: noise ahead, close, or neurons clearly ahead", () => {
  const group = (consistent, mean) => ({ labels: { consistent }, mean_consistency: mean });
  assert.match(illusionVerdict(group(0.061, 0.22), group(0.07, 0.33)), /^Random directions are as consistent/);
  assert.match(illusionVerdict(group(0.085, 0.17), group(0.055, 0.13)), /^The two are close/);  // mean +0.04
  assert.match(illusionVerdict(group(0.3, 0.4), group(0.05, 0.1)), /^Neurons are more often consistent/);
  assert.match(illusionVerdict(group(0.3, null), group(0.05, null)), /^Neurons are more often consistent/);
});

test("the illusion sentence says when one corpus cannot give a consistency", () => {
  const summary = {
    corpora: ["sample"],
    neurons: { labels: {}, mean_consistency: null, per_corpus: { sample: { described_fraction: 0.352 } } },
    random_directions: { labels: {}, mean_consistency: null, per_corpus: { sample: { described_fraction: 0.3 } } },
  };
  assert.equal(
    illusionSentence(summary),
    "Only sample was described, so consistency across corpora is not computed; described there: neurons 35.2 %," +
      " random directions 30.0 %. When the two are close, a description alone is weak evidence that a neuron" +
      " encodes that concept.",
  );
});

test("comparison: neurons, features and each one's random directions, corpora in first-seen order", () => {
  const group = (units) => ({ units, per_corpus: {}, labels: {}, mean_consistency: null, per_layer: { 0: units } });
  const neurons = { corpora: ["wiki", "news"], neurons: group(9216), random_directions: group(256), basis: "neurons" };
  const features = { corpora: ["news", "ewt"], units: group(3072), random_directions: group(64), basis: "features:d1" };
  const rows = comparisonRows({ neurons, features }, "L3 residual");
  assert.deepEqual(rows.map((row) => row.name), [
    "neurons",
    "SAE features (L3 residual)",
    "random directions, FFN space (control)",
    "random directions, L3 residual space (control)",
  ]);
  assert.deepEqual(rows.map((row) => row.group.units), [9216, 3072, 256, 64]);
  assert.equal(rows[1].size, "3072 features");
  assert.deepEqual(comparisonCorpora({ neurons, features }), ["wiki", "news", "ewt"]);
  assert.deepEqual(comparisonRows({ neurons: null, features }).map((row) => row.name), ["SAE features", "random directions, dictionary space (control)"]);
  assert.deepEqual(comparisonRows({ neurons: null, features: null }), []);
});

test("illusion sentence names features for a feature run", () => {
  const group = (consistent, mean) => ({ labels: { consistent }, mean_consistency: mean, per_corpus: {} });
  const summary = { basis: "features:d1", corpora: ["a", "b"], units: group(0.3, 0.4), random_directions: group(0.05, 0.1) };
  assert.match(illusionSentence(summary), /^Features: 30\.0 % consistent, mean consistency 0\.40;.*Features are more often consistent/);
});
