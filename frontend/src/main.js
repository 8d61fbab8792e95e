// Entry point of every page (the one bundle esbuild builds): wires the admin token field of the top bar, reads
// the page's JSON spec and hands it to that page's module. Only this module imports page modules.

import { setupAdminToken } from "./admin.js";
import { datasetsPanel } from "./datasets.js";
import { setupComparePage } from "./pages/compare.js";
import { setupEvaluations } from "./pages/evaluations.js";
import { setupNeuronPage } from "./pages/neuron.js";
import { setupNeuronBrowser } from "./pages/neurons.js";
import { setupProbes } from "./pages/probes.js";
import { setupSentencePage } from "./pages/sentence.js";

/** spec.page -> the setup of that page; a spec without `page` is the sentence page (form or analysis). */
const PAGES = {
  compare: setupComparePage,
  evaluations: setupEvaluations,
  feature: setupNeuronPage,
  neuron: setupNeuronPage,
  neurons: setupNeuronBrowser,
  probes: setupProbes,
  sentence: setupSentencePage,
};

function readSpec() {
  const node = document.getElementById("page-spec");
  return node ? JSON.parse(node.textContent) : null;
}

function boot() {
  setupAdminToken();
  const spec = readSpec();
  if (spec) PAGES[spec.page || "sentence"](spec);
  const datasets = document.getElementById("datasets");
  if (datasets) datasetsPanel(datasets);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
