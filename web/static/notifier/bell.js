// The header bell: unread badge, dropdown of the newest unread notifications. Live through
// the server's event stream when it works; otherwise polling that pauses while the tab is
// hidden, backs off on errors and says when the connection is lost.
import { api, countText, el, refreshTimes, safeHref, timeAgo } from "./api.js";

const MAX_BACKOFF_MS = 5 * 60 * 1000;
const FAILURES_BEFORE_OFFLINE = 3;
// Events that come together (a storm of failures) refresh the dropdown once.
const LIVE_REFRESH_MS = 50;
// A stream that was refused (503: the server is full; or not there) is tried again after this.
const STREAM_RETRY_MS = 5 * 60 * 1000;

export function badgeText(count) {
  return count > 99 ? "99+" : String(count); // a capped count (1,000+) is past 99 too
}

class Bell {
  constructor(root) {
    this.root = root;
    this.apiBase = root.dataset.apiBase;
    this.interval = Math.max(100, Number(root.dataset.pollInterval) || 60000);
    this.button = root.querySelector("[data-bell-button]");
    this.badge = root.querySelector("[data-badge]");
    this.panel = root.querySelector("[data-panel]");
    this.list = root.querySelector("[data-list]");
    this.empty = root.querySelector("[data-empty]");
    this.offline = root.querySelectorAll("[data-offline]");
    this.signedOut = root.querySelector("[data-signed-out]");
    this.announce = root.querySelector("[data-announce]");
    this.markAll = root.querySelector("[data-mark-all]");
    this.failures = 0;
    this.timer = null;
    this.sequence = 0; // only the newest poll's answer is rendered
    this.count = null;
    this.streamUrl = root.dataset.streamUrl;
    this.source = null; // the open EventSource, when live
    this.live = false; // true while the stream is connected: no periodic poll then
    this.lastEventId = null;
    this.liveTimer = null;
    this.streamRetry = null;
    this.bind();
    this.poll();
    this.connect();
  }

  // Opens the event stream; resumes from the last event seen (a new EventSource cannot send
  // Last-Event-ID itself, so it goes in ?since=; the browser's own reconnects send the header).
  connect() {
    if (!this.streamUrl || typeof EventSource === "undefined" || this.source || document.hidden) {
      return;
    }
    const url = this.lastEventId
      ? `${this.streamUrl}?since=${encodeURIComponent(this.lastEventId)}`
      : this.streamUrl;
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    source.addEventListener("open", () => {
      this.live = true;
      this.failures = 0;
      this.setOffline(false);
      clearTimeout(this.timer); // the stream replaces the poll
    });
    for (const kind of ["notification", "alert", "unread"]) {
      source.addEventListener(kind, (event) => this.onLive(kind, event));
    }
    source.addEventListener("error", () => {
      // CONNECTING: the browser retries by itself (with Last-Event-ID); poll meanwhile.
      // CLOSED: refused (401, 503, not a stream); poll, and try the stream again later.
      const wasLive = this.live;
      this.live = false;
      if (source.readyState === EventSource.CLOSED) {
        this.disconnect();
        clearTimeout(this.streamRetry);
        this.streamRetry = setTimeout(() => this.connect(), STREAM_RETRY_MS);
      }
      if (wasLive) this.schedule(this.interval);
    });
  }

  disconnect() {
    if (this.source) this.source.close();
    this.source = null;
    this.live = false;
  }

  onLive(kind, event) {
    if (event.lastEventId) this.lastEventId = event.lastEventId;
    let data = null;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    const moved = kind === "unread" && data.unread_count !== this.count;
    if (kind === "unread") this.renderCount(data.unread_count, data.unread_count_exact);
    document.dispatchEvent(new CustomEvent("notifier:live", { detail: { kind, data } }));
    // The dropdown shows notifications only; a reconnect repeats the count unchanged.
    if (kind === "alert" || (kind === "unread" && !moved)) return;
    clearTimeout(this.liveTimer);
    this.liveTimer = setTimeout(() => this.poll(), LIVE_REFRESH_MS);
  }

