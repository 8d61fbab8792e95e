// Pure helpers of the neuron pages: browser state in the URL, which columns to show, how exemplar tokens
// join into words, and the plain-language reading of the neurons-versus-random-directions summary.

export const PAGE = 50;
export const SORTS = ["score", "consistency", "layer"];
const DEFAULT_SORT = "score";
const DEFAULT_BASIS = "neurons";
/** neurons, features:<dictionary id>, random:neurons, random:features:<dictionary id> (as the API names them). */
const BASIS = /^(random:)?(neurons|features:[A-Za-z0-9_-]{1,64})$/;

/** A number with fixed digits, "–" when missing. */
export const fmt = (value, digits = 2) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
/** A fraction as "6.2 %" (missing counts as 0). */
export const percent = (fraction) => `${fmt(100 * (fraction || 0), 1)} %`;

/** Browser filters from a query string; unknown or malformed values fall back to the defaults. */
export function browserStateFromQuery(search) {
  const params = new URLSearchParams(search);
  const text = (name) => (params.get(name) || "").trim();
  const layer = text("layer");
  const offset = Number(text("offset"));
  const sort = text("sort");
  const basis = text("basis");
  return {
    basis: BASIS.test(basis) ? basis : DEFAULT_BASIS,
    q: text("q").slice(0, 200),
    layer: /^\d+$/.test(layer) ? String(Number(layer)) : "",
    label: text("label"),
    sort: SORTS.includes(sort) ? sort : DEFAULT_SORT,
    offset: Number.isInteger(offset) && offset > 0 ? offset - (offset % PAGE) : 0,
  };
}

/** Query string of the browser filters ("" for the default view); defaults left out, stable order. */
export function browserStateToQuery(state) {
  const params = new URLSearchParams();
  if (state.basis && state.basis !== DEFAULT_BASIS) params.set("basis", state.basis);
  if (state.q) params.set("q", state.q);
  if (state.layer !== "" && state.layer !== undefined && state.layer !== null) params.set("layer", String(state.layer));
  if (state.label) params.set("label", state.label);
  if (state.sort && state.sort !== DEFAULT_SORT) params.set("sort", state.sort);
  if (state.offset > 0) params.set("offset", String(state.offset));
  const query = params.toString();
  return query ? `?${query}` : "";
}

/** Columns of the neuron table: descriptor columns (and "match" while searching) once a description run
 * exists; before that only the index statistics, where each item has its maximum. */
export function browserColumns(described, query) {
  if (!described) return ["neuron", "mean", "std", "max"];
  return ["neuron", "best descriptors", ...(query ? ["match"] : []), "score", "label", "consistency"];
}

/** Exemplar tokens as display pieces: word-piece markers removed, `space` where a new word starts,
 * `special` for tokens without an activation ([CLS], [SEP], <s>, </s>). */
export function tokenLayout(tokens, activations) {
  const marked = (prefix) => tokens.some((token, i) => i > 0 && token.length > 1 && token.startsWith(prefix));
  const lead = marked("Ġ") ? "Ġ" : marked("▁") ? "▁" : null;
  return tokens.map((raw, index) => {
    const value = activations[index] ?? null;
    const special = value === null;
    let text = raw;
    let space = index > 0;
    if (!special && lead && raw.length > 1 && raw.startsWith(lead)) text = raw.slice(1);
    else if (!special && lead) space = index > 0 && activations[index - 1] === null;
    else if (!special && !lead && raw.length > 2 && raw.startsWith("##")) {
      text = raw.slice(2);
      space = false;
    }
    return { index, raw, text, value, special, space };
  });
}

/** "256 directions over 6 layers" from the random directions' summary (`per_layer`: {layer: count}). */
export function directionsText(group) {
  const counts = Object.values(group.per_layer).map(Number);
  const total = counts.reduce((sum, count) => sum + count, 0);
  return `${total} directions over ${counts.length} layer${counts.length === 1 ? "" : "s"}`;
}

