// The admin token (for starting and cancelling jobs on a shared server), kept for this browser tab only.

const KEY = "bertscope-admin-token";

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

/** ``options`` with an Authorization header added when an admin token was typed in this tab. */
export function withAdmin(options = {}, store = storage()) {
  const token = store ? store.getItem(KEY) : null;
  if (!token) return options;
  return { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${token}` } };
}

/** Wire the token field of the top bar (present only when the server asks for a token). */
export function setupAdminToken(store = storage()) {
  const input = document.getElementById("admin-token");
  if (!input || !store) return;
  input.value = store.getItem(KEY) || "";
  input.addEventListener("input", () => {
    if (input.value) store.setItem(KEY, input.value);
    else store.removeItem(KEY);
  });
}
