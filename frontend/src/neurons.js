// The neuron browser, the neuron page, and "neurons most active here" on the sentence page.
// Every piece of text (descriptors, corpus sentences, tokens) goes in through textContent.

import { el } from "./dom.js";
import { api, isActive, renderJobs } from "./evaluations.js";
import { PAGE, browserColumns, browserStateFromQuery, browserStateToQuery, directionsText, fmt, histogramBars, illusionSentence, inDescription, percent, tokenLayout } from "./neuronview.js";
import { draw } from "./plot.js";

const LABELS = ["consistent", "inconsistent", "corpus-specific", "undescribed"];

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
  const seen = new Set();
  for (const entries of Object.values(item.descriptors || {})) {
    for (const entry of entries.slice(0, 2)) seen.add(entry.descriptor);
  }
  return [...seen].join(", ") || "–";
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
  const rows = [
    ["neurons", `${summary.neurons.units} units`, summary.neurons],
    ["random directions (control)", directionsText(summary.random_directions), summary.random_directions],
  ];
  const corpora = summary.corpora;
  const heads = ["", ...corpora.map((c) => `described on ${c}`), ...corpora.map((c) => `stability on ${c}`), ...LABELS, "mean consistency"];
  const body = rows.map(([name, size, group]) =>
    el("tr", {}, [
      el("td", {}, [name, el("br"), el("span", { class: "hint", text: size })]),
      ...corpora.map((c) => el("td", { text: percent(group.per_corpus[c]?.described_fraction) })),
      ...corpora.map((c) => el("td", { text: fmt(group.per_corpus[c]?.mean_stability) })),
      ...LABELS.map((label) => el("td", { text: percent(group.labels[label]) })),
      el("td", { text: fmt(group.mean_consistency) }),
    ]),
  );
  box.append(
    el("div", { class: "table-scroll" }, [
      el("table", { class: "methods", id: "illusion-table" }, [el("thead", {}, [el("tr", {}, heads.map((text) => el("th", { text })))]), el("tbody", {}, body)]),
    ]),
    el("p", { id: "illusion-sentence", text: illusionSentence(summary) }),
  );
}

const COLUMNS = {
  neuron: { head: "neuron", cell: (item) => [el("a", { href: `/neurons/${item.layer}/${item.unit}`, text: `L${item.layer} · ${item.unit}` })] },
  "best descriptors": { head: "best descriptors", cell: (item) => bestDescriptors(item) },
  match: { head: "match (descriptor, score, corpus)", cell: matchCell },
  score: { head: "score (log2 enrichment)", cell: (item) => fmt(item.best_score) },
  label: { head: "label", cell: (item) => [badge(item.label)] },
  consistency: { head: "consistency", cell: (item) => fmt(item.consistency) },
  mean: { head: "mean", cell: (item) => fmt(item.mean, 3) },
  std: { head: "std", cell: (item) => fmt(item.std, 3) },
  max: { head: "max", cell: (item) => fmt(item.maximum, 3) },
};

function matchCell(item) {
  const match = item.match;
  if (!match) return "–";
  return [el("span", { class: "match-descriptor", text: match.descriptor }), el("span", { class: "hint", text: ` ${fmt(match.score)} on ${match.corpus}` })];
}

function renderTable(table, columns, items) {
  table.tHead.replaceChildren(el("tr", {}, columns.map((key) => el("th", { "data-column": key, text: COLUMNS[key].head }))));
  table.tBodies[0].replaceChildren(
    ...items.map((item) =>
      el(
        "tr",
        { "data-neuron": `${item.layer}/${item.unit}` },
        columns.map((key) => {
          const content = COLUMNS[key].cell(item);
          return typeof content === "string" ? el("td", { "data-column": key, text: content }) : el("td", { "data-column": key }, content);
        }),
      ),
    ),
  );
}

/** Put the URL's filters into the form; a value the form does not offer falls back to the form's default. */
function restoreFilters(form, state) {
  for (const name of ["q", "layer", "label", "sort"]) {
    const field = form.elements[name];
    field.value = state[name];
    if (field.value !== state[name]) field.selectedIndex = 0;
  }
}

