import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { followJob, isActive, jobBoard } from "../src/jobs.js";

/** Just enough of the DOM for renderJobs: nodes with attributes, children and click listeners. */
class FakeNode {
  constructor(tag) {
    Object.assign(this, { tag, attributes: {}, children: [], listeners: {}, textContent: "" });
  }
  setAttribute(name, value) {
    this.attributes[name] = value;
  }
  append(...nodes) {
    this.children.push(...nodes);
  }
  replaceChildren(...nodes) {
    this.children = nodes;
  }
  addEventListener(name, listener) {
    this.listeners[name] = listener;
  }
}

/** The server's jobs: GET /api/jobs, GET /api/jobs/{id} (answers queued per id, the last one repeats),
 * POST /api/jobs and POST /api/jobs/{id}/cancel. Every request is recorded. */
function fakeServer({ listed = [], answers = {}, submitted = null, cancelled = null }) {
  const requests = [];
  globalThis.fetch = async (url, options) => {
    requests.push(`${options.method} ${url}`);
    let body;
    if (url === "/api/jobs" && options.method === "GET") body = listed;
    else if (url === "/api/jobs") body = submitted;
    else if (url.endsWith("/cancel")) body = cancelled;
    else {
      const queue = answers[url.split("/").pop()];
      body = queue.length > 1 ? queue.shift() : queue[0];
    }
    return new Response(JSON.stringify(body), { status: 200 });
  };
  return requests;
}

const job = (id, status, extra = {}) => ({ id, kind: "train_probes", status, progress: 0, message: "", result_id: null, ...extra });
const noWait = () => Promise.resolve();
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
const rows = (tbody) => tbody.children.map((row) => [row.attributes["data-job"], row.attributes["data-status"]]);

const realFetch = globalThis.fetch;
beforeEach(() => {
  globalThis.document = { createElement: (tag) => new FakeNode(tag) };
});
afterEach(() => {
  globalThis.fetch = realFetch;
  delete globalThis.document;
});

test("isActive is true only for queued and running jobs", () => {
  assert.deepEqual(["queued", "running", "done", "failed", "cancelled"].map((status) => isActive({ status })), [true, true, false, false, false]);
});

test("followJob polls GET /api/jobs/{id} until the job settles, reporting every answer", async () => {
  const requests = fakeServer({ answers: { j1: [job("j1", "queued"), job("j1", "running", { progress: 0.5 }), job("j1", "done", { result_id: "p1" })] } });
  const seen = [];
  const final = await followJob("j1", { onUpdate: (answer) => seen.push(answer.status), wait: noWait });
  assert.deepEqual(seen, ["queued", "running", "done"]);
  assert.equal(final.result_id, "p1");
  assert.deepEqual(requests, ["GET /api/jobs/j1", "GET /api/jobs/j1", "GET /api/jobs/j1"]);
});

test("followJob passes on a failed request", async () => {
  globalThis.fetch = async () => new Response(JSON.stringify({ error: { code: "not_found", message: "No job j9." } }), { status: 404 });
  await assert.rejects(followJob("j9", { wait: noWait }), { message: "No job j9.", status: 404 });
});

test("a board lists its kinds, follows only the active jobs and reports each once settled", async () => {
  const listed = [job("j2", "running"), { ...job("x", "running"), kind: "eval_mixing" }, job("j1", "done", { result_id: "old" })];
  const requests = fakeServer({ listed, answers: { j2: [job("j2", "running"), job("j2", "failed", { message: "boom" })] } });
  const tbody = new FakeNode("tbody");
  const settled = [];
  const board = jobBoard({ tbody, kinds: ["train_probes"], onSettled: (answer) => settled.push(answer), wait: noWait });
  await board.load();
  assert.deepEqual(rows(tbody), [["j2", "running"], ["j1", "done"]]);
  await settle();
  await settle();
  assert.deepEqual(settled.map((answer) => [answer.id, answer.status, answer.message]), [["j2", "failed", "boom"]]);
  assert.deepEqual(rows(tbody), [["j2", "failed"], ["j1", "done"]]);
  assert.ok(!requests.includes("GET /api/jobs/j1") && !requests.includes("GET /api/jobs/x"));
});

test("a board tells onChange every state of its jobs, so a page can show progress as it comes", async () => {
  fakeServer({ listed: [job("j4", "queued")], answers: { j4: [job("j4", "running", { progress: 0.5 }), job("j4", "done", { progress: 1 })] } });
  const seen = [];
  const board = jobBoard({ tbody: new FakeNode("tbody"), onChange: (jobs) => seen.push(jobs.map((j) => `${j.id} ${j.status} ${j.progress}`)), wait: noWait });
  await board.load();
  await settle();
  await settle();
  assert.deepEqual(seen, [["j4 queued 0"], ["j4 queued 0"], ["j4 running 0.5"], ["j4 done 1"]]);
});

test("a started job goes on top of the table and is followed to its end", async () => {
  const requests = fakeServer({ submitted: job("j3", "queued"), answers: { j3: [job("j3", "running"), job("j3", "done", { result_id: "p3" })] } });
  const tbody = new FakeNode("tbody");
  let done = null;
  const finished = new Promise((resolve) => { done = resolve; });
  const board = jobBoard({ tbody, onSettled: done, wait: noWait });
  await board.start("train_probes", { rank: 16 });
  assert.equal((await finished).result_id, "p3");
  assert.deepEqual(rows(tbody), [["j3", "done"]]);
  assert.equal(requests[0], "POST /api/jobs");
});

test("Cancel posts to /api/jobs/{id}/cancel and shows the answer; an error goes to onError", async () => {
  fakeServer({ listed: [job("j4", "queued")], answers: { j4: [job("j4", "queued")] }, cancelled: job("j4", "cancelled") });
  const tbody = new FakeNode("tbody");
  const board = jobBoard({ tbody, wait: () => new Promise(() => {}) });  // the poll waits forever: only Cancel moves
  await board.load();
  const cancel = tbody.children[0].children[5].children[0];
  await cancel.listeners.click();
  await settle();
  assert.deepEqual(rows(tbody), [["j4", "cancelled"]]);
  const errors = [];
  const other = new FakeNode("tbody");
  fakeServer({ listed: [job("j5", "running")], answers: { j5: [job("j5", "running")] } });
  const second = jobBoard({ tbody: other, onError: (error) => errors.push(error.message), wait: () => new Promise(() => {}) });
  await second.load();
  globalThis.fetch = async () => new Response(JSON.stringify({ error: { message: "This needs the admin token." } }), { status: 401 });
  await other.children[0].children[5].children[0].listeners.click();
  assert.deepEqual(errors, ["This needs the admin token."]);
  assert.deepEqual(rows(other), [["j5", "running"]]);
});
