// The Probes page: train probe sets as jobs, plot per-layer metrics and topological curves, draw a tree.

import { getJSON, postAnalysis } from "../api.js";
import { el } from "../dom.js";
import { setupJobForms } from "../jobform.js";
import { progressText } from "../jobprogress.js";
import { isActive, jobBoard } from "../jobs.js";
import { draw } from "../plot.js";

async function showProbeSet(id) {
  const view = await getJSON(`/api/probes/${encodeURIComponent(id)}/figure`);
  await draw(document.getElementById("probe-metrics"), view.figures.metrics);
  const topo = document.getElementById("probe-topological");
  if (view.figures.topological) await draw(topo, view.figures.topological);
  else topo.replaceChildren(el("p", { class: "hint", text: "No tree topological curves were trained for this set." }));
  const table = document.getElementById("probe-table");
  const head = el("tr", {}, view.table.columns.map((text) => el("th", { text })));
  const rows = view.table.rows.map((cells) => el("tr", {}, cells.map((text) => el("td", { text: String(text) }))));
  table.replaceChildren(el("thead", {}, [head]), el("tbody", {}, rows));
  const link = document.getElementById("probe-json");
  link.href = `/api/probes/${encodeURIComponent(id)}`;
  link.download = `bertscope-probes-${id}.json`;
  showExamples(view.examples || []);
}

/** Buttons that fill the tree form with a sentence of the set's dev treebank (drawn with its gold tree). */
function showExamples(examples) {
  const box = document.getElementById("tree-examples");
  const buttons = examples.map((text) => el("button", { type: "button", class: "example", "data-text": text, text: text.length > 48 ? `${text.slice(0, 45)}...` : text }));
  box.replaceChildren(el("span", { class: "hint", text: "Dev sentences:" }), ...buttons);
  box.hidden = examples.length === 0;
}

/** While probe sets are being trained (the default set on a first start, or any other), say so with the
 * progress and an estimate of the time left; the set appears below when its job is done. */
function showTraining(jobs) {
  const box = document.getElementById("probe-training");
  const active = jobs.filter(isActive);
  box.replaceChildren(
    ...active.map((job) => {
      const name = (job.params && job.params.name) || "a new probe set";
      const text = `Training probe set \u201c${name}\u201d: ${progressText(job)}. It appears below when it is done.`;
      return el("p", { class: "training-job", "data-job": job.id, text });
    }),
  );
  box.hidden = active.length === 0;
  document.getElementById("probes-empty").textContent = active.length
    ? "No probe set yet: the one being trained (see above) will appear here."
    : "No probe set has been trained on the loaded model yet.";
}

async function loadProbeSets(select, preferred) {
  const sets = await getJSON("/api/probes");
  select.replaceChildren(...sets.map((s) => el("option", { value: s.id, text: `${s.name} · layers ${s.layers[0]}–${s.layers[s.layers.length - 1]} · rank ${s.rank} · ${s.created_at.slice(0, 16).replace("T", " ")} · ${s.id}` })));
  document.getElementById("probes-empty").hidden = sets.length > 0;
  document.getElementById("tree-form").hidden = sets.length === 0;
  const chosen = preferred || (sets[0] && sets[0].id);
  if (chosen) {
    select.value = chosen;
    await showProbeSet(chosen);
  }
}

function setupTreeForm(select, showError) {
  const form = document.getElementById("tree-form");
  document.getElementById("tree-examples").addEventListener("click", (event) => {
    const button = event.target.closest("button.example");
    if (button) document.getElementById("tree-text").value = button.dataset.text;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const text = document.getElementById("tree-text").value;
    const layer = document.getElementById("tree-layer").value;
    const params = { probe_id: select.value || null };
    if (layer !== "") params.layer = Number(layer);
    try {
      const analysis = await postAnalysis({ method: "structural_probe", text, params });
      window.location.assign(analysis.url);
    } catch (error) {
      showError(error.message);
    }
  });
}

export function setupProbes(spec) {
  const errorBox = document.getElementById("probe-error");
  const select = document.getElementById("probe-select");
  const showError = (message) => { errorBox.textContent = message; errorBox.hidden = !message; };
  const board = jobBoard({
    tbody: document.querySelector("#jobs-table tbody"),
    kinds: ["train_probes"],
    onSettled: async (job) => {
      if (job.status === "done" && job.result_id) await loadProbeSets(select, job.result_id);
    },
    onError: (error) => showError(error.message),
    onChange: showTraining,
  });
  setupJobForms(document, spec.jobs, { submit: (kind, params) => board.start(kind, params), onError: showError });
  select.addEventListener("change", () => showProbeSet(select.value).catch((error) => showError(error.message)));
  setupTreeForm(select, showError);
  board.load().then(() => loadProbeSets(select)).catch((error) => showError(error.message));
}