export function setupNeuronBrowser(spec) {
  const form = document.getElementById("neuron-filter");
  const table = document.getElementById("neuron-table");
  const status = document.getElementById("neuron-status");
  const errorBox = document.getElementById("neuron-error");
  const showError = (message) => { errorBox.textContent = message; errorBox.hidden = !message; };
  const initial = browserStateFromQuery(window.location.search);
  restoreFilters(form, initial);
  let offset = initial.offset;
  let latest = 0;  // only the newest request may render (filters can change while one is in flight)
  const load = async () => {
    const ticket = ++latest;
    const data = new FormData(form);
    const state = { q: (data.get("q") || "").trim(), layer: data.get("layer") || "", label: data.get("label") || "", sort: data.get("sort"), offset };
    history.replaceState(history.state, "", `${window.location.pathname}${browserStateToQuery(state)}`);
    const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset), sort: state.sort });
    for (const name of ["q", "layer", "label"]) if (state[name]) query.set(name, state[name]);
    try {
      const page = await api(`/api/neurons?${query}`);
      if (ticket !== latest) return;
      if (!page.items.length && offset > 0 && page.total > 0) {
        offset = Math.floor((page.total - 1) / PAGE) * PAGE;  // a shared link past the last page
        return load();
      }
      renderSummary(document.getElementById("neuron-summary"), page);
      renderTable(table, browserColumns(Boolean(page.description), state.q), page.items);
      status.textContent = page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total} neurons` : "no neurons";
      document.getElementById("prev-page").disabled = offset === 0;
      document.getElementById("next-page").disabled = offset + PAGE >= page.total;
      showError("");
    } catch (error) {
      if (ticket === latest) showError(error.message);
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

function corpusSection(corpus, number, described, description) {
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

export async function setupNeuronPage(spec) {
  const box = document.getElementById("neuron-corpora");
  const errorBox = document.getElementById("neuron-error");
  try {
    const neuron = await api(`/api/neurons/${spec.layer}/${spec.unit}`);
    document.getElementById("neuron-label").replaceChildren(badge(neuron.label));
    document.getElementById("neuron-consistency").textContent = `consistency (Jaccard of descriptor sets across corpora) ${fmt(neuron.consistency)} · top-token overlap ${fmt(neuron.token_overlap)}`;
    // corpora of the description run first (the API orders them so; kept stable for older answers)
    const corpora = neuron.corpora
      .map((corpus) => ({ corpus, described: inDescription(corpus, neuron.description) }))
      .sort((a, b) => Number(b.described) - Number(a.described));
    box.replaceChildren(...corpora.map(({ corpus, described }, number) => corpusSection(corpus, number, described, neuron.description)));
    corpora.forEach(({ corpus }, number) => {
      const bars = histogramBars(corpus.histogram.edges, corpus.histogram.counts);
      const outside = [bars.underflow ? `${bars.underflow} below ${bars.low}` : "", bars.overflow ? `${bars.overflow} at or above ${bars.high}` : ""].filter(Boolean);
      const title = `Activations on ${corpus.corpus}${outside.length ? ` (${outside.join(", ")})` : ""}`;
      draw(document.getElementById(`histogram-${number}`), {
        data: [{ type: "bar", x: bars.x, y: bars.y, marker: { color: "#1f6fb2" } }],
        layout: { title: { text: title }, yaxis: { type: "log", title: { text: "tokens" } }, xaxis: { title: { text: "activation" } }, height: 240, margin: { l: 50, r: 10, t: 40, b: 40 } },
        config: { responsive: true },
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
      el("p", { class: "hint", text: `Activation relative to the neuron's maximum over the ${answer.index} corpus (the largest ${answer.index_in_description ? "corpus of the latest description run" : "indexed corpus"}).` }),
      el("ul", { class: "active-neurons" }, answer.items.map((item) =>
        el("li", {}, [
          el("a", { href: item.url, text: `L${item.layer} · ${item.unit}` }),
          " on ",
          el("code", { class: "token", text: item.token }),
          ` ×${fmt(item.relative)} `,
          el("span", { class: "hint", text: item.best_descriptor || "" }),
        ]),
      )),
    );
  } catch (error) {
    box.replaceChildren(el("p", { class: "hint", text: error.message }));
  }
}
