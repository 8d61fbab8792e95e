// One neuron's (or one SAE feature's) page: per corpus its descriptors, stability, activation histogram (a
// figure built by the server) and exemplars with every token shaded by the unit's activation; for a feature,
// also what its decoder direction touches. Text goes in through textContent.

import { getJSON } from "../api.js";
import { el, labelBadge } from "../dom.js";
import { fmt, tokenLayout } from "../neuronview.js";
import { draw } from "../plot.js";

/** Background colour of a token: white to orange by its activation relative to the row's maximum. */
export function shade(value, maximum) {
  if (value === null || value === undefined || !(maximum > 0)) return "transparent";
  const alpha = Math.max(0, Math.min(1, value / maximum));
  return `rgba(244, 162, 97, ${alpha.toFixed(3)})`;
}

function exemplarNode(exemplar) {
  const tokens = exemplar.tokens;
  if (!tokens) {
    // beyond the shaded exemplars: the sentence, the token that fired (by name) and its activation
    const fired = exemplar.token ? [" ", el("code", { class: "token", title: `token ${exemplar.position}`, text: exemplar.token })] : [];
    return el("li", { class: "exemplar" }, [exemplar.sentence, ...fired, " ", el("span", { class: "hint", text: fmt(exemplar.activation) })]);
  }
  const values = exemplar.token_activations.filter((v) => v !== null);
  const maximum = Math.max(...values, 0);
  const nodes = [];
  for (const piece of tokenLayout(tokens, exemplar.token_activations)) {
    if (piece.space) nodes.push(" ");
    const classes = ["tok", piece.special ? "special" : "", piece.index === exemplar.position ? "top" : ""].filter(Boolean).join(" ");
    const span = el("span", { class: classes, title: piece.special ? `special token ${piece.raw}` : `${piece.raw}: ${fmt(piece.value, 3)}`, text: piece.text });
    if (!piece.special) span.style.background = shade(piece.value, maximum);
    nodes.push(span);
  }
  return el("li", { class: "exemplar" }, [...nodes, " ", el("span", { class: "hint", text: fmt(exemplar.activation) })]);
}

function descriptorTable(descriptors) {
  return el("table", { class: "methods descriptors" }, [
    el("caption", { class: "hint", text: "Ordered by significance: smallest q-value (most significant) first, with the log2 enrichment score beside it." }),
    el("thead", {}, [el("tr", {}, ["descriptor", "q", "log2 enrichment", "exemplars"].map((text) => el("th", { text })))]),
    el("tbody", {}, descriptors.map((d) => el("tr", {}, [el("td", { text: d.descriptor }), el("td", { text: Number(d.q).toExponential(1) }), el("td", { text: fmt(d.score) }), el("td", { text: String(d.count) })]))),
  ]);
}

function corpusSection(corpus, number, description) {
  const described = corpus.in_description;
  const stats = corpus.stats;
  let descriptors;
  if (!described) {
    const why = description ? "Not part of the latest description run" : "No description run yet";
    descriptors = el("p", { class: "hint not-described", text: `${why}: no descriptors were computed for this corpus.` });
  } else if (corpus.descriptors.length) descriptors = el("div", { class: "table-scroll" }, [descriptorTable(corpus.descriptors)]);
  else descriptors = el("p", { class: "hint", text: "No significant descriptor on this corpus." });
  const undefinedStability = "undefined (neither half of the corpus gives it a significant descriptor)";
  const stability = !described ? "not computed" : corpus.stability === null ? undefinedStability : fmt(corpus.stability);
  return el("section", { class: "corpus-column", "data-corpus": corpus.corpus, "data-described": String(described) }, [
    el("h2", { text: corpus.corpus }),
    ...(corpus.warning ? [el("p", { class: "warning corpus-warning", role: "note", text: corpus.warning })] : []),
    el("p", { class: "hint", text: `${corpus.sentences} sentences · mean ${fmt(stats.mean, 3)} · std ${fmt(stats.std, 3)} · max ${fmt(stats.maximum, 3)} · calibration/held-out stability ${stability}` }),
    descriptors,
    el("div", { class: "figure-small", id: `histogram-${number}` }),
    el("ol", { class: "exemplars" }, corpus.exemplars.map(exemplarNode)),
  ]);
}

function effectsList(title, items, text) {
  return el("div", { class: "effect-list" }, [el("h3", { text: title }), el("ol", {}, items.map((item) => el("li", {}, text(item))))]);
}

/** What a feature's decoder direction touches: nearest neurons (linked), token directions, probe effect. */
function renderEffects(box, effects) {
  const nearest = effects.nearest_neurons;
  const neuronItems = (item) => [el("a", { href: `/neurons/${item.layer}/${item.unit}`, text: `L${item.layer} · ${item.unit}` }), ` ${fmt(item.value, 3)}`];
  const tokenItems = (item) => [el("code", { class: "token", text: item.token }), ` ${fmt(item.cosine, 3)}`];
  const probe = effects.probe;
  const probeText = probe.skipped
    ? `Probe effect: not computed (${probe.skipped}).`
    : `Probe effect: the distance probe of ${probe.probe_set_name} at layer ${probe.layer} sees this direction with ||Bd|| = ${fmt(probe.norm, 3)}, ×${fmt(probe.ratio)} the median random direction (${fmt(probe.random_median, 3)}).`;
  box.replaceChildren(
    el("h2", { text: "What its decoder direction touches" }),
    el("p", { class: "hint", text: "Geometry of the weights, not causal effects: see the docs (Feature pages)." }),
    el("div", { class: "effects-grid" }, [
      nearest.items.length
        ? effectsList(`Nearest neurons (${nearest.measure})`, nearest.items, neuronItems)
        : el("p", { class: "hint", text: `Nearest neurons: ${nearest.skipped || "none"}.` }),
      effectsList("Tokens it points towards (input-embedding cosine)", effects.tokens.promoted, tokenItems),
      effectsList("Tokens it points away from", effects.tokens.suppressed, tokenItems),
    ]),
    el("p", { id: "probe-effect", text: probeText }),
  );
}

export async function setupNeuronPage(spec) {
  const box = document.getElementById("neuron-corpora");
  const errorBox = document.getElementById("neuron-error");
  const feature = spec.page === "feature";
  try {
    const url = feature ? `/api/features/${encodeURIComponent(spec.dictionary)}/${spec.unit}` : `/api/neurons/${spec.layer}/${spec.unit}`;
    const neuron = await getJSON(url);
    if (feature) renderEffects(document.getElementById("feature-effects"), neuron.effects);
    if (neuron.not_indexed) box.replaceChildren(el("p", { class: "notice", text: neuron.not_indexed }));
    document.getElementById("neuron-label").replaceChildren(labelBadge(neuron.label));
    document.getElementById("neuron-consistency").textContent = `consistency (Jaccard of descriptor sets across corpora) ${fmt(neuron.consistency)} · top-token overlap ${fmt(neuron.token_overlap)}`;
    // the API lists the corpora of the description run first, in the run's order
    if (neuron.corpora.length) box.replaceChildren(...neuron.corpora.map((corpus, number) => corpusSection(corpus, number, neuron.description)));
    await Promise.all(neuron.corpora.map((corpus, number) => draw(document.getElementById(`histogram-${number}`), corpus.histogram.figure)));
  } catch (error) {
    errorBox.textContent = error.message;
    errorBox.hidden = false;
  }
}
