// "Neurons most active here" and "Features most active here" on an analysis page: the units that fire most on
// its text, relative to their maximum over an indexed corpus, each linked to its page. The features box keeps
// its dictionary in the page's URL (`dictionary=`), so a shared link reopens the same basis.

import { getJSON } from "./api.js";
import { el } from "./dom.js";
import { fmt } from "./neuronview.js";

function renderItems(box, answer, reference) {
  box.replaceChildren(
    el("p", { class: "hint", text: reference }),
    el("ul", { class: "active-neurons" }, answer.items.map((item) =>
      el("li", {}, [
        el("a", { href: item.url, text: item.name || `L${item.layer} · ${item.unit}` }),
        " on ",
        el("code", { class: "token", text: item.token }),
        ` ×${fmt(item.relative)} `,
        el("span", { class: "hint", text: item.best_descriptor || "" }),
      ]),
    )),
  );
}

export async function setupActiveNeurons(analysisId) {
  const box = document.getElementById("active-neurons");
  if (!box) return;
  try {
    const answer = await getJSON(`/api/analyses/${encodeURIComponent(analysisId)}/neurons`);
    if (!answer.items.length) {
      box.replaceChildren(el("p", { class: "hint", text: "No neuron index for this model yet (see Neurons)." }));
      return;
    }
    renderItems(box, answer, `Activation relative to the neuron's maximum over the ${answer.index} corpus (the largest ${answer.index_in_description ? "corpus of the latest description run" : "indexed corpus"}).`);
  } catch (error) {
    box.replaceChildren(el("p", { class: "hint", text: error.message }));
  }
}

/** Features of the dictionary named in the URL (else the newest indexed one); `onDictionary(id)` is told
 * which dictionary is shown, so the page can keep it in its links. */
export async function setupActiveFeatures(analysisId, onDictionary) {
  const box = document.getElementById("active-features");
  if (!box) return;
  const wanted = new URLSearchParams(window.location.search).get("dictionary");
  const query = wanted ? `?dictionary=${encodeURIComponent(wanted)}` : "";
  try {
    const answer = await getJSON(`/api/analyses/${encodeURIComponent(analysisId)}/features${query}`);
    const dictionary = answer.dictionary;
    if (!answer.items.length) {
      let why = "No dictionary for this model yet: train one on the Neurons page.";
      if (dictionary && !answer.index) why = `Dictionary ${dictionary.name} has no feature index yet (see Neurons).`;
      else if (dictionary) why = `None of dictionary ${dictionary.name}'s features is active on this text.`;
      box.replaceChildren(el("p", { class: "hint", text: why }));
      return;
    }
    onDictionary(dictionary.id);
    renderItems(box, answer, `Dictionary ${dictionary.name} (layer ${dictionary.layer} ${dictionary.site}): each feature's code relative to its maximum over the ${answer.index} corpus.`);
  } catch (error) {
    box.replaceChildren(el("p", { class: "hint", text: error.message }));
  }
}
