// The neuron browser, the neuron page, and "neurons most active here" on the sentence page.
// Every piece of text (descriptors, corpus sentences, tokens) goes in through textContent.

import { el } from "./dom.js";
import { api, isActive, renderJobs } from "./evaluations.js";
import { draw } from "./plot.js";

const PAGE = 50;
const fmt = (value, digits = 2) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));

/** index_neurons params from "NAME=PATH" lines. */
export function corpusSpecs(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const cut = line.indexOf("=");
      if (cut <= 0) throw new Error(`"${line}" is not NAME=PATH`);
      return { name: line.slice(0, cut).trim(), path: line.slice(cut + 1).trim() };
    });
}

/** Background colour of a token: white to orange by its activation relative to the row's maximum. */
export function shade(value, maximum) {
  if (value === null || value === undefined || !(maximum > 0)) return "transparent";
  const alpha = Math.max(0, Math.min(1, value / maximum));
  return `rgba(244, 162, 97, ${alpha.toFixed(3)})`;
}

function badge(label) {
  return el("span", { class: `badge badge-${(label || "none").replace(/\s+/g, "-")}`, text: label || "not described" });
}

function bestDescriptors(item) {
  const seen = new Map();
  for (const entries of Object.values(item.descriptors || {})) {
    for (const entry of entries.slice(0, 2)) if (!seen.has(entry.descriptor)) seen.set(entry.descriptor, entry.score);
  }
  return [...seen.keys()].join(", ");
}

function renderSummary(box, page) {
  box.replaceChildren();
  const description = page.description;
  if (!description) {
    const building = page.indexes.some((index) => index.status !== "done");
    box.append(el("p", { class: "notice", text: building ? "The neuron index is being built; this page fills in when it is done." : "No neuron descriptions yet: index a corpus below (descriptions follow)." }));
    return;
  }
  const summary = description.summary;
  const generator = summary.generator || {};
  box.append(el("p", { class: "hint", text: `Descriptors (${summary.descriptors}) from: ${generator.description || generator.name || generator.kind}. Corpora: ${summary.corpora.join(", ")}.` }));
  const rows = [["neurons", summary.neurons], ["random directions (control)", summary.random_directions]];
  const corpora = summary.corpora;
  const head = el("tr", {}, ["", ...corpora.map((c) => `described on ${c}`), ...corpora.map((c) => `stability on ${c}`), "consistent", "inconsistent", "corpus-specific", "undescribed"].map((text) => el("th", { text })));
  const body = rows.map(([name, group]) =>
    el("tr", {}, [
      el("td", { text: `${name} (${group.units})` }),
      ...corpora.map((c) => el("td", { text: `${fmt(100 * group.per_corpus[c].described_fraction, 1)} %` })),
      ...corpora.map((c) => el("td", { text: fmt(group.per_corpus[c].mean_stability) })),
      ...["consistent", "inconsistent", "corpus-specific", "undescribed"].map((label) => el("td", { text: `${fmt(100 * (group.labels[label] || 0), 1)} %` })),
    ]),
  );
  box.append(el("table", { class: "methods", id: "illusion-table" }, [el("thead", {}, [head]), el("tbody", {}, body)]));
}

function renderRows(tbody, items) {
  tbody.replaceChildren(
    ...items.map((item) =>
      el("tr", { "data-neuron": `${item.layer}/${item.unit}` }, [
        el("td", {}, [el("a", { href: `/neurons/${item.layer}/${item.unit}`, text: `L${item.layer} · ${item.unit}` })]),
        el("td", { text: item.descriptors ? bestDescriptors(item) : "–" }),
        el("td", { text: fmt(item.best_score ?? null) }),
        el("td", {}, [badge(item.label)]),
        el("td", { text: fmt(item.consistency ?? null) }),
        el("td", { text: fmt(item.maximum ?? null) }),
      ]),
    ),
  );
}

