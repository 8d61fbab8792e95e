// Entry point of every page: wires the sentence form, the result view and the Share button.

import { setupAdminToken } from "./admin.js";
import { getFigure, postAnalysis } from "./api.js";
import { setupEvaluations } from "./evaluations.js";
import { setupProbes } from "./probes.js";
import { setupActiveNeurons, setupNeuronBrowser, setupNeuronPage } from "./neurons.js";
import { el, renderControls, renderFields } from "./dom.js";
import { collectParams, collectTarget, fieldsFromSchema } from "./params.js";
import { hoverText } from "./hover.js";
import { draw } from "./plot.js";
import { readInputs, renderTarget } from "./target.js";
import { initialView, permalink, queryToView, viewToQuery } from "./view.js";

function readSpec() {
  const node = document.getElementById("page-spec");
  return node ? JSON.parse(node.textContent) : null;
}

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

/** Controls + figures of one result view; the view lives in the URL query so links reopen it. */
function setupFigureView({ url, figureUrl, controls, figures }) {
  const figureBox = document.getElementById("figure");
  const stripBox = document.getElementById("strip");
  const auxBox = document.getElementById("aux");
  const view = initialView(controls || [], queryToView(window.location.search));
  const status = document.getElementById("share-status");
  const show = async (answer) => {
    await draw(figureBox, answer.main);
    if (stripBox && answer.strip) await draw(stripBox, answer.strip);
    else if (stripBox && window.Plotly) window.Plotly.purge(stripBox);
    if (auxBox && answer.aux) await draw(auxBox, answer.aux);
    figureBox.dataset.rendered = String(Number(figureBox.dataset.rendered || 0) + 1);
  };
  const refresh = async () => {
    const query = viewToQuery(view);
    window.history.replaceState(null, "", `${url}${query}`);
    try {
      await show((await getFigure(figureUrl, query)).figures);
      status.textContent = "";
    } catch (error) {
      status.textContent = error.message;
    }
  };
  const rowHint = document.getElementById("row-hint");
  if (rowHint) rowHint.hidden = !(controls || []).some((control) => control.name === "row");
  renderControls(document.getElementById("controls"), controls || [], view, (name, value) => {
    view[name] = value;
    refresh();
  });
  if (figures) {
    show(figures).then(() => {
      const info = document.getElementById("hover-info");
      figureBox.on("plotly_hover", (event) => {
        const point = event.points && event.points[0];
        if (info && point) info.textContent = hoverText(point);
      });
      figureBox.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        const positions = (figureBox.layout.meta && figureBox.layout.meta.positions) || [];
        if (!point || positions[point.y] === undefined || !("row" in view)) return;
        view.row = String(positions[point.y]);
        refresh();
      });
    });
  }
  document.getElementById("share-button").addEventListener("click", async () => {
    const link = permalink(window.location.origin, url, view);
    try {
      await navigator.clipboard.writeText(link);
      status.textContent = `Link copied: ${link}`;
    } catch {
      status.textContent = `Copy this link: ${link}`;
    }
    status.dataset.link = link;
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
      const response = await fetch(`/api/analyses/${encodeURIComponent(spec.analysis.id)}/randomisation`, { method: "POST" });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error ? body.error.message : `The server answered ${response.status}.`);
      await draw(document.getElementById("sanity-figure"), body.figure);
      status.textContent = "";
    } catch (error) {
      status.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
}

function boot() {
  setupAdminToken();
  const spec = readSpec();
  if (!spec) return;
  if (spec.page === "evaluations") {
    setupEvaluations();
    return;
  }
  if (spec.page === "neurons") {
    setupNeuronBrowser(spec);
    return;
  }
  if (spec.page === "neuron") {
    setupNeuronPage(spec);
    return;
  }
  if (spec.page === "probes") {
    setupProbes();
    return;
  }
  if (spec.page === "compare") {
    setupFigureView({ url: spec.url, figureUrl: spec.figure_url, controls: spec.controls, figures: spec.figures });
    return;
  }
  if (document.getElementById("analysis-form")) setupForm(spec);
  if (spec.analysis) {
    const { id, url } = spec.analysis;
    setupFigureView({ url, figureUrl: `/api/analyses/${encodeURIComponent(id)}/figure`, controls: spec.controls, figures: spec.figures });
    setupCompare(spec);
    setupSanity(spec);
    setupActiveNeurons(id);
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
