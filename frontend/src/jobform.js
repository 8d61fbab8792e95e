// Job forms generated from each job's params JSON schema (the page spec's `jobs`, the schemas GET /api/jobs/kinds
// lists): one input per field, named after the field, with id `<kind>-<field>`; advanced fields folded in a
// <details>; submitting collects the params (params.collectParams) and hands them to `submit(kind, params)`.
// Every text from the schema goes in through textContent (dom.el), never as markup.

import { getJSON } from "./api.js";
import { corporaWidget, datasetWidget, labelledDatasetsWidget } from "./datasets.js";
import { el } from "./dom.js";
import { JOB_SETTLED } from "./jobs.js";
import { collectParams, fieldsFromSchema } from "./params.js";

/** The id of a field's input: `<kind>-<field>` (choices and widget parts add `-<option>` / `-<part>`). */
export const fieldId = (kind, name) => `${kind}-${name}`;

/** The text an input starts with: lists comma separated, JSON as JSON (an empty {} or [] as nothing). */
export function initialText(field) {
  const value = field.default;
  if (value === null || value === undefined) return "";
  if (field.type === "list") return value.join(", ");
  if (field.type === "widget") {
    const empty = typeof value === "object" && Object.keys(value).length === 0;
    return empty ? "" : JSON.stringify(value);
  }
  return String(value);
}

const hint = (field) => (field.help ? el("span", { class: "hint", text: field.help }) : null);
const present = (nodes) => nodes.filter(Boolean);

function labelled(id, field, input, extra = []) {
  return el("div", { class: "field", "data-field": field.name }, present([el("label", { for: id, text: field.label }), input, ...extra, hint(field)]));
}

function textInput(id, field, attributes = {}) {
  const input = el("input", { id, name: field.name, placeholder: field.placeholder || null, required: field.required, ...attributes });
  input.value = initialText(field);
  return input;
}

/** A select of the field's options; an optional field starts with "default" (left out of the params). */
function selectField(id, field) {
  const options = field.nullable ? ["", ...field.options] : field.options;
  const select = el("select", { id, name: field.name }, options.map((value) => el("option", { value, text: value || "default" })));
  select.value = initialText(field);
  return { node: labelled(id, field, select), read: () => select.value };
}

function checkboxField(id, field) {
  const box = el("input", { id, name: field.name, type: "checkbox", checked: Boolean(field.default) });
  const label = el("label", { class: "inline", for: id }, [box, ` ${field.label}`]);
  return { node: el("div", { class: "field", "data-field": field.name }, present([label, hint(field)])), read: () => box.checked };
}

/** Lists of enum strings: one checkbox per option, the default ones ticked. */
function choicesField(id, field) {
  const chosen = new Set(field.default || []);
  const boxes = field.options.map((value) => el("input", { id: `${id}-${value}`, type: "checkbox", name: field.name, value, checked: chosen.has(value) }));
  const labels = boxes.map((box) => el("label", { class: "inline", for: box.id }, [box, ` ${box.value}`]));
  const node = el("fieldset", { class: "params choices", id, "data-field": field.name }, present([el("legend", { text: field.label }), ...labels, hint(field)]));
  return { node, read: () => boxes.filter((box) => box.checked).map((box) => box.value) };
}

function numberField(id, field) {
  const input = textInput(id, field, { type: "number", step: field.step, min: field.min, max: field.max });
  return { node: labelled(id, field, input), read: () => input.value };
}

function textField(id, field, placeholder = null) {
  const input = textInput(id, field, placeholder ? { placeholder } : {});
  return { node: labelled(id, field, input), read: () => input.value };
}

function textareaField(id, field, placeholder, rows = 3) {
  const area = el("textarea", { id, name: field.name, rows, cols: 70, placeholder, required: field.required });
  area.value = initialText(field);
  return { node: labelled(id, field, area), read: () => area.value };
}

const headOptions = (heads) => [
  el("option", { value: "", text: "the model's default target" }),
  ...heads.map((head) => el("option", { value: `head:${head.id}`, text: `head ${head.name} (held-out accuracy ${head.metrics.held_out_accuracy.toFixed(3)})` })),
  el("option", { value: "json", text: "another target (JSON)" }),
];

