// The neuron browser: a basis (neurons, a dictionary's SAE features, or the random directions described beside
// either), the summaries that compare them side by side, a searchable, sortable table of units with its filters
// (basis included) in the URL, and index / dictionary jobs. Every descriptor goes in through textContent.

import { getJSON } from "../api.js";
import { el, labelBadge } from "../dom.js";
import { setupJobForms } from "../jobform.js";
import { jobBoard } from "../jobs.js";
import { PAGE, browserColumns, browserStateFromQuery, browserStateToQuery, comparisonCorpora, comparisonRows, fmt, illusionSentence, percent } from "../neuronview.js";

const LABELS = ["consistent", "inconsistent", "corpus-specific", "undescribed"];

function bestDescriptors(item) {
  const seen = new Set();
  for (const entries of Object.values(item.descriptors)) {
    for (const entry of entries.slice(0, 2)) seen.add(entry.descriptor);
  }
  return [...seen].join(", ") || "–";
}

function renderSummary(box, page) {
  box.replaceChildren();
  const description = page.description;
  const comparison = page.comparison || { neurons: null, features: null };
  if (!description && !comparison.neurons && !comparison.features) {
    const building = page.indexes.some((index) => index.status !== "done");
    box.append(el("p", { class: "notice", text: building ? "The index is being built; this page fills in when it is done." : "No descriptions yet for these units: index a corpus below (descriptions follow)." }));
    return;
  }
  if (description) {
    const summary = description.summary;
    box.append(el("p", { class: "hint", text: `Descriptors (${summary.descriptors}) from: ${summary.generator.name}. Corpora: ${summary.corpora.join(", ")}.` }));
  } else {
    box.append(el("p", { class: "notice", text: "These units have no description run yet; the summary below compares the runs there are." }));
  }
  const dictionary = comparison.dictionary;
  const rows = comparisonRows(comparison, dictionary ? `L${dictionary.layer} ${dictionary.site}` : "");
  const corpora = comparisonCorpora(comparison);
  const cell = (group, corpus, key, format) => (group.per_corpus[corpus] ? format(group.per_corpus[corpus][key]) : "–");
  const heads = ["", ...corpora.map((c) => `described on ${c}`), ...corpora.map((c) => `stability on ${c}`), ...LABELS, "mean consistency"];
  const body = rows.map(({ name, size, group }) =>
    el("tr", {}, [
      el("td", {}, [name, el("br"), el("span", { class: "hint", text: size })]),
      ...corpora.map((c) => el("td", { text: cell(group, c, "described_fraction", percent) })),
      ...corpora.map((c) => el("td", { text: cell(group, c, "mean_stability", fmt) })),
      ...LABELS.map((label) => el("td", { text: percent(group.labels[label]) })),
      el("td", { text: fmt(group.mean_consistency) }),
    ]),
  );
  const sentences = [comparison.neurons, comparison.features].filter(Boolean).map((summary) => el("p", { class: "illusion-sentence", text: illusionSentence(summary) }));
  box.append(
    el("div", { class: "table-scroll" }, [
      el("table", { class: "methods", id: "illusion-table" }, [el("thead", {}, [el("tr", {}, heads.map((text) => el("th", { text })))]), el("tbody", {}, body)]),
    ]),
    el("div", { id: "illusion-sentence" }, sentences),
  );
}

const COLUMNS = {
  neuron: { head: "unit", cell: (item) => (item.url ? [el("a", { href: item.url, text: item.name })] : item.name) },
  "best descriptors": { head: "best descriptors", cell: (item) => bestDescriptors(item) },
  match: { head: "match (descriptor, score, corpus)", cell: matchCell },
  score: { head: "score (log2 enrichment)", cell: (item) => fmt(item.best_score) },
  label: { head: "label", cell: (item) => [labelBadge(item.label)] },
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
        { "data-neuron": `${item.layer}/${item.unit}`, "data-unit": item.name },
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
  for (const name of ["basis", "q", "layer", "label", "sort"]) {
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
    const state = { basis: data.get("basis") || "neurons", q: (data.get("q") || "").trim(), layer: data.get("layer") || "", label: data.get("label") || "", sort: data.get("sort"), offset };
    history.replaceState(history.state, "", `${window.location.pathname}${browserStateToQuery(state)}`);
    const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset), sort: state.sort, basis: state.basis });
    for (const name of ["q", "layer", "label"]) if (state[name]) query.set(name, state[name]);
    try {
      const page = await getJSON(`/api/neurons?${query}`);
      if (ticket !== latest) return;
      if (!page.items.length && offset > 0 && page.total > 0) {
        offset = Math.floor((page.total - 1) / PAGE) * PAGE;  // a shared link past the last page
        return load();
      }
      renderSummary(document.getElementById("neuron-summary"), page);
      renderTable(table, browserColumns(Boolean(page.description), state.q), page.items);
      const what = { neurons: "neurons", features: "features", random: "random directions" }[page.basis.kind];
      status.textContent = page.total ? `${offset + 1}–${offset + page.items.length} of ${page.total} ${what}` : `no ${what}`;
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
  setupIndexJobs(spec.jobs, load, showError);
  load();
}

function setupIndexJobs(schemas, reload, showError) {
  const board = jobBoard({
    tbody: document.querySelector("#jobs-table tbody"),
    kinds: ["index_neurons", "describe_neurons", "train_dictionary", "index_features"],
    interval: 1500,
    onSettled: () => reload(),
    onError: (error) => showError(error.message),
  });
  setupJobForms(document, schemas, { submit: (kind, params) => board.start(kind, params), onError: showError });
  board.load().catch((error) => showError(error.message));
}
