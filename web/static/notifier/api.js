// Small helpers shared by the bell and the notifications page: JSON calls with the CSRF
// header, relative times, and a guard that keeps script out of links.

// The bell carries its own token, so inside a host page the host's own
// <meta name="csrf-token"> (Flask-WTF's, say) is never sent to the notifier by mistake.
const csrfToken = () =>
  document.querySelector("[data-notifier-csrf]")?.dataset.notifierCsrf ||
  document.querySelector('meta[name="csrf-token"]')?.content;

export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details; // for a 422: each bad field and why
  }

  // The message, and for a 422 each bad field and why ("url: only https ...").
  explain() {
    const fields = Object.entries(this.details || {}).map(([name, why]) => `${name}: ${why}`);
    return fields.length ? fields.join("; ") : this.message;
  }
}

// Calls the JSON API with the session cookie; writes carry the CSRF token.
export async function api(url, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "network_error", "The server did not answer.");
  }
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch (err) {
    payload = null;
  }
  if (!response.ok) {
    const error = (payload && payload.error) || {};
    throw new ApiError(
      response.status,
      error.code || "http_error",
      error.message || `The server answered ${response.status}.`,
      error.details || null,
    );
  }
  return payload;
}

const UNITS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });

// "3 min ago" for an ISO 8601 timestamp.
export function timeAgo(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((then - now) / 1000);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return "just now";
}

// A count as the server renders it: "1,234", or "1,000+" when the server stopped counting
// at its cap (exact === false); the same text as notifier_count() in the templates.
export function countText(count, exact = true) {
  return Number(count).toLocaleString("en-US") + (exact === false ? "+" : "");
}

// Refreshes every <time data-relative> element under root.
export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-relative]")) {
    el.textContent = timeAgo(el.getAttribute("datetime"));
    el.title = new Date(el.getAttribute("datetime")).toLocaleString();
  }
}

// The server stores only links that pass its one URL rule (notifier/validation.py); for
// display the browser needs just this: a link never runs script, whatever a row holds.
export function safeHref(url) {
  if (typeof url !== "string" || url.length === 0) return null;
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (err) {
    return null;
  }
}

// Creates an element with text content (never HTML) and attributes.
export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// A page's status line: the function it returns shows a message as text (never HTML) with
// a kind ("info", "error", ...) for the style; an empty message hides the line.
export function statusLine(status) {
  return (message, kind = "info") => {
    status.textContent = message;
    status.dataset.kind = kind;
    status.hidden = !message;
  };
}
