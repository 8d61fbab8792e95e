// src/api.js
function errorMessage(status, body) {
  if (body && body.error && body.error.message) return body.error.message;
  if (status === 413) return "The request is too large.";
  return `The server answered ${status}.`;
}
async function request(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new Error(`Cannot reach the server (${error.message}).`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = new Error(errorMessage(response.status, body));
    error.status = response.status;
    throw error;
  }
  return body;
}
function postAnalysis(payload) {
  return request("/api/analyses", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload)
  });
}
function getFigure(id, query) {
  return request(`/api/analyses/${encodeURIComponent(id)}/figure${query}`);
}

// src/dom.js
function el(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === void 0 || value === false) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) node.append(child);
  return node;
}
function renderFields(container, fields, values = {}) {
  container.replaceChildren();
  for (const field of fields) {
    const id = `param-${field.name}`;
    const current = values[field.name] ?? field.default ?? "";
    let input;
    if (field.type === "select") {
      input = el("select", { id, name: field.name }, field.options.map((option) => el("option", { value: option, text: option })));
      input.value = String(current);
    } else if (field.type === "checkbox") {
      input = el("input", { id, name: field.name, type: "checkbox", checked: Boolean(current) });
    } else {
      input = el("input", { id, name: field.name, type: field.type, step: field.step, min: field.min, max: field.max });
      input.value = current === null ? "" : String(current);
    }
    container.append(el("div", { class: "field" }, [el("label", { for: id, text: field.label, title: field.help }), input]));
  }
  container.hidden = fields.length === 0;
}
function renderControls(container, controls, view, onChange) {
  container.replaceChildren();
  for (const control of controls) {
    const id = `view-${control.name}`;
    let input;
    if (control.type === "range") {
      input = el("input", { id, type: "range", min: control.min, max: control.max, step: 1 });
      input.value = view[control.name];
      const output = el("output", { for: id, text: view[control.name] });
      input.addEventListener("input", () => {
        output.textContent = input.value;
      });
      input.addEventListener("change", () => onChange(control.name, input.value));
      container.append(el("div", { class: "control" }, [el("label", { for: id, text: control.label }), input, output]));
      continue;
    }
    if (control.type === "select") {
      input = el("select", { id }, control.options.map((option) => el("option", { value: option.value, text: option.label })));
      input.value = view[control.name];
      input.addEventListener("change", () => onChange(control.name, input.value));
    } else {
      input = el("input", { id, type: "checkbox", checked: view[control.name] === "1" });
      input.addEventListener("change", () => onChange(control.name, input.checked ? "1" : ""));
    }
    container.append(el("div", { class: "control" }, [el("label", { for: id, text: control.label }), input]));
  }
}

// src/params.js
function resolve(schema, node) {
  if (node && node.$ref) {
    const name = node.$ref.split("/").pop();
    return (schema.$defs || {})[name] || {};
  }
  if (node && node.anyOf) {
    const concrete = node.anyOf.find((option) => option.type !== "null");
    return { ...resolve(schema, concrete), nullable: true, default: node.default };
  }
  return node || {};
}
function fieldsFromSchema(schema) {
  const properties = schema && schema.properties || {};
  return Object.entries(properties).map(([name, raw]) => {
    const node = resolve(schema, raw);
    const field = {
      name,
      label: raw.title || node.title || name,
      help: raw.description || node.description || "",
      default: raw.default ?? node.default ?? null,
      type: "text",
      nullable: Boolean(node.nullable)
    };
    if (node.enum) {
      field.type = "select";
      field.options = node.enum.map(String);
    } else if (node.type === "integer" || node.type === "number") {
      field.type = "number";
      field.step = node.type === "integer" ? 1 : "any";
      field.integer = node.type === "integer";
      field.min = node.minimum ?? node.exclusiveMinimum ?? null;
      field.max = node.maximum ?? node.exclusiveMaximum ?? null;
    } else if (node.type === "boolean") {
      field.type = "checkbox";
    }
    return field;
  });
}
function collectParams(fields, raw) {
  const params = {};
  for (const field of fields) {
    const value = raw[field.name];
    if (field.type === "checkbox") {
      params[field.name] = Boolean(value);
    } else if (value === void 0 || value === null || value === "") {
      continue;
    } else if (field.type === "number") {
      const number = Number(value);
      params[field.name] = Number.isFinite(number) ? number : value;
    } else {
      params[field.name] = value;
    }
  }
  return params;
}
function collectTarget(raw) {
  if (!raw || !raw.kind) return null;
  if (raw.kind === "zero_shot") {
    const labels = String(raw.labels || "").split(",").map((s) => s.trim()).filter(Boolean);
    const target = { kind: "zero_shot" };
    if (labels.length) target.labels = labels;
    if (raw.template) target.template = raw.template;
    if (raw.label) target.label = raw.label;
    return target;
  }
  if (raw.kind === "classification") return raw.label ? { kind: "classification", label: raw.label } : { kind: "classification" };
  if (raw.kind === "masked_token") return raw.token ? { kind: "masked_token", token: raw.token } : { kind: "masked_token" };
  return { kind: raw.kind };
}

