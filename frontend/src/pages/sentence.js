// The sentence page: the analysis form (generated from each method's params schema) and, on a stored
// analysis, its result view, "compare side by side", the randomisation test and the most active neurons.

import { getJSON, postAnalysis, postJSON } from "../api.js";
import { setupActiveFeatures, setupActiveNeurons } from "../activeneurons.js";
import { exampleMethod, headStatus, headsChanged, methodStatus, nextPollDelay, statusText, withHeads } from "../availability.js";
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

/** The example sentences (on the first screen, not above a stored analysis): one click fills the input and
 * runs the first usable method the example names. */
function renderExamples(spec, onPick) {
  const box = document.getElementById("examples");
  if (!box || spec.analysis || !spec.examples || !spec.examples.length) return;
  const buttons = spec.examples.map((example, index) => {
    const sentence = example.text_pair ? `${example.text} / ${example.text_pair}` : example.text;
    const button = el("button", { type: "button", class: "example-sentence", "data-example": index, title: example.look_for }, [
      el("strong", { text: example.label }),
      el("span", { text: sentence }),
    ]);
    button.addEventListener("click", () => onPick(example));
    return button;
  });
  box.replaceChildren(el("span", { class: "hint", text: "Try an example:" }), ...buttons);
  box.hidden = false;
}

/** Poll GET /api/availability (fast while a job that will make something usable runs); `onAnswer(answer)`. */
function watchAvailability(initial, onAnswer) {
  let current = initial;
  const poll = async () => {
    if (!document.hidden) {
      try {
        current = await getJSON("/api/availability");
        onAnswer(current);
      } catch {
        // the server may be restarting: keep what the page shows and ask again later
      }
    }
    setTimeout(poll, nextPollDelay(current));
  };
  setTimeout(poll, nextPollDelay(current));
}

function setupForm(spec) {
  const form = document.getElementById("analysis-form");
  const select = document.getElementById("method");
  const paramsBox = document.getElementById("params");
  const targetBox = document.getElementById("target");
  const button = document.getElementById("analyze-button");
  const notice = document.getElementById("method-availability");
  for (const method of spec.methods) {
    const option = document.createElement("option");
    option.value = method.name;
    option.textContent = `${method.title} (${method.name})`;
    select.append(option);
  }
  const stored = spec.analysis;
  if (stored) select.value = stored.method;
  let availability = spec.availability;
  let fields = [];
  let busy = false;
  const chosen = () => spec.methods.find((m) => m.name === select.value);
  const showAvailability = () => {
    const status = methodStatus(availability, select.value);
    notice.textContent = statusText(status);
    notice.hidden = status.available;
    notice.dataset.available = String(status.available);
    button.disabled = busy || !status.available;
  };
  const drawTarget = (current) => renderTarget(targetBox, spec.targets, current, headStatus(availability));
  const onMethod = (values = null) => {
    const method = chosen();
    const own = stored && stored.method === method.name;
    fields = fieldsFromSchema(method.params_schema);
    renderFields(paramsBox, fields, values || (own ? stored.params : {}));
    document.getElementById("method-citation").textContent = method.citation;
    document.getElementById("method-summary").textContent = method.summary;
    targetBox.hidden = !method.needs_target;
    if (method.needs_target) drawTarget(values ? null : stored && stored.target);
    showAvailability();
  };
  const currentTarget = () => {
    const target = collectTarget(readInputs(targetBox));
    return target ? { kind: target.kind, spec: target } : null;
  };
  const refreshHeads = async () => {
    const targets = withHeads(spec.targets, await getJSON("/api/heads"));
    if (JSON.stringify(targets) === JSON.stringify(spec.targets)) return;
    spec.targets = targets;
    if (chosen().needs_target) drawTarget(currentTarget());
  };
  // the target picker lists heads fitted since the page loaded: reloaded when it is opened, and when the
  // server's count of heads changes (a fit_head job finished)
  targetBox.addEventListener("focusin", (event) => {
    if (event.target.id === "target-kind" || event.target.id === "target-head") refreshHeads().catch(() => {});
  });
  watchAvailability(availability, (answer) => {
    const changed = headsChanged(availability, answer);
    availability = answer;
    showAvailability();
    if (changed) refreshHeads().catch(() => {});
    else if (chosen().needs_target) {
      const hint = document.getElementById("target-head-status");
      const text = statusText(headStatus(availability));
      if (hint && text) hint.textContent = `Fitted head: ${text}`;
    }
  });
  select.addEventListener("change", () => onMethod());
  onMethod();
  renderExamples(spec, (example) => {
    document.getElementById("text").value = example.text;
    document.getElementById("text_pair").value = example.text_pair || "";
    select.value = exampleMethod(example, availability, select.value);
    onMethod({});  // the method's defaults, the model's default target
    form.requestSubmit();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const method = chosen();
    const status = methodStatus(availability, method.name);
    if (!status.available) {
      showError(statusText(status));
      return;
    }
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
    const busyNote = document.getElementById("busy");
    busyNote.hidden = false;
    busy = true;
    showAvailability();
    try {
      const analysis = await postAnalysis(payload);
      window.location.assign(analysis.url);
    } catch (error) {
      showError(error.message);
    } finally {
      busyNote.hidden = true;
      busy = false;
      showAvailability();
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
  const extras = {};  // kept in the page's URL and share link beside the view: the features box's dictionary
  const figureView = setupFigureView({ url, figureUrl: `/api/analyses/${encodeURIComponent(id)}/figure`, controls: spec.controls, figures: spec.figures, extras });
  setupCompare(spec);
  setupSanity(spec);
  setupActiveNeurons(id);
  setupActiveFeatures(id, (dictionary) => {
    extras.dictionary = dictionary;
    figureView.syncUrl();
  });
}
