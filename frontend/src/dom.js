// Small DOM builders. Text always goes in through textContent/value, never innerHTML.

export function el(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

/** A neuron's consistency label as a coloured badge ("not described" when it has none). */
export function labelBadge(label) {
  return el("span", { class: `badge badge-${(label || "none").replace(/\s+/g, "-")}`, text: label || "not described" });
}

/** One input per field (from params.fieldsFromSchema). */
export function renderFields(container, fields, values = {}) {
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

/** View controls (layer slider, head select, toggles); calls onChange(name, value). */
export function renderControls(container, controls, view, onChange) {
  container.replaceChildren();
  for (const control of controls) {
    const id = `view-${control.name}`;
    let input;
    if (control.type === "hidden") continue;
    if (control.type === "tabs") {
      const buttons = control.options.map((option) => {
        const button = el("button", { type: "button", id: `${id}-${option.value}`, class: "tab", "data-value": option.value, text: option.label });
        if (view[control.name] === option.value) button.classList.add("active");
        button.addEventListener("click", () => {
          for (const other of buttons) other.classList.toggle("active", other === button);
          onChange(control.name, option.value);
        });
        return button;
      });
      container.append(el("div", { class: "control tabs", role: "tablist", id }, buttons));
      continue;
    }
    if (control.type === "range") {
      input = el("input", { id, type: "range", min: control.min, max: control.max, step: 1 });
      input.value = view[control.name];
      const output = el("output", { for: id, text: view[control.name] });
      input.addEventListener("input", () => { output.textContent = input.value; });
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
      input.addEventListener("change", () => onChange(control.name, input.checked ? "1" : "0"));
    }
    container.append(el("div", { class: "control" }, [el("label", { for: id, text: control.label }), input]));
  }
}
