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
  fillTable(document.getElementById("probe-table"), view.table);
  await showChecks(view.sections || []);
  const link = document.getElementById("probe-json");
  link.href = `/api/probes/${encodeURIComponent(id)}`;
  link.download = `bertscope-probes-${id}.json`;
  showExamples(view.examples || []);
}

function fillTable(table, { columns, rows }) {
  const head = el("tr", {}, columns.map((text) => el("th", { text })));
  const body = rows.map((cells) => el("tr", {}, cells.map((text) => el("td", { text: String(text) }))));
  table.replaceChildren(el("thead", {}, [head]), el("tbody", {}, body));
}

/** What the probe set proves beyond its metrics (second treebank, selectivity, description length, amnesic
 * check): one section each with a plain-words reading, a figure and a table, all built server-side. */
async function showChecks(sections) {
  const box = document.getElementById("probe-checks");
  box.replaceChildren();
  for (const section of sections) {
    const figure = el("div", { class: "figure" });
    const table = el("table", { class: "methods" });
    fillTable(table, section.table);
    const reading = section.reading.map((text) => el("p", { class: "reading", text }));
    box.append(el("section", { class: "probe-check", id: `probe-check-${section.id}` }, [el("h4", { text: section.title }), ...reading, figure, table]));
    if (section.figure) await draw(figure, section.figure);
    else figure.remove();
  }
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
