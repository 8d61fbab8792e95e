// Thin client of the JSON API; every failure becomes an Error whose message a person can act on.

/** The message of an API error body, or a fallback naming the HTTP status. */
export function errorMessage(status, body) {
  if (body && body.error && body.error.message) return body.error.message;
  if (status === 413) return "The request is too large.";
  return `The server answered ${status}.`;
}

async function request(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new Error(`Cannot reach the server (${error.message}).`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = new Error(errorMessage(response.status, body));
    error.status = response.status;
    throw error;
  }
  return body;
}

/** POST /api/analyses. */
export function postAnalysis(payload) {
  return request("/api/analyses?include_result=false", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
}

/** GET the figures of one view (``figureUrl`` is an analysis or a comparison figure route). */
export function getFigure(figureUrl, query) {
  return request(`${figureUrl}${query}`);
}
