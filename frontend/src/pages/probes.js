// The Probes page: train probe sets as jobs, plot per-layer metrics and topological curves, draw a tree.

import { getJSON, postAnalysis } from "../api.js";
import { el } from "../dom.js";
import { setupJobForms } from "../jobform.js";
import { jobBoard } from "../jobs.js";
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
  for (const button of document.querySelectorAll("button.example")) {
    button.addEventListener("click", () => { document.getElementById("tree-text").value = button.dataset.text; });
  }
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
  });
  setupJobForms(document, spec.jobs, { submit: (kind, params) => board.start(kind, params), onError: showError });
  select.addEventListener("change", () => showProbeSet(select.value).catch((error) => showError(error.message)));
  setupTreeForm(select, showError);
  board.load().then(() => loadProbeSets(select)).catch((error) => showError(error.message));
}
