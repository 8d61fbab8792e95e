import assert from "node:assert/strict";
import { test } from "node:test";
import { initialView, permalink, queryToView, viewToQuery } from "../src/view.js";

const controls = [
  { name: "layer", type: "range", min: 0, max: 5, value: "0" },
  { name: "head", type: "select", value: "mean" },
  { name: "hide_special", type: "checkbox", value: "" },
];

test("initialView takes URL values over defaults", () => {
  assert.deepEqual(initialView(controls, { layer: "3" }), { layer: "3", head: "mean", hide_special: "" });
});

test("viewToQuery sorts keys and drops empty values", () => {
  assert.equal(viewToQuery({ layer: "2", head: "mean", hide_special: "" }), "?head=mean&layer=2");
  assert.equal(viewToQuery({}), "");
});

test("permalink joins origin, analysis url and view", () => {
  assert.equal(permalink("http://h:8000/", "/a/xyz", { layer: "1" }), "http://h:8000/a/xyz?layer=1");
});

test("queryToView inverts viewToQuery", () => {
  const view = { head: "3", layer: "4" };
  assert.deepEqual(queryToView(viewToQuery(view)), view);
});

test("hoverText names both tokens from the axis labels", async () => {
  globalThis.document = undefined;
  const { hoverText } = await import("../src/hover.js");
  const point = { x: 1, y: 0, z: 0.123456, xaxis: { ticktext: ["[CLS]", "cat"] }, yaxis: { ticktext: ["[CLS]", "cat"] } };
  assert.equal(hoverText(point), "query [CLS] (0) → key cat (1): 0.1235");
});
