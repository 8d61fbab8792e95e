// The target fieldset: shown only for methods that explain a prediction.

import { statusText } from "./availability.js";
import { el } from "./dom.js";

/** Build inputs for the model's available targets (spec.targets from the server). `head` (the availability
 * of a fitted-head target, see availability.js): when there is none yet, a line says why and what to do. */
export function renderTarget(container, targets, current, head = null) {
  container.replaceChildren(el("legend", { text: "Target (what to explain)" }));
  const kind = el("select", { id: "target-kind", name: "kind" }, targets.map((t) => el("option", { value: t.kind, text: t.kind })));
  if (current && current.kind) kind.value = current.kind;
  const details = el("div", { class: "target-details" });
  const stored = current && current.spec ? current.spec : null;
  const fill = () => {
    const listed = targets.find((t) => t.kind === kind.value) || {};
    // a reopened analysis shows the target it was made with, not the defaults
    const chosen = stored && stored.kind === listed.kind ? { ...listed, ...stored, heads: listed.heads } : listed;
    details.replaceChildren();
    if (chosen.kind === "zero_shot") {
      details.append(
        labelled("target-labels", "Labels (comma separated)", el("input", { id: "target-labels", name: "labels", value: (chosen.labels || []).join(", ") })),
        labelled("target-template", "Prompt template", el("input", { id: "target-template", name: "template", value: chosen.template || "" })),
        labelled("target-label", "Label to explain (empty = predicted)", el("input", { id: "target-label", name: "label", value: chosen.label ?? "" })),
      );
    } else if (chosen.kind === "classification") {
      const select = el("select", { id: "target-label", name: "label" }, [el("option", { value: "", text: "predicted class" }), ...(chosen.labels || []).map((l) => el("option", { value: l, text: l }))]);
      details.append(labelled("target-label", "Class", select));
    } else if (chosen.kind === "head") {
      const heads = el("select", { id: "target-head", name: "head" }, (chosen.heads || []).map((h) => el("option", { value: h.id, text: `${h.name} (held-out accuracy ${h.metrics.held_out_accuracy.toFixed(3)})` })));
      if (current && current.spec && current.spec.head) heads.value = current.spec.head;
      const label = el("input", { id: "target-label", name: "label", placeholder: "empty = predicted" });
      details.append(labelled("target-head", "Fitted head", heads), labelled("target-label", "Label to explain", label));
    } else if (chosen.kind === "masked_token") {
      details.append(labelled("target-token", `Token at ${chosen.mask_token || "[MASK]"} (empty = top prediction)`, el("input", { id: "target-token", name: "token", value: chosen.token ?? "" })));
    }
  };
  kind.addEventListener("change", fill);
  container.append(labelled("target-kind", "Kind", kind), details);
  if (head && !head.available) {
    container.append(el("p", { id: "target-head-status", class: "hint", text: `Fitted head: ${statusText(head)}` }));
  }
  fill();
}

function labelled(id, text, input) {
  return el("div", { class: "field" }, [el("label", { for: id, text }), input]);
}

/** Raw values of the fieldset's inputs, keyed by name. */
export function readInputs(container) {
  const raw = {};
  for (const input of container.querySelectorAll("input, select")) {
    raw[input.name] = input.type === "checkbox" ? input.checked : input.value;
  }
  return raw;
}