export function setupNeuronBrowser(spec) {
  const form = document.getElementById("neuron-filter");
  const tbody = document.querySelector("#neuron-table tbody");
  const status = document.getElementById("neuron-status");
  const errorBox = document.getElementById("neuron-error");
  const showError = (message) => { errorBox.textContent = message; errorBox.hidden = !message; };
  let offset = 0;
  const load = async () => {
    const data = new FormData(form);
    const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset), sort: data.get("sort") });
    for (const name of ["q", "layer", "label"]) if (data.get(name)) query.set(name, data.get(name));
    try {
      const page = await api(`/api/neurons?${query}`);
      renderSummary(document.getElementById("neuron-summary"), page);
      renderRows(tbody, page.items);
      status.textContent = page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total} neurons` : "no neurons";
      document.getElementById("prev-page").disabled = offset === 0;
      document.getElementById("next-page").disabled = offset + PAGE >= page.total;
      showError("");
    } catch (error) {
      showError(error.message);
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); offset = 0; load(); });
  for (const select of form.querySelectorAll("select")) select.addEventListener("change", () => { offset = 0; load(); });
  document.getElementById("prev-page").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  document.getElementById("next-page").addEventListener("click", () => { offset += PAGE; load(); });
  setupIndexJobs(load, showError);
  load();
}

function setupIndexJobs(reload, showError) {
  const tbody = document.querySelector("#jobs-table tbody");
  let timer = null;
  const poll = async () => {
    const jobs = (await api("/api/jobs")).filter((job) => job.kind === "index_neurons" || job.kind === "describe_neurons");
    renderJobs(tbody, jobs, async (id) => { await api(`/api/jobs/${id}/cancel`, { method: "POST" }); poll(); });
    const active = jobs.some(isActive);
    clearTimeout(timer);
    if (active) timer = setTimeout(poll, 1500);
    else if (timer !== null) reload();
    timer = active ? timer : null;
  };
  document.getElementById("index-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    try {
      const params = { corpora: corpusSpecs(data.get("corpora")), describe: true };
      if (data.get("k")) params.k = Number(data.get("k"));
      await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ kind: "index_neurons", params }) });
      timer = -1;
      poll();
    } catch (error) {
      showError(error.message);
    }
  });
  poll().catch((error) => showError(error.message));
}

function exemplarNode(exemplar) {
  const tokens = exemplar.tokens;
  if (!tokens) return el("li", { text: `${exemplar.sentence} (${fmt(exemplar.activation)})` });
  const values = exemplar.token_activations.filter((v) => v !== null);
  const maximum = Math.max(...values, 0);
  const spans = tokens.map((token, i) => {
    const value = exemplar.token_activations[i];
    const span = el("span", { class: i === exemplar.position ? "tok top" : "tok", title: value === null ? "special token" : `${token}: ${fmt(value, 3)}`, text: token });
    span.style.background = shade(value, maximum);
    return span;
  });
  return el("li", { class: "exemplar" }, [...spans, el("span", { class: "hint", text: ` ${fmt(exemplar.activation)}` })]);
}

export async function setupNeuronPage(spec) {
  const box = document.getElementById("neuron-corpora");
  const errorBox = document.getElementById("neuron-error");
  try {
    const neuron = await api(`/api/neurons/${spec.layer}/${spec.unit}`);
    document.getElementById("neuron-label").replaceChildren(badge(neuron.label));
    document.getElementById("neuron-consistency").textContent = `consistency (Jaccard of descriptor sets across corpora) ${fmt(neuron.consistency)} · top-token overlap ${fmt(neuron.token_overlap)}`;
    box.replaceChildren(
      ...neuron.corpora.map((corpus, number) => {
        const plot = el("div", { class: "figure-small", id: `histogram-${number}` });
        const descriptors = corpus.descriptors.length
          ? el("table", { class: "methods descriptors" }, [
              el("thead", {}, [el("tr", {}, ["descriptor", "log2 enrichment", "exemplars", "q"].map((text) => el("th", { text })))]),
              el("tbody", {}, corpus.descriptors.map((d) => el("tr", {}, [el("td", { text: d.descriptor }), el("td", { text: fmt(d.score) }), el("td", { text: String(d.count) }), el("td", { text: Number(d.q).toExponential(1) })]))),
            ])
          : el("p", { class: "hint", text: "No significant descriptor on this corpus." });
        const stats = corpus.stats;
        return el("section", { class: "corpus-column", "data-corpus": corpus.corpus }, [
          el("h2", { text: corpus.corpus }),
          el("p", { class: "hint", text: `${corpus.sentences} sentences · mean ${fmt(stats.mean, 3)} · std ${fmt(stats.std, 3)} · max ${fmt(stats.maximum, 3)} · calibration/held-out stability ${fmt(corpus.stability)}` }),
          descriptors,
          plot,
          el("ol", { class: "exemplars" }, corpus.exemplars.map(exemplarNode)),
        ]);
      }),
    );
    neuron.corpora.forEach((corpus, number) => {
      const edges = corpus.histogram.edges;
      const centres = edges.slice(0, -1).map((edge, i) => (edge + edges[i + 1]) / 2);
      draw(document.getElementById(`histogram-${number}`), {
        data: [{ type: "bar", x: centres, y: corpus.histogram.counts.slice(1, -1), marker: { color: "#1f6fb2" } }],
        layout: { title: { text: `Activations on ${corpus.corpus}` }, yaxis: { type: "log", title: { text: "tokens" } }, xaxis: { title: { text: "activation" } }, height: 240, margin: { l: 50, r: 10, t: 40, b: 40 } },
      });
    });
  } catch (error) {
    errorBox.textContent = error.message;
    errorBox.hidden = false;
  }
}

export async function setupActiveNeurons(analysisId) {
  const box = document.getElementById("active-neurons");
  if (!box) return;
  try {
    const answer = await api(`/api/analyses/${encodeURIComponent(analysisId)}/neurons`);
    if (!answer.items.length) {
      box.replaceChildren(el("p", { class: "hint", text: "No neuron index for this model yet (see Neurons)." }));
      return;
    }
    box.replaceChildren(
      el("p", { class: "hint", text: `Activation relative to the neuron's maximum over the ${answer.index} corpus.` }),
      el("ul", { class: "active-neurons" }, answer.items.map((item) =>
        el("li", {}, [
          el("a", { href: item.url, text: `L${item.layer} · ${item.unit}` }),
          el("span", { text: ` on "${item.token}" ×${fmt(item.relative)} ` }),
          el("span", { class: "hint", text: item.best_descriptor || "" }),
        ]),
      )),
    );
  } catch (error) {
    box.replaceChildren(el("p", { class: "hint", text: error.message }));
  }
}