/** A target spec: the model's default, a fitted head (when the schema says the job takes them: the page's
 * `heads`, and every head a fit_head job stores while the page is open), or any target spec typed as JSON. */
function targetWidget(id, field, context) {
  const takesHeads = Boolean(field.schema.fitted_heads);
  const select = el("select", { id, name: field.name }, headOptions(takesHeads ? context.heads || [] : []));
  if (takesHeads) {
    document.addEventListener(JOB_SETTLED, async (event) => {
      if (event.detail.kind !== "fit_head" || event.detail.status !== "done") return;
      const chosen = select.value;
      select.replaceChildren(...headOptions(await getJSON("/api/heads").catch(() => context.heads || [])));
      select.value = [...select.options].some((option) => option.value === chosen) ? chosen : "";
    });
  }
  const json = el("input", { id: `${id}-json`, name: field.name, size: 40, placeholder: '{"kind": "zero_shot", "labels": ["good", "bad"]}', hidden: true });
  select.addEventListener("change", () => { json.hidden = select.value !== "json"; });
  const read = () => {
    if (select.value === "json") return { kind: "json", json: json.value };
    if (select.value.startsWith("head:")) return { kind: "head", head: select.value.slice("head:".length) };
    return { kind: "" };
  };
  return { node: labelled(id, field, select, [json]), read };
}

const WIDGETS = {
  target: targetWidget,
  dataset: datasetWidget,
  corpora: corporaWidget,
  labelled_datasets: labelledDatasetsWidget,
  json: (id, field) => textareaField(id, field, field.placeholder || "JSON", 2),
};

const INPUTS = {
  select: selectField,
  checkbox: checkboxField,
  choices: choicesField,
  number: numberField,
  list: (id, field) => textField(id, field, "comma separated"),
  text: (id, field) => textField(id, field),
};

/** The input of one field: `{node, read}`, where read() gives the raw value collectParams types. */
export function fieldInput(kind, field, context = {}) {
  const id = fieldId(kind, field.name);
  if (field.type === "widget") {
    const widget = WIDGETS[field.widget];
    if (!widget) throw new Error(`${kind}.${field.name}: no form widget called "${field.widget}"`);
    return widget(id, field, context);
  }
  return INPUTS[field.type](id, field, context);
}

/** Render the fields of `form` (its `.job-fields` box) from the job's params schema; returns read(), which
 * gives the params the form holds now (throws an Error a person can act on when a field cannot be read). */
export function renderJobForm(form, schema, context = {}) {
  const kind = form.dataset.kind;
  const fields = fieldsFromSchema(schema);
  const inputs = fields.map((field) => [field, fieldInput(kind, field, context)]);
  const box = form.querySelector(".job-fields");
  const basic = inputs.filter(([field]) => !field.advanced).map(([, input]) => input.node);
  const advanced = inputs.filter(([field]) => field.advanced).map(([, input]) => input.node);
  box.replaceChildren(el("div", { class: "fields" }, basic));
  if (advanced.length) {
    box.append(el("details", { class: "advanced" }, [el("summary", { text: "More options" }), el("div", { class: "fields" }, advanced)]));
  }
  return () => collectParams(fields, Object.fromEntries(inputs.map(([field, input]) => [field.name, input.read()])));
}

/** Every `form.job-form` under `root`: render it from `schemas[kind]` and submit its params through
 * `submit(kind, params)` (a jobBoard's start); `onError(message)` shows a failure ("" clears it). */
export function setupJobForms(root, schemas, { context = {}, submit, onError }) {
  for (const form of root.querySelectorAll("form.job-form")) {
    const kind = form.dataset.kind;
    if (!schemas[kind]) throw new Error(`The page has a form for the job ${kind} but no schema for it.`);
    const read = renderJobForm(form, schemas[kind], context);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      onError("");
      try {
        await submit(kind, read());
      } catch (error) {
        onError(error.message);
      }
    });
  }
}
