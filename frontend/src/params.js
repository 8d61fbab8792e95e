// Form fields generated from a pydantic params JSON schema (a method's or a job's), and the values they collect.
// Pure: no DOM. The page renders the fields (dom.js for method params, jobform.js for jobs).

import { pickedCorpora } from "./datasetlist.js";

function resolve(schema, node) {
  if (node && node.$ref) {
    const name = node.$ref.split("/").pop();
    return (schema.$defs || {})[name] || {};
  }
  if (node && node.anyOf) {
    const concrete = node.anyOf.find((option) => option.type !== "null");
    return { ...resolve(schema, concrete), nullable: node.anyOf.some((option) => option.type === "null"), default: node.default };
  }
  return node || {};
}

/** How a field is entered, from its (resolved) schema node: a named widget when the schema names one
 * (`json_schema_extra={"widget": ...}`), else by type. */
function shape(schema, raw, node) {
  if (raw.widget) return { type: "widget", widget: raw.widget };
  if (node.enum) return { type: "select", options: node.enum.map(String) };
  if (node.type === "integer" || node.type === "number") {
    return {
      type: "number",
      step: node.type === "integer" ? 1 : "any",
      integer: node.type === "integer",
      min: node.minimum ?? node.exclusiveMinimum ?? null,
      max: node.maximum ?? node.exclusiveMaximum ?? null,
    };
  }
  if (node.type === "boolean") return { type: "checkbox" };
  if (node.type === "array") {
    const items = resolve(schema, raw.items || node.items);
    if (items.enum) return { type: "choices", options: items.enum.map(String) };
    if (["integer", "number", "string"].includes(items.type)) return { type: "list", items: items.type };
    return { type: "widget", widget: "json" };
  }
  if (node.type === "object" || node.oneOf || node.anyOf || node.discriminator) return { type: "widget", widget: "json" };
  return { type: "text" };
}

/** The title pydantic makes up for a field without one ("max_epochs" -> "Max Epochs"). */
const madeUpTitle = (name) => name.split("_").map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join(" ");

/** A field's label: its own title, or its name in sentence case ("max_epochs" -> "Max epochs"). */
function labelOf(name, title) {
  if (title && title !== madeUpTitle(name)) return title;
  const words = name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** One field description per property: name, input type, default, bounds, options, help, whether it is
 * required, optional (`X | None`), advanced (`json_schema_extra={"advanced": true}`), and its widget. */
export function fieldsFromSchema(schema) {
  const properties = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  return Object.entries(properties).map(([name, raw]) => {
    const node = resolve(schema, raw);
    const examples = raw.examples || node.examples || [];
    return {
      name,
      label: labelOf(name, raw.title || node.title),
      help: raw.description || node.description || "",
      default: raw.default ?? node.default ?? null,
      type: "text",
      nullable: Boolean(node.nullable),
      required: required.has(name),
      advanced: Boolean(raw.advanced),
      placeholder: examples.length ? examples.map(String).join(", ") : "",
      schema: raw,  // the property as the server wrote it: widgets read their hints here (e.g. fitted_heads)
      ...shape(schema, raw, node),
    };
  });
}

const isEmpty = (value) => value === undefined || value === null || value === "";

/** "a, b,c" -> ["a", "b", "c"]; numbers typed when `items` is integer or number (anything else is kept as
 * typed, so the server's validation names it). */
export function parseList(text, items = "string") {
  const parts = String(text).split(",").map((part) => part.trim()).filter(Boolean);
  if (items === "string") return parts;
  return parts.map((part) => (Number.isFinite(Number(part)) ? Number(part) : part));
}

/** index_neurons corpora from "NAME=PATH" lines (blank lines ignored). */
export function corpusSpecs(text) {
  return String(text)
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const cut = line.indexOf("=");
      if (cut <= 0) throw new Error(`"${line}" is not NAME=PATH`);
      return { name: line.slice(0, cut).trim(), path: line.slice(cut + 1).trim() };
    });
}

/** index_neurons corpora from the corpora widget: NAME=PATH lines typed, then the ticked datasets (each a
 * corpus named after it, unique); undefined when there are none. */
export function corporaValue({ text = "", datasets = [] }) {
  const typed = corpusSpecs(text);
  const specs = [...typed, ...pickedCorpora(datasets, typed.map((spec) => spec.name))];
  return specs.length ? specs : undefined;
}

/** The neuron evaluation's datasets: JSON specs typed (a list), then the ticked datasets (each a spec named
 * after it, unique); undefined when there are none. */
export function labelledDatasetsValue({ text = "", datasets = [] }, label = "Datasets") {
  const typed = String(text).trim() ? parseJSON(text, label) : [];
  if (!Array.isArray(typed)) throw new Error(`${label}: type a JSON list of dataset specs`);
  const specs = [...typed, ...pickedCorpora(datasets, typed.map((spec) => spec.name))];
  return specs.length ? specs : undefined;
}

/** JSON typed into a field; a message naming the field when it is not JSON. */
export function parseJSON(text, label) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${label}: not valid JSON (${error.message})`);
  }
}

/** The value of a widget field from its raw input(s); undefined leaves the field to the server's default.
 * target: {kind: ""} (the default), {kind: "head", head}, or {kind: "json", json: text} (any target spec);
 * corpora: "NAME=PATH" lines; json: JSON text. */
function widgetValue(field, value) {
  if (field.widget === "target") {
    if (value && value.kind === "json") return widgetValue({ ...field, widget: "json" }, value.json);
    return collectTarget(value) ?? undefined;
  }
  if (field.widget === "corpora" && value && typeof value === "object") return corporaValue(value);
  if (field.widget === "labelled_datasets") return labelledDatasetsValue(value, field.label);
  if (isEmpty(value) || !String(value).trim()) return undefined;
  if (field.widget === "corpora") return corpusSpecs(value);
  if (field.widget === "dataset") return String(value).trim();
  if (field.widget === "json") return parseJSON(value, field.label);
  throw new Error(`${field.label}: no widget called "${field.widget}"`);
}

/** Turn raw form values into typed params; empty optional fields are left to the server default.
 * Raw values: strings, booleans for checkboxes, arrays of the ticked options for choices, and for the target
 * widget the raw values collectTarget reads. */
export function collectParams(fields, raw) {
  const params = {};
  for (const field of fields) {
    const value = raw[field.name];
    let typed;
    if (field.type === "checkbox") typed = Boolean(value);
    else if (field.type === "choices") typed = field.nullable && !(value || []).length ? undefined : [...(value || [])];
    else if (field.type === "widget") typed = widgetValue(field, value);
    else if (isEmpty(value)) typed = undefined;
    else if (field.type === "list") typed = parseList(value, field.items).length ? parseList(value, field.items) : undefined;
    else if (field.type === "number") typed = Number.isFinite(Number(value)) ? Number(value) : value;
    else typed = value;
    if (typed !== undefined) params[field.name] = typed;
  }
  return params;
}

/** Target spec from the target fieldset's raw values (null when the method needs none). */
export function collectTarget(raw) {
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
  if (raw.kind === "head") return raw.label ? { kind: "head", head: raw.head, label: raw.label } : { kind: "head", head: raw.head };
  if (raw.kind === "masked_token") return raw.token ? { kind: "masked_token", token: raw.token } : { kind: "masked_token" };
  return { kind: raw.kind };
}
