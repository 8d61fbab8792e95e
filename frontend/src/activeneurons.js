// "Neurons most active here" on an analysis page: the neurons that fire most on its text, relative to their
// maximum over an indexed corpus, each linked to its page.

import { getJSON } from "./api.js";
import { el } from "./dom.js";
import { fmt } from "./neuronview.js";

export async function setupActiveNeurons(analysisId) {
  const box = document.getElementById("active-neurons");
  if (!box) return;
  try {
    const answer = await getJSON(`/api/analyses/${encodeURIComponent(analysisId)}/neurons`);
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
