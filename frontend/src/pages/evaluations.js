// The Evaluations page: start jobs from forms generated from their params schemas (jobform.js), follow progress,
// cancel, plot and tabulate stored results.

import { getJSON } from "../api.js";
import { el } from "../dom.js";
import { setupJobForms } from "../jobform.js";
import { jobBoard } from "../jobs.js";
import { draw } from "../plot.js";

async function showEvaluation(id) {
  const evaluation = await getJSON(`/api/evaluations/${encodeURIComponent(id)}`);
  const view = await getJSON(`/api/evaluations/${encodeURIComponent(id)}/figure`);
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

/** How many examples an evaluation used: a mixing evaluation counts sentences, the other kinds examples. */
export const exampleCount = (evaluation) => (evaluation.kind === "mixing" ? evaluation.summary.sentences : evaluation.summary.examples);

async function loadEvaluations(select, preferred) {
  const evaluations = await getJSON("/api/evaluations");
  select.replaceChildren(
    ...evaluations.map((e) => el("option", { value: e.id, text: `${e.kind} · ${e.created_at.slice(0, 16).replace("T", " ")} · ${e.model_name} · ${exampleCount(e)} examples · ${e.id}` })),
  );
  document.getElementById("evaluation-empty").hidden = evaluations.length > 0;
  const chosen = preferred || (evaluations[0] && evaluations[0].id);
  if (chosen) {
    select.value = chosen;
    await showEvaluation(chosen);
  }
}

/** Does a settled job change what this page shows? A new evaluation is opened; a model swap reloads the page
 * (its top bar names the model); a fitted head only adds a choice to the next form. */
export function afterJob(job) {
  if (job.status !== "done" || !job.result_id) return null;
  if (job.kind === "load_model") return { reload: true };
  if (job.kind.startsWith("eval_")) return { evaluation: job.result_id };
  return null;
}

export function setupEvaluations(spec) {
  const errorBox = document.getElementById("eval-error");
  const select = document.getElementById("evaluation-select");
  const showError = (message) => { errorBox.textContent = message; errorBox.hidden = !message; };
  const board = jobBoard({
    tbody: document.querySelector("#jobs-table tbody"),
    onSettled: async (job) => {
      const next = afterJob(job);
      if (next && next.reload) window.location.reload();
      else if (next) await loadEvaluations(select, next.evaluation);
    },
    onError: (error) => showError(error.message),
  });
  setupJobForms(document, spec.jobs, { context: { heads: spec.heads }, submit: (kind, params) => board.start(kind, params), onError: showError });
  select.addEventListener("change", () => showEvaluation(select.value).catch((error) => showError(error.message)));
  board.load().then(() => loadEvaluations(select)).catch((error) => showError(error.message));
}
