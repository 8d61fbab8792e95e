import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ACTIVE_POLL_MS,
  IDLE_POLL_MS,
  activeJobs,
  exampleMethod,
  headStatus,
  headsChanged,
  methodStatus,
  nextPollDelay,
  statusText,
  withHeads,
} from "../src/availability.js";

const USABLE = { available: true, reason: "", hint: "", job: null };
const TRAINING = { id: "j1", kind: "train_probes", status: "running", progress: 0.4, eta_s: 61 };
const training = {
  available: false,
  reason: "A probe set is being trained: 40 %, about 1 min left.",
  hint: "It becomes usable here as soon as the training finishes, without reloading.",
  job: TRAINING,
};
const noProbes = { available: false, reason: "No probe set has been trained.", hint: "Train one on the Probes page.", job: null };
const answer = (probe, head = USABLE, heads = 1) => ({
  methods: { attention: USABLE, integrated_gradients: USABLE, structural_probe: probe },
  targets: { head },
  counts: { probe_sets: probe.available ? 1 : 0, heads },
});

test("a method's status: listed, or usable when the answer does not name it", () => {
  assert.equal(methodStatus(answer(noProbes), "structural_probe"), noProbes);
  assert.equal(methodStatus(answer(noProbes), "attention").available, true);
  assert.equal(methodStatus(answer(noProbes), "not_listed").available, true);
  assert.equal(methodStatus(null, "attention").available, true);
  assert.equal(headStatus(answer(USABLE, noProbes)), noProbes);
  assert.equal(headStatus({}).available, true);
});

test("status text: reason then hint, nothing when usable", () => {
  assert.equal(statusText(noProbes), "No probe set has been trained. Train one on the Probes page.");
  assert.equal(statusText(training), `${training.reason} ${training.hint}`);
  assert.equal(statusText(USABLE), "");
  assert.equal(statusText({ available: false, reason: "Why.", hint: "" }), "Why.");
});

test("poll fast only while a job that will make something usable is queued or running", () => {
  assert.equal(nextPollDelay(answer(training)), ACTIVE_POLL_MS);
  assert.equal(nextPollDelay(answer(noProbes)), IDLE_POLL_MS);
  assert.equal(nextPollDelay(answer(USABLE)), IDLE_POLL_MS);
  const fitting = { ...noProbes, job: { id: "j2", kind: "fit_head", status: "queued", progress: 0 } };
  assert.equal(nextPollDelay(answer(USABLE, fitting, 0)), ACTIVE_POLL_MS);
  assert.ok(ACTIVE_POLL_MS < IDLE_POLL_MS);
});

test("active jobs: each job once, however many entries wait for it", () => {
  const both = { methods: { structural_probe: training, other_probe: training }, targets: { head: USABLE } };
  assert.deepEqual(activeJobs(both), [TRAINING]);
  assert.deepEqual(activeJobs(answer(noProbes)), []);
});

test("an example runs its first usable method, else the method picked", () => {
  const example = { methods: ["structural_probe", "alti"] };
  assert.equal(exampleMethod(example, answer(USABLE), "attention"), "structural_probe");
  const withAlti = { ...answer(noProbes), methods: { ...answer(noProbes).methods, alti: USABLE } };
  assert.equal(exampleMethod(example, withAlti, "attention"), "alti");
  assert.equal(exampleMethod({ methods: ["structural_probe"] }, answer(noProbes), "attention"), "attention");
  assert.equal(exampleMethod({}, answer(USABLE), "value_zeroing"), "value_zeroing");
});

test("heads changed: by the server's count of heads", () => {
  assert.equal(headsChanged(answer(USABLE, USABLE, 1), answer(USABLE, USABLE, 2)), true);
  assert.equal(headsChanged(answer(USABLE, noProbes, 0), answer(USABLE, USABLE, 1)), true);
  assert.equal(headsChanged(answer(USABLE, USABLE, 1), answer(training, USABLE, 1)), false);
});

test("targets with heads: the head entry replaced, added last, or dropped", () => {
  const zeroShot = { kind: "zero_shot", labels: ["negative", "positive"] };
  const head = { id: "h1", name: "sst2", labels: ["neg", "pos"] };
  const added = withHeads([zeroShot], [head]);
  assert.deepEqual(added, [zeroShot, { kind: "head", heads: [head] }]);
  const newer = { id: "h2", name: "sst2-b" };
  assert.deepEqual(withHeads(added, [newer, head]), [zeroShot, { kind: "head", heads: [newer, head] }]);
  assert.deepEqual(withHeads(added, []), [zeroShot]);
  assert.deepEqual(withHeads([zeroShot], []), [zeroShot]);
});
