// The Evaluations page: start a job, follow its progress, cancel it, plot stored results.

import { el } from "./dom.js";
import { draw } from "./plot.js";

async function api(url, options = {}) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && body.error && body.error.message) || `The server answered ${response.status}.`);
  return body;
}

/** Markdown-like rows of mean ± std per method and layer. */
export function summaryRows(summary) {
  return Object.entries(summary.summary).map(([method, stats]) => [
    method,
    ...stats.mean.map((mean, layer) => (mean === null ? "n/a" : `${mean.toFixed(3)} ± ${stats.std[layer].toFixed(3)}`)),
  ]);
}

export function isActive(job) {
  return job.status === "queued" || job.status === "running";
}

function renderJobs(tbody, jobs, onCancel) {
  tbody.replaceChildren(
    ...jobs.map((job) => {
      const cancel = isActive(job) ? el("button", { type: "button", class: "cancel", text: "Cancel" }) : el("span");
      if (isActive(job)) cancel.addEventListener("click", () => onCancel(job.id));
      return el("tr", { "data-job": job.id, "data-status": job.status }, [
        el("td", {}, [el("code", { text: job.id })]),
        el("td", { text: job.kind }),
        el("td", { class: "status", text: job.status }),
        el("td", {}, [el("progress", { max: 1, value: job.progress })]),
        el("td", { text: job.message }),
        el("td", {}, [cancel]),
      ]);
    }),
  );
}

async function showEvaluation(id) {
  const evaluation = await api(`/api/evaluations/${encodeURIComponent(id)}`);
  const figure = await api(`/api/evaluations/${encodeURIComponent(id)}/figure`);
  await draw(document.getElementById("evaluation-figure"), figure.figure);
  const table = document.getElementById("evaluation-table");
  const layers = evaluation.summary.layers;
  const head = el("tr", {}, [el("th", { text: "method" }), ...Array.from({ length: layers }, (_, l) => el("th", { text: `layer ${l}` }))]);
  table.replaceChildren(el("thead", {}, [head]), el("tbody", {}, summaryRows(evaluation.summary).map((cells) => el("tr", {}, cells.map((text) => el("td", { text }))))));
  const link = document.getElementById("evaluation-json");
  link.href = `/api/evaluations/${encodeURIComponent(id)}`;
  link.download = `bertscope-evaluation-${id}.json`;
}

async function loadEvaluations(select, preferred) {
  const evaluations = await api("/api/evaluations?kind=mixing");
  select.replaceChildren(
    ...evaluations.map((e) => el("option", { value: e.id, text: `${e.created_at.slice(0, 16).replace("T", " ")} · ${e.model_name} · ${e.summary.sentences} sentences · ${e.id}` })),
  );
  document.getElementById("evaluation-empty").hidden = evaluations.length > 0;
  const chosen = preferred || (evaluations[0] && evaluations[0].id);
  if (chosen) {
    select.value = chosen;
    await showEvaluation(chosen);
  }
}

export function setupEvaluations() {
  const form = document.getElementById("eval-form");
  const errorBox = document.getElementById("eval-error");
  const tbody = document.querySelector("#jobs-table tbody");
  const select = document.getElementById("evaluation-select");
  const seenDone = new Set();
  let timer = null;
  const showError = (message) => { errorBox.textContent = message; errorBox.hidden = !message; };
  const poll = async () => {
    try {
      const jobs = await api("/api/jobs");
      renderJobs(tbody, jobs, async (id) => { await api(`/api/jobs/${id}/cancel`, { method: "POST" }); poll(); });
      const finished = jobs.find((job) => job.status === "done" && job.result_id && !seenDone.has(job.id));
      for (const job of jobs) if (job.status === "done") seenDone.add(job.id);
      if (finished && timer !== null) await loadEvaluations(select, finished.result_id);
      clearTimeout(timer);
      timer = jobs.some(isActive) ? setTimeout(poll, 1000) : null;
    } catch (error) {
      showError(error.message);
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const data = new FormData(form);
    const params = {
      data: data.get("data"),
      row: data.get("row"),
      methods: data.getAll("methods"),
    };
    if (data.get("limit")) params.limit = Number(data.get("limit"));
    try {
      await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ kind: "eval_mixing", params }) });
      timer = timer || 0;
      poll();
    } catch (error) {
      showError(error.message);
    }
  });
  select.addEventListener("change", () => showEvaluation(select.value).catch((error) => showError(error.message)));
  poll().then(() => loadEvaluations(select)).catch((error) => showError(error.message));
}
