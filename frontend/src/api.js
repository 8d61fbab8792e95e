// The one client of the JSON API: every request of every page goes through `request`, which adds the admin
// token and turns every failure into an ApiError whose message a person can act on.

import { withAdmin } from "./admin.js";

/** A failed request: `status` is the HTTP status (0 when the server was not reached), `code` the server's. */
export class ApiError extends Error {
  constructor(message, status = 0, code = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** The message of an error answer: the server's `{"error": {"code", "message"}}`, else one naming the status. */
export function errorMessage(status, body) {
  if (body && body.error && body.error.message) return body.error.message;
  if (status === 413) return "The request is too large.";
  return `The server answered ${status}.`;
}

/** The parsed JSON answer of `url`; `payload` (when given) is sent as a JSON body, `form` (a FormData) as a
 * multipart body. Throws ApiError. */
export async function request(url, { method = "GET", payload, form } = {}) {
  const options = { method, headers: { Accept: "application/json" } };
  if (form !== undefined) {
    options.body = form;  // the browser sets the multipart Content-Type with its boundary
  } else if (payload !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(payload);
  }
  let response;
  try {
    response = await fetch(url, withAdmin(options));
  } catch (error) {
    throw new ApiError(`Cannot reach the server (${error.message}).`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(errorMessage(response.status, body), response.status, body?.error?.code ?? null);
  return body;
}

/** GET `url` as JSON. */
export const getJSON = (url) => request(url);

/** POST `payload` (default: no body) to `url`, answer as JSON. */
export const postJSON = (url, payload) => request(url, { method: "POST", payload });

/** POST /api/analyses: the stored analysis (its `id` and `url`), without the result itself. */
export const postAnalysis = (payload) => postJSON("/api/analyses?include_result=false", payload);

/** Uploaded datasets (newest first), optionally of one kind. */
export const listDatasets = (kind = null) => getJSON(kind ? `/api/datasets?kind=${encodeURIComponent(kind)}` : "/api/datasets");

/** POST a file as a dataset (validated by the server; the same file again answers the stored dataset).
 * `fields`: optional name, kind, text_column, label_column. */
export function uploadDataset(file, fields = {}) {
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [key, value] of Object.entries(fields)) if (value) form.append(key, value);
  return request("/api/datasets", { method: "POST", form });
}

/** DELETE a dataset. */
export const deleteDataset = (id) => request(`/api/datasets/${encodeURIComponent(id)}`, { method: "DELETE" });
