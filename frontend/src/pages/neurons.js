// The neuron browser: the run's summary (neurons against random directions), a searchable, sortable table of
// neurons with its filters in the URL, and index jobs. Every descriptor goes in through textContent.

import { getJSON } from "../api.js";
import { el, labelBadge } from "../dom.js";
import { setupJobForms } from "../jobform.js";
import { jobBoard } from "../jobs.js";
import { PAGE, browserColumns, browserStateFromQuery, browserStateToQuery, directionsText, fmt, illusionSentence, percent } from "../neuronview.js";

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
  if (!description) {
    const building = page.indexes.some((index) => index.status !== "done");
    box.append(el("p", { class: "notice", text: building ? "The neuron index is being built; this page fills in when it is done." : "No neuron descriptions yet: index a corpus below (descriptions follow)." }));
    return;
  }
  const summary = description.summary;
  box.append(el("p", { class: "hint", text: `Descriptors (${summary.descriptors}) from: ${summary.generator.name}. Corpora: ${summary.corpora.join(", ")}.` }));
  const rows = [
    ["neurons", `${summary.neurons.units} units`, summary.neurons],
    ["random directions (control)", directionsText(summary.random_directions), summary.random_directions],
  ];
  const corpora = summary.corpora;
  const heads = ["", ...corpora.map((c) => `described on ${c}`), ...corpora.map((c) => `stability on ${c}`), ...LABELS, "mean consistency"];
  const body = rows.map(([name, size, group]) =>
    el("tr", {}, [
      el("td", {}, [name, el("br"), el("span", { class: "hint", text: size })]),
      ...corpora.map((c) => el("td", { text: percent(group.per_corpus[c].described_fraction) })),
      ...corpora.map((c) => el("td", { text: fmt(group.per_corpus[c].mean_stability) })),
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
      const page = await getJSON(`/api/neurons?${query}`);
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
  setupIndexJobs(spec.jobs, load, showError);
  load();
}

function setupIndexJobs(schemas, reload, showError) {
  const board = jobBoard({
    tbody: document.querySelector("#jobs-table tbody"),
    kinds: ["index_neurons", "describe_neurons", "train_dictionary"],
    interval: 1500,
    onSettled: () => reload(),
    onError: (error) => showError(error.message),
  });
  setupJobForms(document, schemas, { submit: (kind, params) => board.start(kind, params), onError: showError });
  board.load().catch((error) => showError(error.message));
}
