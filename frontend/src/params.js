// Form fields generated from a method's pydantic params JSON schema, and the values they collect.

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

/** One field description per property: name, input type, default, bounds, options, help. */
export function fieldsFromSchema(schema) {
  const properties = (schema && schema.properties) || {};
  return Object.entries(properties).map(([name, raw]) => {
    const node = resolve(schema, raw);
    const field = {
      name,
      label: raw.title || node.title || name,
      help: raw.description || node.description || "",
      default: raw.default ?? node.default ?? null,
      type: "text",
      nullable: Boolean(node.nullable),
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

/** Turn raw form values into typed params; empty optional fields are left to the server default. */
export function collectParams(fields, raw) {
  const params = {};
  for (const field of fields) {
    const value = raw[field.name];
    if (field.type === "checkbox") {
      params[field.name] = Boolean(value);
    } else if (value === undefined || value === null || value === "") {
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
