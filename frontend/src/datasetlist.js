// Uploaded datasets, the pure rules: which datasets serve a data field, how a dataset is described in a
// picker, and how picked datasets become the corpora of a neuron index. No DOM (tested with node:test).

/** Which stored kinds can serve a field that needs `wanted` (the server's app/jobs/data_files.SERVES). */
export const SERVES = {
  texts: ["texts", "labelled", "treebank"],
  labelled: ["labelled"],
  treebank: ["treebank"],
};

export const KIND_LABELS = { texts: "texts", labelled: "labelled texts", treebank: "treebank" };

/** A field's value for a dataset. */
export const datasetRef = (dataset) => `dataset:${dataset.id}`;

/** The datasets that can serve a field needing `wanted`, newest first as listed. */
export const servingDatasets = (datasets, wanted) => datasets.filter((dataset) => (SERVES[wanted] || []).includes(dataset.kind));

/** One line describing a dataset in a picker: "reviews (labelled texts, 200 rows)". */
export function datasetLabel(dataset) {
  const unit = dataset.kind === "treebank" ? "sentences" : "rows";
  return `${dataset.name} (${KIND_LABELS[dataset.kind] || dataset.kind}, ${dataset.rows} ${unit})`;
}

/** A corpus name (letters, digits, - and _, at most 64) for a dataset, unique among `taken`. */
export function corpusName(name, taken = new Set()) {
  const base = String(name).replace(/[^A-Za-z0-9_-]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 56) || "corpus";
  let candidate = base;
  for (let n = 2; taken.has(candidate); n += 1) candidate = `${base}-${n}`;
  return candidate;
}

/** Corpus specs `{name, path}` for the picked datasets, named after them (unique), after the typed ones. */
export function pickedCorpora(datasets, typedNames = []) {
  const taken = new Set(typedNames);
  return datasets.map((dataset) => {
    const name = corpusName(dataset.name, taken);
    taken.add(name);
    return { name, path: datasetRef(dataset) };
  });
}
