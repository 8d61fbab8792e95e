// The Evaluations page: start jobs from forms, follow progress, cancel, plot and tabulate stored results.

import { withAdmin } from "./admin.js";
import { el } from "./dom.js";
import { draw } from "./plot.js";

export async function api(url, options = {}) {
  const response = await fetch(url, withAdmin(options));
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && body.error && body.error.message) || `The server answered ${response.status}.`);
  return body;
}

export function isActive(job) {
  return job.status === "queued" || job.status === "running";
}

/** Job params from a form's raw entries: lists for repeated names, numbers typed, empty fields left out. */
export function formParams(entries, numeric = []) {
  const params = {};
  for (const [name, value] of entries) {
    if (value === "" || value === null || value === undefined) continue;
    if (name === "methods") (params.methods = params.methods || []).push(value);
    else if (name === "target_head") params.target = { kind: "head", head: value };
    else params[name] = numeric.includes(name) ? Number(value) : value;
  }
  return params;
}

export function renderJobs(tbody, jobs, onCancel) {
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
  const view = await api(`/api/evaluations/${encodeURIComponent(id)}/figure`);
  await draw(document.getElementById("evaluation-figure"), view.figure);
  const table = document.getElementById("evaluation-table");
  const head = el("tr", {}, view.table.columns.map((text) => el("th", { text })));
  const rows = view.table.rows.map((cells) => el("tr", {}, cells.map((text) => el("td", { text: String(text) }))));
  table.replaceChildren(el("thead", {}, [head]), el("tbody", {}, rows));
  document.getElementById("evaluation-meta").textContent =
    `${evaluation.kind} on ${evaluation.model_name} @ ${evaluation.model_revision}; params ${JSON.stringify(evaluation.params)}`;
  const link = document.getElementById("evaluation-json");
  link.href = `/api/evaluations/${encodeURIComponent(id)}`;
  link.download = `bertscope-evaluation-${id}.json`;
}

async function loadEvaluations(select, preferred) {
  const evaluations = await api("/api/evaluations");
  select.replaceChildren(
    ...evaluations.map((e) => el("option", { value: e.id, text: `${e.kind} · ${e.created_at.slice(0, 16).replace("T", " ")} · ${e.model_name} · ${e.summary.sentences ?? e.summary.examples} examples · ${e.id}` })),
  );
  document.getElementById("evaluation-empty").hidden = evaluations.length > 0;
  const chosen = preferred || (evaluations[0] && evaluations[0].id);
  if (chosen) {
    select.value = chosen;
    await showEvaluation(chosen);
  }
}

export function setupEvaluations() {
  const errorBox = document.getElementById("eval-error");
  const tbody = document.querySelector("#jobs-table tbody");
  const select = document.getElementById("evaluation-select");
  const seenDone = new Set();
  let timer = null;
  let watching = false;
  const showError = (message) => { errorBox.textContent = message; errorBox.hidden = !message; };
  const poll = async () => {
    try {
      const jobs = await api("/api/jobs");
      renderJobs(tbody, jobs, async (id) => { await api(`/api/jobs/${id}/cancel`, { method: "POST" }); poll(); });
      const fresh = jobs.filter((job) => job.status === "done" && job.result_id && !seenDone.has(job.id));
      const finished = fresh.find((job) => job.kind !== "fit_head" && job.kind !== "load_model");
      const swapped = watching && fresh.some((job) => job.kind === "load_model");
      for (const job of jobs) if (job.status === "done") seenDone.add(job.id);
      if (swapped) window.location.reload(); // the top bar names the new model
      if (finished && watching) await loadEvaluations(select, finished.result_id);
      clearTimeout(timer);
      timer = jobs.some(isActive) ? setTimeout(poll, 1000) : null;
    } catch (error) {
      showError(error.message);
    }
  };
  for (const form of document.querySelectorAll("form.job-form")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      const params = formParams(new FormData(form).entries(), ["limit"]);
      try {
        await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ kind: form.dataset.kind, params }) });
        watching = true;
        poll();
      } catch (error) {
        showError(error.message);
      }
    });
  }
  select.addEventListener("change", () => showEvaluation(select.value).catch((error) => showError(error.message)));
  poll().then(() => loadEvaluations(select)).catch((error) => showError(error.message));
}
