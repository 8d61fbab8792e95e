// How far a running job is and how long it still needs, in words (pure: no DOM, no clock of its own).
// The server's job JSON carries `eta_s` (elapsed x (1 - p) / p since the job started); when it does not, the
// same estimate is made here from `started_at` (else `created_at`), `updated_at` and `progress`.

/** Seconds the job still needs at its pace so far, or null (not running, no progress yet, no times). */
export function secondsLeft(job) {
  if (!job || job.status !== "running") return null;
  if (typeof job.eta_s === "number") return Math.max(job.eta_s, 0);
  const progress = Math.min(Number(job.progress) || 0, 1);
  const start = Date.parse(job.started_at || job.created_at);
  const now = Date.parse(job.updated_at);
  if (!(progress > 0) || Number.isNaN(start) || Number.isNaN(now)) return null;
  const elapsed = Math.max((now - start) / 1000, 0);
  return (elapsed * (1 - progress)) / progress;
}

/** "about 2 min left", as a person would round it ("" without an estimate). */
export function etaText(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  if (seconds < 10) return "a few seconds left";
  if (seconds < 50) return `about ${Math.round(seconds / 10) * 10} s left`;
  if (seconds < 90) return "about 1 min left";
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min left`;
  return `about ${(seconds / 3600).toFixed(1)} h left`;
}

/** "queued", or "42 %, about 1 min left" for a running job. */
export function progressText(job) {
  if (job.status === "queued") return "queued";
  const parts = [`${Math.floor((Number(job.progress) || 0) * 100)} %`, etaText(secondsLeft(job))];
  return parts.filter(Boolean).join(", ");
}
