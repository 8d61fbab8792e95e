// The sentence page: the analysis form (generated from each method's params schema) and, on a stored
// analysis, its result view, "compare side by side", the randomisation test and the most active neurons.

import { postAnalysis, postJSON } from "../api.js";
import { setupActiveNeurons } from "../activeneurons.js";
import { el, renderFields } from "../dom.js";
import { setupFigureView } from "../figureview.js";
import { collectParams, collectTarget, fieldsFromSchema } from "../params.js";
import { draw } from "../plot.js";
import { readInputs, renderTarget } from "../target.js";

function showError(message) {
  const box = document.getElementById("form-error");
  box.textContent = message;
  box.hidden = !message;
}

function setupForm(spec) {
  const form = document.getElementById("analysis-form");
  const select = document.getElementById("method");
  const paramsBox = document.getElementById("params");
  const targetBox = document.getElementById("target");
  const citation = document.getElementById("method-citation");
  for (const method of spec.methods) {
    const option = document.createElement("option");
    option.value = method.name;
    option.textContent = `${method.title} (${method.name})`;
    select.append(option);
  }
  const stored = spec.analysis;
  if (stored) select.value = stored.method;
  let fields = [];
  const onMethod = () => {
    const method = spec.methods.find((m) => m.name === select.value);
    fields = fieldsFromSchema(method.params_schema);
    renderFields(paramsBox, fields, stored && stored.method === method.name ? stored.params : {});
    citation.textContent = method.citation;
    targetBox.hidden = !method.needs_target;
    if (method.needs_target) renderTarget(targetBox, spec.targets, stored && stored.target);
  };
  select.addEventListener("change", onMethod);
  onMethod();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const method = spec.methods.find((m) => m.name === select.value);
    const payload = {
      method: method.name,
      text: document.getElementById("text").value,
      text_pair: document.getElementById("text_pair").value.trim() ? document.getElementById("text_pair").value : null,
      params: collectParams(fields, readInputs(paramsBox)),
      target: method.needs_target ? collectTarget(readInputs(targetBox)) : null,
    };
    if (!payload.text.trim()) {
      showError("Type a sentence first.");
      return;
    }
    const busy = document.getElementById("busy");
    busy.hidden = false;
    document.getElementById("analyze-button").disabled = true;
    try {
      const analysis = await postAnalysis(payload);
      window.location.assign(analysis.url);
    } catch (error) {
      showError(error.message);
    } finally {
      busy.hidden = true;
      document.getElementById("analyze-button").disabled = false;
    }
  });
}

/** On a mixing analysis: run other mixing methods on the same input and open them side by side. */
function setupCompare(spec) {
  const analysis = spec.analysis;
  const box = document.getElementById("compare-box");
  const current = spec.methods.find((m) => m.name === analysis.method);
  if (!box || !current || !["mixing", "attribution"].includes(current.kind)) return;
  const others = spec.methods.filter((m) => m.kind === current.kind && m.name !== analysis.method);
  const target = analysis.target && analysis.target.spec ? analysis.target.spec : null;
  const checks = others.map((m) => el("label", { class: "inline" }, [el("input", { type: "checkbox", value: m.name, checked: true }), m.name]));
  const button = el("button", { type: "button", id: "compare-button", text: "Compare side by side" });
  const note = el("span", { class: "hint", role: "status" });
  box.replaceChildren(el("span", { class: "hint", text: "Compare with:" }), ...checks, button, note);
  box.hidden = false;
  button.addEventListener("click", async () => {
    const chosen = checks.map((label) => label.querySelector("input")).filter((input) => input.checked).map((input) => input.value).slice(0, 7);
    if (!chosen.length) {
      note.textContent = "Pick at least one method.";
      return;
    }
    button.disabled = true;
    note.textContent = "running…";
    try {
      const ids = [analysis.id];
      for (const method of chosen) {
        ids.push((await postAnalysis({ method, text: analysis.text, text_pair: analysis.text_pair, params: {}, target })).id);
      }
      window.location.assign(`/compare/${ids.join(",")}`);
    } catch (error) {
      note.textContent = error.message;
      button.disabled = false;
    }
  });
}

/** On an attribution: run the model-parameter randomisation test on demand and plot it. */
function setupSanity(spec) {
  const box = document.getElementById("sanity-box");
  const current = spec.methods.find((m) => m.name === spec.analysis.method);
  if (!box || !current || current.kind !== "attribution") return;
  box.hidden = false;
  const status = document.getElementById("sanity-status");
  const button = document.getElementById("sanity-button");
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "re-initialising blocks and re-running the method…";
    try {
      const answer = await postJSON(`/api/analyses/${encodeURIComponent(spec.analysis.id)}/randomisation`);
      await draw(document.getElementById("sanity-figure"), answer.figure);
      status.textContent = "";
    } catch (error) {
      status.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
}

export function setupSentencePage(spec) {
  if (document.getElementById("analysis-form")) setupForm(spec);
  if (!spec.analysis) return;
  const { id, url } = spec.analysis;
  setupFigureView({ url, figureUrl: `/api/analyses/${encodeURIComponent(id)}/figure`, controls: spec.controls, figures: spec.figures });
  setupCompare(spec);
  setupSanity(spec);
  setupActiveNeurons(id);
}
