"""The attribution league table: every attribution method through the degradation test, in two settings.

Settings, per dataset (SST-2 dev, AG News test; gold labels explained):

* ``fine-tuned``: a classifier fine-tuned end to end from the embedded model on the dataset's train split
  (``bertscope heads finetune``), its own classification head as the target — the setting of the papers;
* ``frozen``: the embedded model with a logistic head fitted on pooled embeddings of the same train split
  (``bertscope heads fit``) — bertscope's default setting.

Both removal modes (``delete``, ``mask``), most important first; AOPC, comprehensiveness and sufficiency as
in ``app.methods.evaluation.degradation``. IBA runs with both estimators (the dataset default and the
released code's per-sentence one). Then mixing faithfulness (Spearman with blank-out,
``app.methods.evaluation.mixing_faithfulness``) of every mixing method on each fine-tuned classifier.

Every (dataset, setting, mode, method) cell is cached as JSON under ``bench/.cache/league/`` keyed by the
model revision and the options, so an interrupted run resumes and a new method costs only its own cells.

    python -m bench.league_table --threads 2 [--limit 100] [--finetuned-sst2 DIR --finetuned-agnews DIR]

Without ``--finetuned-*`` the classifiers are fine-tuned here first (default recipe, about a minute each on
2 cores) and kept under the cache, so the whole table is one command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from app.methods import METHODS
from app.methods.base import Method
from app.methods.evaluation.degradation import RANDOM, evaluate_degradation
from app.methods.evaluation.mixing_faithfulness import evaluate_mixing
from app.methods.evaluation.texts import read_labelled
from app.modeling.encoding import Encoded, encode_for
from app.modeling.finetune import FACTS_FILE, copy_classifier, finetune, save_finetuned
from app.modeling.heads import FittedHead, fit_head
from app.modeling.loading import EMBEDDED, LoadedModel, load_model
from app.modeling.targets import AnyTarget, HeadTarget, bind_target, default_target
from bench.report import Table, write_report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CACHE = Path(__file__).resolve().parent / ".cache" / "league"
MAX_TOKENS = 512
ATTRIBUTION = [
    "iba",
    "decompx",
    "attnlrp",
    "integrated_gradients",
    "gradient_x_input",
    "lime",
    "occlusion",
    "value_zeroing_row",
    "alti_row",
]
IBA_SENTENCE = "iba (per-sentence estimator)"  # the second IBA row: same method, the released estimator
MODES = ["delete", "mask"]


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Path
    test: Path
    text_col: str
    label_col: str


DATASETS = [
    Dataset("SST-2 dev", DATA / "sst2" / "train.tsv", DATA / "sst2" / "dev.tsv", "sentence", "label"),
    Dataset(
        "AG News test",
        DATA / "ag-news" / "train.tsv",
        DATA / "ag-news" / "test.tsv",
        "text",
        "label_name",
    ),
]


@dataclass
class Setting:
    """A model and the target the degradation test explains with it."""

    name: str
    loaded: LoadedModel
    target: AnyTarget | None
    head: FittedHead | None = None


def load() -> str:
    source = Path("/proc/loadavg")
    return " ".join(source.read_text().split()[:3]) if source.is_file() else "?"


def cached(key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()`` once per key; the JSON answer is kept under ``CACHE``."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = CACHE / f"{digest}.json"
    if path.is_file():
        return json.loads(path.read_text())["value"]
    value = compute()
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"key": key, "value": value}))
    os.replace(partial, path)
    return value


def method_entry(name: str, lime_samples: int) -> tuple[str, dict, str]:
    """(registry name, params, row label) of one league row."""
    if name == IBA_SENTENCE:
        return "iba", {"estimator": "sentence"}, name
    if name == "lime":
        return "lime", {"samples": lime_samples}, name
    return name, {}, name


class Remembered:
    """A method whose scores are computed once per (input, explained label) and reused by the next mode.

    Attribution does not depend on how tokens are later removed, so the ``mask`` pass reuses the scores the
    ``delete`` pass computed for the same rows instead of running the method again.
    """

    def __init__(self, method: Method) -> None:
        self.method = method
        self.Params = method.Params
        self.results: dict[tuple, object] = {}

    def run(self, loaded: LoadedModel, encoded: Encoded, params: object, target: object) -> object:
        key = (tuple(encoded.input_ids[0].tolist()), target.index, json.dumps(params.model_dump()))
        if key not in self.results:
            self.results[key] = self.method.run(loaded, encoded, params, target)
        return self.results[key]


REMEMBERED: dict[tuple[str, str], Remembered] = {}  # (setting revision, method) -> its scores


def degradation_cell(
    setting: Setting, dataset: Dataset, rows: list, mode: str, row_name: str, args: argparse.Namespace
) -> dict:
    method_name, params, _ = method_entry(row_name, args.lime_samples)
    key = {
        "kind": "degradation",
        "model": setting.loaded.revision,
        "head": None if setting.head is None else setting.head.weight.tobytes().hex()[:64],
        "dataset": dataset.name,
        "limit": args.limit,
        "mode": mode,
        "method": method_name,
        "params": params,
        "version": 0 if method_name == RANDOM else METHODS[method_name].version,
        "seed": args.seed,
    }

    def compute() -> dict:
        clock = time.perf_counter()
        evaluation = evaluate_degradation(
            setting.loaded,
            rows,
            {method_name: None if method_name == RANDOM else remembered(setting, row_name, method_name)},
            setting.target,
            mode=mode,
            method_params={method_name: params} if params else None,
            heads=(lambda _key: setting.head) if setting.head else None,
            max_tokens=MAX_TOKENS,
            seed=args.seed,
        )
        summary = evaluation.summary()
        seconds = time.perf_counter() - clock
        print(
            f"  {dataset.name} / {setting.name} / {mode} / {row_name}: {seconds:.0f} s (load {load()})",
            flush=True,
        )
        return {**summary["summary"].get(method_name, {}), "skipped": summary["skipped"], "seconds": seconds}

    return cached(key, compute)


def remembered(setting: Setting, row_name: str, method_name: str) -> Remembered:
    key = (setting.loaded.revision + setting.name, row_name)
    if key not in REMEMBERED:
        REMEMBERED[key] = Remembered(METHODS[method_name])
    return REMEMBERED[key]


def frozen_setting(embedded: LoadedModel, dataset: Dataset, head_rows: int) -> Setting:
    texts, labels = read_labelled(dataset.train, dataset.text_col, dataset.label_col, head_rows)
    head = fit_head(embedded, texts, labels, name=dataset.name, params={})
    print(f"{dataset.name}: frozen head {head.metrics}", flush=True)
    return Setting("frozen", embedded, HeadTarget(head=dataset.name), head)


def finetuned_checkpoint(embedded: LoadedModel, dataset: Dataset) -> str:
    """The embedded model fine-tuned on the dataset's train split with the default recipe (as
    ``bertscope heads finetune`` does), trained once and kept under the cache."""
    directory = CACHE / "models" / f"{dataset.name.split()[0].lower()}-{embedded.revision}"
    if not (directory / FACTS_FILE).is_file():
        texts, labels = read_labelled(dataset.train, dataset.text_col, dataset.label_col)
        dev = read_labelled(dataset.test, dataset.text_col, dataset.label_col)
        result = finetune(copy_classifier(embedded, labels), texts, labels, dev=dev)
        save_finetuned(result, directory, {"name": directory.name, "data": str(dataset.train)})
        print(f"{dataset.name}: fine-tuned in {result.seconds:.0f} s, accuracy {result.dev_accuracy:.4f}")
    return str(directory)


def finetuned_setting(path: str | None, dataset: Dataset, embedded: LoadedModel) -> Setting:
    path = path or finetuned_checkpoint(embedded, dataset)
    loaded = load_model(path, device="cpu")
    if loaded.head != "classification":
        raise SystemExit(f"{path} is not a sequence-classification checkpoint")
    return Setting("fine-tuned", loaded, None)


@torch.no_grad()
def accuracy(setting: Setting, rows: list) -> float:
    """Share of ``rows`` whose gold label is the setting's top class (the classifier being explained)."""
    spec = setting.target or default_target(setting.loaded)
    heads = (lambda _key: setting.head) if setting.head else None
    correct = 0
    for text, gold in rows:
        encoded = encode_for(setting.loaded, text, max_tokens=MAX_TOKENS)
        target = bind_target(setting.loaded, spec.model_copy(update={"label": gold}), encoded, heads=heads)
        correct += int(target.scores(**encoded.model_inputs())[0].argmax()) == target.index
    return correct / max(len(rows), 1)


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def degradation_tables(results: dict, settings: list[str], rows: list[str]) -> list[Table]:
    tables = []
    for (dataset, mode), by_setting in results.items():
        header = ["method"]
        for setting in settings:
            header += [f"AOPC {setting}", f"compr. {setting}", f"suff. {setting}"]
        body = []
        for row in rows:
            cells: list[object] = [row]
            for setting in settings:
                entry = by_setting.get(setting, {}).get(row)
                cells += [
                    fmt(entry.get("aopc")) if entry else "–",
                    fmt(entry.get("comprehensiveness")) if entry else "–",
                    fmt(entry.get("sufficiency")) if entry else "–",
                ]
            body.append(cells)
        caption = f"**{dataset}, tokens {'deleted' if mode == 'delete' else 'replaced by [MASK]'}**"
        tables.append(Table(header, body, caption, [False] + [True] * (len(header) - 1)))
    return tables


