// Jobs on a page, in one place: the jobs table, starting and cancelling jobs, and following each job at
// GET /api/jobs/{id} until it is done, failed or cancelled.

import { getJSON, postJSON } from "./api.js";
import { el } from "./dom.js";

export const POLL_MS = 1000;

/** Queued or running: a job that will still change. */
export function isActive(job) {
  return job.status === "queued" || job.status === "running";
}

/** Rows of the jobs table (id, kind, status, progress, message, a Cancel button while active). */
export function renderJobs(tbody, jobs, onCancel) {
  tbody.replaceChildren(
    ...jobs.map((job) => {
      const cancel = isActive(job) ? el("button", { type: "button", class: "cancel", text: "Cancel" }) : el("span");
      if (isActive(job)) cancel.addEventListener("click", () => onCancel(job.id));
      return el("tr", { "data-job": job.id, "data-status": job.status }, [
        el("td", {}, [el("code", { text: job.id })]),
        el("td", { text: job.kind }),
        el("td", { class: "status", text: job.status }),
        el("td", {}, [el("progress", { max: 1, value: job.progress })]),
        el("td", { text: job.message }),
        el("td", {}, [cancel]),
      ]);
    }),
  );
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll GET /api/jobs/{id} until the job is no longer active; `onUpdate(job)` after every answer.
 * Resolves with the settled job (done, failed or cancelled). */
export async function followJob(id, { onUpdate = () => {}, interval = POLL_MS, wait = delay } = {}) {
  for (;;) {
    const job = await getJSON(`/api/jobs/${encodeURIComponent(id)}`);
    onUpdate(job);
    if (!isActive(job)) return job;
    await wait(interval);
  }
}

/** The event every job board sends when a job it follows settles (`detail`: the job), so other parts of the
 * page can catch up (e.g. target pickers list a head that a fit_head job just stored). */
export const JOB_SETTLED = "bertscope:job-settled";

function announceSettled(job) {
  if (typeof document !== "undefined" && typeof document.dispatchEvent === "function") {
    document.dispatchEvent(new CustomEvent(JOB_SETTLED, { detail: job }));
  }
}

/** The jobs of one page: `load()` lists them (only `kinds` when given) and follows the active ones,
 * `start(kind, params)` submits one and follows it. `onSettled(job)` is called once for every job this page
 * saw go from active to done, failed or cancelled; `onError(error)` for a failed request (or a failing
 * `onSettled`); `onChange(jobs)` with every job listed (newest first) whenever one of them changed. */
export function jobBoard({ tbody, kinds = null, onSettled = () => {}, onError = () => {}, onChange = () => {}, interval = POLL_MS, wait = delay }) {
  let jobs = [];  // newest first, as GET /api/jobs lists them
  const following = new Set();
  const render = () => {
    renderJobs(tbody, jobs, cancel);
    onChange(jobs);
  };
  const update = (job) => {
    const at = jobs.findIndex((other) => other.id === job.id);
    if (at >= 0) jobs[at] = job;
    else jobs.unshift(job);
    render();
  };
  const follow = (job) => {
    update(job);
    if (!isActive(job) || following.has(job.id)) return;
    following.add(job.id);
    followJob(job.id, { onUpdate: update, interval, wait })
      .then((settled) => {
        announceSettled(settled);
        return onSettled(settled);
      })
      .catch(onError)
      .finally(() => following.delete(job.id));
  };
  async function cancel(id) {
    try {
      update(await postJSON(`/api/jobs/${encodeURIComponent(id)}/cancel`));
    } catch (error) {
      onError(error);
    }
  }
  return {
    async load() {
      const listed = await getJSON("/api/jobs");
      jobs = kinds ? listed.filter((job) => kinds.includes(job.kind)) : listed;
      render();
      for (const job of jobs) follow(job);
      return jobs;
    },
    async start(kind, params) {
      const job = await postJSON("/api/jobs", { kind, params });
      follow(job);
      return job;
    },
  };
}
