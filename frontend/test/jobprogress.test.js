import assert from "node:assert/strict";
import { test } from "node:test";
import { etaText, progressText, secondsLeft } from "../src/jobprogress.js";

const running = (extra) => ({ status: "running", progress: 0.25, created_at: "2026-01-01T10:00:00+00:00", updated_at: "2026-01-01T10:00:30+00:00", ...extra });

test("the server's eta_s is used when the job carries it", () => {
  assert.equal(secondsLeft(running({ eta_s: 12.5 })), 12.5);
  assert.equal(secondsLeft(running({ eta_s: -3 })), 0);
});

test("without eta_s the pace so far gives elapsed x (1 - p) / p, from started_at when known", () => {
  assert.equal(secondsLeft(running()), 90);  // 30 s for a quarter: 90 s for the other three quarters
  const started = running({ started_at: "2026-01-01T10:00:20+00:00" });
  assert.equal(secondsLeft(started), 30);  // 10 s since it started running, not since it was queued
  assert.equal(secondsLeft(running({ progress: 1 })), 0);
});

test("no estimate while queued, finished, before any progress or without times", () => {
  assert.equal(secondsLeft(running({ status: "queued" })), null);
  assert.equal(secondsLeft(running({ status: "done", progress: 1 })), null);
  assert.equal(secondsLeft(running({ progress: 0 })), null);
  assert.equal(secondsLeft(running({ created_at: "not a time" })), null);
  assert.equal(secondsLeft(null), null);
});

test("seconds left in words, rounded as a person would say them", () => {
  assert.deepEqual([null, 3, 24, 55, 80, 150, 5400].map(etaText), [
    "",
    "a few seconds left",
    "about 20 s left",
    "about 1 min left",
    "about 1 min left",
    "about 3 min left",
    "about 1.5 h left",
  ]);
});

test("progress text: percentage (floored) and the estimate", () => {
  assert.equal(progressText(running({ progress: 0.426 })), "42 %, about 40 s left");  // 30 s x 0.574 / 0.426
  assert.equal(progressText(running({ progress: 0 })), "0 %");
  assert.equal(progressText({ status: "queued", progress: 0 }), "queued");
});