def mixing_table(setting: Setting, dataset: Dataset, texts: list[str], args: argparse.Namespace) -> Table:
    names = [name for name, method in METHODS.items() if method.kind == "mixing"]
    key = {
        "kind": "mixing",
        "model": setting.loaded.revision,
        "dataset": dataset.name,
        "limit": args.mixing_limit,
        "methods": {name: METHODS[name].version for name in names},
    }

    def compute() -> dict:
        clock = time.perf_counter()
        evaluation = evaluate_mixing(
            setting.loaded,
            texts,
            {**{name: METHODS[name] for name in names}, RANDOM: None},
            None,
            max_tokens=MAX_TOKENS,
        )
        print(f"  mixing on {dataset.name}: {time.perf_counter() - clock:.0f} s (load {load()})", flush=True)
        return evaluation.summary()

    summary = cached(key, compute)
    return mixing_summary_table(summary, f"**Mixing faithfulness on {dataset.name}, fine-tuned classifier**")


def mixing_summary_table(summary: dict, caption: str) -> Table:
    """Spearman's rho with blank-out per method: mean over sentences at the last layer and over layers."""
    rows = []
    for method, entry in summary["summary"].items():
        means = [value for value in entry["mean"] if value is not None]
        last = entry["mean"][-1]
        rows.append([method, last, sum(means) / len(means) if means else None])
    rows.sort(key=lambda row: -row[1] if row[1] is not None else 0.0)
    body = [[method, fmt(last), fmt(average)] for method, last, average in rows]
    header = ["method", "ρ at the last layer", "ρ averaged over layers"]
    return Table(header, body, caption, [False, True, True])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--finetuned-sst2", help="checkpoint fine-tuned on SST-2 train (default: fine-tune one, cached)"
    )
    parser.add_argument(
        "--finetuned-agnews", help="checkpoint fine-tuned on AG News train (default: fine-tune one, cached)"
    )
    parser.add_argument("--limit", type=int, default=100, help="test rows per dataset")
    parser.add_argument("--mixing-limit", type=int, default=100, help="rows for mixing faithfulness")
    parser.add_argument("--head-rows", type=int, default=None, help="train rows for the frozen heads")
    parser.add_argument("--lime-samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--methods", help="comma-separated subset of the league's rows (default: all)")
    args = parser.parse_args()
    if not all(dataset.test.is_file() for dataset in DATASETS):
        print(f"skipped: {DATA} (SST-2, AG News) is absent")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [*ATTRIBUTION[:1], IBA_SENTENCE, *ATTRIBUTION[1:], RANDOM]
    rows = [row for row in rows if row == IBA_SENTENCE or row == RANDOM or row in METHODS]
    if args.methods:
        wanted = args.methods.split(",")
        rows = [row for row in rows if row in wanted or (row == IBA_SENTENCE and "iba-sentence" in wanted)]
    embedded = load_model(EMBEDDED, device="cpu")
    finetuned = {DATASETS[0].name: args.finetuned_sst2, DATASETS[1].name: args.finetuned_agnews}
    results: dict = {}
    mixing: list[Table] = []
    classifiers: list[list[str]] = []
    started, before = time.perf_counter(), load()
    for dataset in DATASETS:
        test = list(
            zip(*read_labelled(dataset.test, dataset.text_col, dataset.label_col, args.limit), strict=True)
        )
        settings = [
            finetuned_setting(finetuned[dataset.name], dataset, embedded),
            frozen_setting(embedded, dataset, args.head_rows),
        ]
        for setting in [s for s in settings if s is not None]:
            classifiers.append([dataset.name, setting.name, f"{accuracy(setting, test):.3f}", str(len(test))])
            for mode in MODES:
                cell = results.setdefault((dataset.name, mode), {}).setdefault(setting.name, {})
                for row in rows:
                    cell[row] = degradation_cell(setting, dataset, test, mode, row, args)
            if setting.name == "fine-tuned":
                texts = [text for text, _ in test[: args.mixing_limit]]
                mixing.append(mixing_table(setting, dataset, texts, args))
    tables = [
        Table(["dataset", "classifier", "accuracy on the rows explained", "rows"], classifiers, "Classifiers")
    ]
    tables += degradation_tables(results, ["fine-tuned", "frozen"], rows) + mixing
    setup = (
        f"First {args.limit} rows of SST-2 dev and AG News test, gold labels explained, most important "
        "tokens "
        f"removed first; LIME with {args.lime_samples} samples, every other method at its defaults; frozen "
        f"heads fitted on {'all' if args.head_rows is None else args.head_rows} train rows; fine-tuned "
        f"classifiers: {args.finetuned_sst2}, {args.finetuned_agnews}; mixing faithfulness on the first "
        f"{args.mixing_limit} rows. Wall {time.perf_counter() - started:.0f} s (cells computed in this run; "
        f"cached cells are reused), load {before} -> {load()}. `python -m bench.league_table` (see its "
        "docstring)."
    )
    print(write_report("league_table", setup, tables, []))


if __name__ == "__main__":
    main()