  bind() {
    this.button.addEventListener("click", () => this.toggle());
    this.button.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        this.open();
        this.focusItem(0);
      }
    });
    this.panel.addEventListener("keydown", (event) => this.onPanelKey(event));
    document.addEventListener("click", (event) => {
      if (this.isOpen() && !this.root.contains(event.target)) this.close(false);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.isOpen()) this.close(true);
    });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        clearTimeout(this.timer);
        this.disconnect(); // a hidden tab holds no server thread; it resumes from its last id
      } else {
        this.poll();
        this.connect();
      }
    });
    document.addEventListener("notifier:changed", (event) => {
      if (event.detail?.from !== "bell") this.poll();
    });
    this.markAll.addEventListener("click", () => this.run(this.markAll, () =>
      api(`${this.apiBase}/mark-all-read`, { method: "PUT" })));
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("[data-mark-read]");
      if (button) {
        this.run(button, () => api(`${this.apiBase}/${button.dataset.markRead}/read`, { method: "PUT" }));
      }
    });
  }

  isOpen() {
    return !this.panel.hidden;
  }

  toggle() {
    if (this.isOpen()) this.close(false);
    else this.open();
  }

  open() {
    this.panel.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    refreshTimes(this.panel);
  }

  close(returnFocus) {
    this.panel.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    if (returnFocus) this.button.focus();
  }

  focusables() {
    return [...this.panel.querySelectorAll("a[href], button:not([disabled])")];
  }

  focusItem(index) {
    const items = this.focusables();
    if (items.length === 0) return;
    items[(index + items.length) % items.length].focus();
  }

  onPanelKey(event) {
    const items = this.focusables();
    const current = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown") {
      event.preventDefault();
      this.focusItem(current + 1);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      this.focusItem(current - 1);
    } else if (event.key === "Home") {
      event.preventDefault();
      this.focusItem(0);
    } else if (event.key === "End") {
      event.preventDefault();
      this.focusItem(items.length - 1);
    } else if (event.key === "Tab" && !event.shiftKey && current === items.length - 1) {
      this.close(false);
    }
  }

  async run(control, action) {
    const hadFocus = this.panel.contains(document.activeElement);
    control.disabled = true;
    try {
      await action();
      await this.poll();
      document.dispatchEvent(new CustomEvent("notifier:changed", { detail: { from: "bell" } }));
      // The list was re-rendered: keep keyboard users inside the open dropdown.
      if (hadFocus && this.isOpen()) this.focusItem(0);
    } catch (err) {
      this.showError(err.message);
    } finally {
      control.disabled = false;
    }
  }

  schedule(delay) {
    clearTimeout(this.timer);
    if (!document.hidden) this.timer = setTimeout(() => this.poll(), delay);
  }

  async poll() {
    clearTimeout(this.timer);
    if (document.hidden) return;
    const sequence = ++this.sequence;
    try {
      const data = await api(`${this.apiBase}/recent?limit=5`);
      if (sequence !== this.sequence) return; // a newer poll started; its answer wins
      this.failures = 0;
      this.setOffline(false);
      this.render(data);
      if (!this.live) this.schedule(this.interval);
    } catch (err) {
      if (sequence !== this.sequence) return;
      if (err.status === 401) {
        // Signed out (or a host user who is not a notifier admin): say so quietly and stop
        // polling; never navigate away from the page the bell sits in.
        this.disconnect();
        this.setSignedOut();
        return;
      }
      this.failures += 1;
      if (this.failures >= FAILURES_BEFORE_OFFLINE) this.setOffline(true);
      const cap = Math.min(this.interval * 16, MAX_BACKOFF_MS);
      this.schedule(Math.min(this.interval * 2 ** this.failures, cap));
    }
  }

  setSignedOut() {
    this.streamUrl = null; // until the page is reloaded after signing in
    clearTimeout(this.streamRetry);
    this.root.classList.add("is-signed-out");
    this.button.hidden = true;
    this.panel.hidden = true;
    this.setOffline(false);
    this.signedOut.hidden = false;
  }

  setOffline(offline) {
    this.root.classList.toggle("is-offline", offline);
    for (const node of this.offline) node.hidden = !offline;
  }

  showError(message) {
    this.announce.textContent = message;
  }

  // exact === false: the server stopped counting at its cap; say "1,000+", never a number
  // that looks exact.
  renderCount(count, exact = true) {
    const text = countText(count, exact);
    this.badge.textContent = badgeText(count);
    this.badge.hidden = count === 0;
    this.button.setAttribute(
      "aria-label",
      count === 0 ? "Notifications, none unread" : `Notifications, ${text} unread`,
    );
    if (this.count !== null && this.count !== count) {
      this.announce.textContent = `${text} unread notification${count === 1 ? "" : "s"}`;
    }
    this.count = count;
    this.markAll.disabled = count === 0;
  }

  render({ items, unread_count: count, unread_count_exact: exact }) {
    this.renderCount(count, exact);
    // The same rows again: keep the list (and the keyboard focus inside it) as it is.
    const key = items.map((item) => `${item.id}:${item.is_read}`).join(",");
    if (key === this.listKey) return;
    this.listKey = key;
    this.list.replaceChildren(...items.map((item) => this.renderItem(item)));
    this.empty.hidden = items.length > 0;
  }

  renderItem(item) {
    const li = el("li", { class: `nt-item nt-prio-${item.priority}`, "data-id": item.id });
    const body = el("div", { class: "nt-item__body" });
    body.append(
      el("span", { class: "nt-item__priority" }, item.priority),
      el("span", { class: "nt-item__title" }, item.title),
      el("time", { class: "nt-item__time", datetime: item.created_at, "data-relative": "" },
        timeAgo(item.created_at)),
    );
    const actions = el("div", { class: "nt-item__actions" });
    const href = safeHref(item.action_url);
    if (href) {
      actions.append(el("a", { href, class: "nt-link", rel: "noopener noreferrer" }, "Open"));
    }
    // Who answers for it and its runbook (owner= / runbook= on the task's decorator).
    const meta = item.notification_metadata || {};
    if (typeof meta.owner === "string" && meta.owner) {
      body.append(el("span", { class: "nt-item__owner", "data-owner": "" }, meta.owner));
    }
    const runbook = typeof meta.runbook === "string" ? safeHref(meta.runbook) : null;
    if (runbook) {
      actions.append(el("a", { href: runbook, class: "nt-link", rel: "noopener noreferrer", "data-runbook": "" }, "Runbook"));
    }
    actions.append(el("button", {
      type: "button",
      class: "nt-link",
      "data-mark-read": item.id,
      "aria-label": `Mark "${item.title}" as read`,
    }, "Mark as read"));
    li.append(body, actions);
    return li;
  }
}

for (const root of document.querySelectorAll("[data-notifier-bell]")) {
  new Bell(root);
}
