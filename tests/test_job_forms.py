"""The pages' job forms are generated from each job's ``Params`` JSON schema (``frontend/src/jobform.js``):
the page spec carries the schema of every job whose form the page shows, the templates hold no field of their
own, and every field a generic form cannot type by itself names a widget the frontend has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.jobs.evaluations import (
    ATTRIBUTION_METHODS,
    MIXING_METHODS,
    RANDOM,
    EvalDegradationParams,
    EvalMixingParams,
)
from app.jobs.registry import JOBS

JOBFORM_JS = Path(__file__).resolve().parents[1] / "frontend" / "src" / "jobform.js"
PAGES = {
    "/evaluations": [
        "eval_degradation",
        "eval_mixing",
        "eval_neurons",
        "fit_head",
        "finetune_classifier",
        "load_model",
    ],
    "/probes": ["train_probes"],
    "/neurons": ["index_neurons", "train_dictionary", "index_features"],
}
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)


def _spec(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="page-spec">(.*?)</script>', html, re.S)
    assert found, "the page has no JSON spec"
    return json.loads(found.group(1))


def _job_forms(html: str) -> dict[str, str]:
    """{kind: the form's inner HTML} of every ``form.job-form`` of a page."""
    forms = {}
    for attributes, body in FORM.findall(html):
        if re.search(r'class="[^"]*\bjob-form\b', attributes):
            forms[re.search(r'data-kind="([a-z_]+)"', attributes).group(1)] = body
    return forms


def _widgets() -> set[str]:
    """The widget names jobform.js renders (the keys of its WIDGETS table)."""
    table = re.search(r"const WIDGETS = \{(.*?)\n\};", JOBFORM_JS.read_text(encoding="utf-8"), re.S)
    assert table, "jobform.js has no WIDGETS table"
    return set(re.findall(r"^\s+(\w+):", table.group(1), re.M))


@pytest.mark.parametrize("path", list(PAGES))
def test_each_job_form_is_generated_from_its_params_schema(client, path):
    html = client.get(path).text
    forms, spec = _job_forms(html), _spec(html)
    assert sorted(forms) == sorted(PAGES[path]) == sorted(spec["jobs"])
    for kind, body in forms.items():
        assert spec["jobs"][kind] == JOBS[kind].Params.model_json_schema(), kind
        # the form lists the fields in the order the model declares them (the spec's keys are not sorted)
        assert list(spec["jobs"][kind]["properties"]) == list(JOBS[kind].Params.model_fields), kind
        hand_written = re.search(r"<(input|select|textarea)\b", body)
        assert not hand_written, f"{kind}: the template writes a field by hand"


def _needs_widget(schema: dict, prop: dict) -> bool:
    """Would a generic form have to guess this field? Objects, unions of objects, lists of objects."""
    options = [option for option in prop.get("anyOf", [prop]) if option.get("type") != "null"]
    for option in options:
        items = option.get("items", {})
        if "$ref" in option or "oneOf" in option or option.get("type") == "object" or "$ref" in items:
            return True
    return False


@pytest.mark.parametrize("kind", list(JOBS))
def test_complex_job_fields_name_a_widget_the_frontend_has(kind):
    schema = JOBS[kind].Params.model_json_schema()
    widgets = _widgets()
    assert {"target", "corpora", "json"} <= widgets
    for name, prop in schema["properties"].items():
        if _needs_widget(schema, prop):
            assert prop.get("widget") in widgets, f"{kind}.{name} needs json_schema_extra={{'widget': ...}}"
        elif "widget" in prop:
            assert prop["widget"] in widgets, f"{kind}.{name}: no widget {prop['widget']!r} in jobform.js"


@pytest.mark.parametrize(
    ("model", "valid"),
    [(EvalMixingParams, [*MIXING_METHODS, RANDOM]), (EvalDegradationParams, [*ATTRIBUTION_METHODS, RANDOM])],
)
def test_method_lists_offer_exactly_the_valid_names_and_still_validate(model, valid):
    methods = model.model_json_schema()["properties"]["methods"]
    assert methods["items"] == {"type": "string", "enum": valid}
    assert set(model.model_fields["methods"].get_default(call_default_factory=True)) <= set(valid)
    with pytest.raises(ValidationError, match="valid: "):
        model(data="x.tsv", methods=[valid[0], "no_such_method"])


@pytest.mark.parametrize("kind", list(JOBS))
def test_every_default_is_in_the_schema_the_form_starts_from(kind):
    """A default the schema does not show (a ``default_factory``) would start the form empty."""
    model = JOBS[kind].Params
    properties = model.model_json_schema()["properties"]
    for name, field in model.model_fields.items():
        if field.is_required():
            continue
        default = field.get_default(call_default_factory=True)
        if default in ({}, []):
            continue  # an empty input is the same as the empty default
        assert properties[name].get("default") == default, f"{kind}.{name}: default missing from the schema"
