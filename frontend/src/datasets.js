// Uploaded datasets in the page: a dataset picker with an upload button for every data field of a job form,
// the corpora picker of the neuron index, and the list of stored datasets with Delete. The rules they follow
// are in datasetlist.js. Every dataset name and file name goes in through textContent (dom.el).

import { deleteDataset, listDatasets, uploadDataset } from "./api.js";
import { KIND_LABELS, datasetLabel, datasetRef, servingDatasets } from "./datasetlist.js";
import { el } from "./dom.js";

const CHANGED = "bertscope:datasets-changed";
const ACCEPT = ".txt,.tsv,.csv,.jsonl,.conllu,text/plain,text/csv,text/tab-separated-values";

/** Tell every dataset picker of the page that the list changed (an upload or a delete). */
const announce = () => document.dispatchEvent(new CustomEvent(CHANGED));

/** An upload control: a file input that stores the chosen file as a dataset of `kind` (null: inferred) and
 * reports it through `onStored(dataset)`; its status line says what happened or what to fix. */
function uploadControl(id, kind, onStored) {
  const input = el("input", { id: `${id}-upload`, type: "file", accept: ACCEPT, class: "dataset-upload" });
  const status = el("span", { class: "hint upload-status", role: "status", id: `${id}-upload-status` });
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    status.classList.remove("error");
    status.textContent = `Uploading and checking ${file.name}...`;
    try {
      const dataset = await uploadDataset(file, kind ? { kind } : {});
      status.textContent = dataset.created ? `Stored ${datasetLabel(dataset)}.` : `Already stored as ${datasetLabel(dataset)}.`;
      onStored(dataset);
      announce();
    } catch (error) {
      status.classList.add("error");
      status.textContent = error.message;
    } finally {
      input.value = "";
    }
  });
  return el("span", { class: "upload" }, [el("label", { for: input.id, class: "inline", text: "or upload a file: " }), input, status]);
}

const PATH = "__path__";

/** A data field: pick an uploaded dataset of a fitting kind, upload one, or (admins) type a server path. */
export function datasetWidget(id, field) {
  const wanted = field.schema.dataset_kind || "texts";
  const select = el("select", { id, name: field.name, "data-dataset-kind": wanted });
  const path = el("input", { id: `${id}-path`, name: field.name, size: 40, placeholder: "/path/on/the/server", hidden: true });
  const empty = field.required ? "choose a dataset" : "none";
  let preferred = null;  // a dataset this field just uploaded: picked once the list has it
  const fill = async () => {
    const datasets = servingDatasets(await listDatasets().catch(() => []), wanted);
    const chosen = preferred || select.value;
    preferred = null;
    const options = datasets.map((dataset) => el("option", { value: datasetRef(dataset), text: datasetLabel(dataset) }));
    select.replaceChildren(el("option", { value: "", text: empty }), ...options, el("option", { value: PATH, text: "a file on the server (admin)" }));
    select.value = [...select.options].some((option) => option.value === chosen) ? chosen : "";
    path.hidden = select.value !== PATH;
  };
  select.addEventListener("change", () => { path.hidden = select.value !== PATH; });
  document.addEventListener(CHANGED, () => fill());
  // every picker of the page refills on the announcement that follows an upload; this one picks the upload
  const upload = uploadControl(id, wanted === "texts" ? null : wanted, (dataset) => { preferred = datasetRef(dataset); });
  fill();
  const read = () => (select.value === PATH ? path.value.trim() : select.value);
  return { node: el("div", { class: "field", "data-field": field.name }, [el("label", { for: id, text: field.label }), select, path, upload, field.help ? el("span", { class: "hint", text: field.help }) : null].filter(Boolean)), read };
}

/** A list of datasets as named specs (`widget`: "corpora" for the neuron index, any data kind; "labelled_datasets"
 * for the neuron evaluation, labelled data only): tick uploaded datasets (each becomes a spec named after it),
 * upload one, and type more (corpora: NAME=PATH lines for files on the server; labelled: JSON specs). */
function datasetListWidget(id, field, wanted, placeholder) {
  const list = el("div", { class: "dataset-choices", id: `${id}-datasets` });
  const area = el("textarea", { id, name: field.name, rows: 2, cols: 60, placeholder });
  let datasets = [];
  let uploaded = null;  // a dataset this picker just uploaded: ticked once the list has it
  const fill = async () => {
    const listed = servingDatasets(await listDatasets().catch(() => []), wanted);
    const ticked = new Set([...list.querySelectorAll("input:checked")].map((box) => box.value));
    if (uploaded) ticked.add(uploaded);
    uploaded = null;
    datasets = listed;
    list.replaceChildren(...datasets.map((dataset) => {
      const box = el("input", { type: "checkbox", id: `${id}-dataset-${dataset.id}`, value: dataset.id, checked: ticked.has(dataset.id) });
      return el("label", { class: "inline", for: box.id }, [box, ` ${datasetLabel(dataset)}`]);
    }));
    if (!datasets.length) list.append(el("span", { class: "hint", text: "No uploaded dataset of this kind yet: upload one below." }));
  };
  document.addEventListener(CHANGED, () => fill());
  const upload = uploadControl(id, wanted === "texts" ? null : wanted, (dataset) => { uploaded = dataset.id; });
  fill();
  const read = () => {
    const picked = new Set([...list.querySelectorAll("input:checked")].map((box) => box.value));
    return { text: area.value, datasets: datasets.filter((dataset) => picked.has(dataset.id)) };
  };
  const legend = el("legend", { text: field.label });
  const help = field.help ? el("span", { class: "hint", text: field.help }) : null;
  return { node: el("fieldset", { class: "params corpora", "data-field": field.name }, [legend, list, upload, area, help].filter(Boolean)), read };
}

/** The corpora of a neuron index: uploaded datasets of any kind, or NAME=PATH lines (admins). */
export const corporaWidget = (id, field) => datasetListWidget(id, field, "texts", "server files (admin): one NAME=PATH per line");

/** The labelled datasets of the neuron evaluation: uploaded labelled datasets, or JSON specs. */
export const labelledDatasetsWidget = (id, field) =>
  datasetListWidget(id, field, "labelled", '[{"name": "news", "path": "/srv/news.tsv", "label_names": {"0": "World"}}] (admin, JSON)');

/** The page's list of uploaded datasets with a Delete button each (in `root`, e.g. #datasets). */
export async function datasetsPanel(root) {
  const body = root.querySelector("tbody");
  const status = root.querySelector(".datasets-status");
  const render = async () => {
    const datasets = await listDatasets().catch((error) => {
      status.textContent = error.message;
      return [];
    });
    body.replaceChildren(...datasets.map((dataset) => {
      const remove = el("button", { type: "button", class: "delete-dataset", text: "Delete", "data-id": dataset.id });
      remove.addEventListener("click", async () => {
        try {
          await deleteDataset(dataset.id);
          status.textContent = `Deleted ${dataset.name}.`;
          announce();
        } catch (error) {
          status.textContent = error.message;
        }
      });
      const cells = [dataset.name, KIND_LABELS[dataset.kind] || dataset.kind, String(dataset.rows), dataset.filename, dataset.created_at.slice(0, 16).replace("T", " ")];
      return el("tr", { "data-dataset": dataset.id }, [...cells.map((text) => el("td", { text })), el("td", {}, [remove])]);
    }));
    root.querySelector(".datasets-empty").hidden = datasets.length > 0;
  };
  document.addEventListener(CHANGED, render);
  await render();
}