// src/plot.js
function plotConfig(config, Plotly) {
  const filename = config.toImageButtonOptions && config.toImageButtonOptions.filename || "figure";
  const svgButton = {
    name: "Download plot as SVG",
    icon: Plotly.Icons.disk,
    click: (gd) => Plotly.downloadImage(gd, { format: "svg", filename })
  };
  return { ...config, modeBarButtonsToAdd: [svgButton] };
}
function draw(element, figure) {
  const Plotly = window.Plotly;
  return Plotly.react(element, figure.data, figure.layout, plotConfig(figure.config || {}, Plotly));
}

// src/target.js
function renderTarget(container, targets, current) {
  container.replaceChildren(el("legend", { text: "Target (what to explain)" }));
  const kind = el("select", { id: "target-kind", name: "kind" }, targets.map((t) => el("option", { value: t.kind, text: t.kind })));
  if (current && current.kind) kind.value = current.kind;
  const details = el("div", { class: "target-details" });
  const fill = () => {
    const chosen = targets.find((t) => t.kind === kind.value) || {};
    details.replaceChildren();
    if (chosen.kind === "zero_shot") {
      details.append(
        labelled("target-labels", "Labels (comma separated)", el("input", { id: "target-labels", name: "labels", value: (chosen.labels || []).join(", ") })),
        labelled("target-template", "Prompt template", el("input", { id: "target-template", name: "template", value: chosen.template || "" })),
        labelled("target-label", "Label to explain (empty = predicted)", el("input", { id: "target-label", name: "label" }))
      );
    } else if (chosen.kind === "classification") {
      const select = el("select", { id: "target-label", name: "label" }, [el("option", { value: "", text: "predicted class" }), ...(chosen.labels || []).map((l) => el("option", { value: l, text: l }))]);
      details.append(labelled("target-label", "Class", select));
    } else if (chosen.kind === "masked_token") {
      details.append(labelled("target-token", `Token at ${chosen.mask_token || "[MASK]"} (empty = top prediction)`, el("input", { id: "target-token", name: "token" })));
    }
  };
  kind.addEventListener("change", fill);
  container.append(labelled("target-kind", "Kind", kind), details);
  fill();
}
function labelled(id, text, input) {
  return el("div", { class: "field" }, [el("label", { for: id, text }), input]);
}
function readInputs(container) {
  const raw = {};
  for (const input of container.querySelectorAll("input, select")) {
    raw[input.name] = input.type === "checkbox" ? input.checked : input.value;
  }
  return raw;
}

// src/view.js
function initialView(controls, fromUrl = {}) {
  const view = {};
  for (const control of controls) {
    const value = fromUrl[control.name];
    view[control.name] = value === void 0 || value === null ? String(control.value ?? "") : String(value);
  }
  return view;
}
function viewToQuery(view) {
  const params = new URLSearchParams();
  for (const key of Object.keys(view).sort()) {
    if (view[key] !== "" && view[key] !== void 0 && view[key] !== null) params.set(key, view[key]);
  }
  const query = params.toString();
  return query ? `?${query}` : "";
}
function permalink(origin, url, view) {
  return `${origin.replace(/\/$/, "")}${url}${viewToQuery(view)}`;
}
function queryToView(search) {
  const view = {};
  for (const [key, value] of new URLSearchParams(search)) view[key] = value;
  return view;
}

// src/main.js
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
      target: method.needs_target ? collectTarget(readInputs(targetBox)) : null
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
function setupResult(spec) {
  const analysis = spec.analysis;
  if (!analysis) return;
  const figureBox = document.getElementById("figure");
  const view = initialView(spec.controls || [], queryToView(window.location.search));
  const status = document.getElementById("share-status");
  const refresh = async () => {
    const query = viewToQuery(view);
    window.history.replaceState(null, "", `${analysis.url}${query}`);
    try {
      const answer = await getFigure(analysis.id, query);
      draw(figureBox, answer.figure);
      status.textContent = "";
    } catch (error) {
      status.textContent = error.message;
    }
  };
  renderControls(document.getElementById("controls"), spec.controls || [], view, (name, value) => {
    view[name] = value;
    refresh();
  });
  if (spec.figure) draw(figureBox, spec.figure);
  document.getElementById("share-button").addEventListener("click", async () => {
    const link = permalink(window.location.origin, analysis.url, view);
    try {
      await navigator.clipboard.writeText(link);
      status.textContent = `Link copied: ${link}`;
    } catch {
      status.textContent = `Copy this link: ${link}`;
    }
    status.dataset.link = link;
  });
}
function boot() {
  const spec = readSpec();
  if (!spec) return;
  if (document.getElementById("analysis-form")) setupForm(spec);
  setupResult(spec);
}
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
