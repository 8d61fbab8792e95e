// What the Sentence page can run now, as the server says it (the page spec's `availability`, then
// GET /api/availability): pure helpers, no DOM. The server decides (app/services/availability.py); the page
// shows its reason and hint before submit, and polls while a job that will make something usable runs.

export const ACTIVE_POLL_MS = 2000;  // a probe set is being trained or a head fitted: follow its progress
export const IDLE_POLL_MS = 15000;  // otherwise: notice jobs started elsewhere (another tab, the first serve)

const USABLE = { available: true, reason: "", hint: "", job: null };

/** A method's entry ({available, reason, hint, job}); a method the answer does not list is usable. */
export function methodStatus(availability, name) {
  return (availability && availability.methods && availability.methods[name]) || USABLE;
}

/** The fitted-head target's entry. */
export function headStatus(availability) {
  return (availability && availability.targets && availability.targets.head) || USABLE;
}

/** Reason and hint as one line ('' when usable). */
export function statusText(status) {
  if (!status || status.available) return "";
  return [status.reason, status.hint].filter(Boolean).join(" ");
}

/** Every job the answer names (queued or running, each once). */
export function activeJobs(availability) {
  const entries = [...Object.values((availability && availability.methods) || {}), headStatus(availability)];
  const jobs = new Map();
  for (const entry of entries) if (entry.job) jobs.set(entry.job.id, entry.job);
  return [...jobs.values()];
}

/** Milliseconds until the next GET /api/availability. */
export function nextPollDelay(availability) {
  return activeJobs(availability).length ? ACTIVE_POLL_MS : IDLE_POLL_MS;
}

/** The method an example runs: the first of its methods that is usable now, else `current`. */
export function exampleMethod(example, availability, current) {
  const usable = (example.methods || []).find((name) => methodStatus(availability, name).available);
  return usable || current;
}

/** Whether the stored heads changed between two answers (the target picker then reloads GET /api/heads). */
export function headsChanged(before, after) {
  const count = (answer) => (answer && answer.counts ? answer.counts.heads : null);
  return count(before) !== count(after);
}

/** The target list with `heads` (GET /api/heads) as its "head" entry: replaced, added last, or dropped when
 * there are none; the other targets are kept as they are. */
export function withHeads(targets, heads) {
  const others = targets.filter((target) => target.kind !== "head");
  return heads.length ? [...others, { kind: "head", heads }] : others;
}
