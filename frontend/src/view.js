// View state of a result: the values of its controls, kept in the URL query so a link reopens it.

/** Values for each control: the URL's value when present, else the control's default. */
export function initialView(controls, fromUrl = {}) {
  const view = {};
  for (const control of controls) {
    const value = fromUrl[control.name];
    view[control.name] = value === undefined || value === null ? String(control.value ?? "") : String(value);
  }
  return view;
}

/** Query string for a view (empty values left out), stable key order. */
export function viewToQuery(view) {
  const params = new URLSearchParams();
  for (const key of Object.keys(view).sort()) {
    if (view[key] !== "" && view[key] !== undefined && view[key] !== null) params.set(key, view[key]);
  }
  const query = params.toString();
  return query ? `?${query}` : "";
}

/** Absolute permalink of an analysis, including the current view. */
export function permalink(origin, url, view) {
  return `${origin.replace(/\/$/, "")}${url}${viewToQuery(view)}`;
}

/** Parse a query string into a plain object. */
export function queryToView(search) {
  const view = {};
  for (const [key, value] of new URLSearchParams(search)) view[key] = value;
  return view;
}