/** The group of a run's own units (runs stored before features existed call it `neurons`). */
export const unitsOf = (summary) => summary.units || summary.neurons;

/** "features" for a run over a dictionary's features, else "neurons". */
export const unitWord = (summary) => ((summary.basis || "").startsWith("features:") ? "features" : "neurons");

/** Rows of the side-by-side summary: neurons, SAE features, and the random directions drawn beside each
 * (in FFN space, and in the space the dictionary reads), from the newest run of each; a missing run gives
 * no row. `where`: the dictionary's layer and site, e.g. "L3 residual". */
export function comparisonRows(comparison, where = "") {
  const rows = [];
  const { neurons, features } = comparison;
  if (neurons) rows.push({ name: "neurons", size: `${unitsOf(neurons).units} units`, group: unitsOf(neurons) });
  if (features) rows.push({ name: `SAE features${where ? ` (${where})` : ""}`, size: `${unitsOf(features).units} features`, group: unitsOf(features) });
  if (neurons) rows.push({ name: "random directions, FFN space (control)", size: directionsText(neurons.random_directions), group: neurons.random_directions });
  if (features) rows.push({ name: `random directions, ${where || "dictionary"} space (control)`, size: directionsText(features.random_directions), group: features.random_directions });
  return rows;
}

/** The corpora of the rows' runs, in first-seen order (a run that did not describe a corpus shows "–"). */
export function comparisonCorpora(comparison) {
  return [...new Set([comparison.neurons, comparison.features].filter(Boolean).flatMap((summary) => summary.corpora))];
}

/** One plain sentence comparing a run's units (neurons or features) with its random directions. */
export function illusionSentence(summary) {
  const units = unitsOf(summary);
  const word = unitWord(summary);
  const Word = word[0].toUpperCase() + word.slice(1);
  const randoms = summary.random_directions;
  const caveat = ` When the two are close, a description alone is weak evidence that a ${word.slice(0, -1)} encodes that concept.`;
  if (summary.corpora.length < 2) {
    const described = (group) => summary.corpora.map((c) => percent(group.per_corpus[c].described_fraction)).join(" / ");
    return (
      `Only ${summary.corpora.join(", ")} was described, so consistency across corpora is not computed;` +
      ` described there: ${word} ${described(units)}, random directions ${described(randoms)}.${caveat}`
    );
  }
  const consistent = (group) => percent(group.labels.consistent);
  return (
    `${Word}: ${consistent(units)} consistent, mean consistency ${fmt(units.mean_consistency)};` +
    ` random directions: ${consistent(randoms)}, ${fmt(randoms.mean_consistency)}. ${illusionVerdict(units, randoms, word)}`
  );
}

// How far neurons must lead random directions before the page calls the difference more than "close":
// 2 percentage points of consistent units and 0.05 of mean consistency (a reading aid, not a test).
const CLOSE_FRACTION = 0.02;
const CLOSE_MEAN = 0.05;

/** One sentence reading the units-versus-random-directions numbers of a run with two or more corpora. */
export function illusionVerdict(neurons, randoms, word = "neurons") {
  const n = neurons.labels.consistent || 0;  // a label no unit has is left out of `labels`
  const r = randoms.labels.consistent || 0;
  const nm = neurons.mean_consistency;
  const rm = randoms.mean_consistency;
  const means = nm !== null && nm !== undefined && rm !== null && rm !== undefined;
  if (r >= n || (means && rm >= nm)) {
    return `Random directions are as consistent as ${word} or more on these corpora: a description, even a consistent one, is no evidence beyond what noise also gets.`;
  }
  if (n - r < CLOSE_FRACTION || (means && nm - rm < CLOSE_MEAN)) {
    return `The two are close: a description alone is weak evidence that a ${word.slice(0, -1)} encodes that concept.`;
  }
  return `${word[0].toUpperCase()}${word.slice(1)} are more often consistent than random directions here; still read any single description with this control in mind.`;
}
