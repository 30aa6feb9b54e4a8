// The notifications page: filters that keep themselves in the URL, per-row actions, bulk
// mark-all-read, delete with confirmation, the alert resolution and snooze dialogs, and
// acknowledge.
import { api, countText, refreshTimes, statusLine } from "./api.js";

const page = document.querySelector("[data-notifier-page]");

if (page) {
  const apiBase = page.dataset.apiBase;
  const status = page.querySelector("[data-page-status]");
  const deleteDialog = document.getElementById("nt-confirm-delete");
  const resolveDialog = document.getElementById("nt-resolve");
  const snoozeDialog = document.getElementById("nt-snooze");

  const say = statusLine(status);

  // Runs one API call with a loading state, then reloads so the server re-renders the lists
  // (and the statistics) with the filters that are already in the URL.
  const perform = async (control, busyText, call) => {
    const label = control.textContent;
    control.disabled = true;
    control.textContent = busyText;
    say(busyText, "loading");
    try {
      await call();
      document.dispatchEvent(new CustomEvent("notifier:changed"));
      window.location.reload();
    } catch (err) {
      say(`That did not work: ${err.message}`, "error");
      control.disabled = false;
      control.textContent = label;
    }
  };

  for (const form of page.querySelectorAll("form[data-autosubmit]")) {
    form.addEventListener("change", () => form.requestSubmit());
  }

  page.addEventListener("click", (event) => {
    const control = event.target.closest("[data-action]");
    if (!control) return;
    const { action, id } = control.dataset;
    if (action === "mark-read") {
      perform(control, "Marking…", () => api(`${apiBase}/${id}/read`, { method: "PUT" }));
    } else if (action === "mark-all-read") {
      perform(control, "Marking all…", () => api(`${apiBase}/mark-all-read`, { method: "PUT" }));
    } else if (action === "delete") {
      deleteDialog.querySelector("[data-dialog-title]").textContent = control.dataset.title;
      deleteDialog.dataset.id = id;
      deleteDialog.returnValue = "";
      deleteDialog.showModal();
    } else if (action === "acknowledge" || action === "unacknowledge") {
      perform(control, action === "acknowledge" ? "Acknowledging…" : "Withdrawing…", () =>
        api(`${apiBase}/alerts/${id}/acknowledge`, {
          method: action === "acknowledge" ? "PUT" : "DELETE",
        }));
    } else if (action === "retry") {
      // Disabled at once by perform(): a double click sends one request.
      perform(control, "Retrying…", () =>
        api(`${apiBase}/${control.dataset.path}`, { method: "POST" }));
    } else if (action === "unsnooze") {
      perform(control, "Unsnoozing…", () =>
        api(`${apiBase}/alerts/${id}/snooze`, { method: "DELETE" }));
    } else if (action === "snooze") {
      snoozeDialog.querySelector("[data-dialog-title]").textContent = control.dataset.title;
      snoozeDialog.dataset.id = id;
      snoozeDialog.querySelector("[data-dialog-error]").hidden = true;
      snoozeDialog.showModal();
    } else if (action === "resolve") {
      resolveDialog.querySelector("[data-dialog-title]").textContent = control.dataset.title;
      resolveDialog.dataset.id = id;
      resolveDialog.querySelector("textarea").value = "";
      resolveDialog.querySelector("[data-dialog-error]").hidden = true;
      resolveDialog.showModal();
    }
  });

  deleteDialog?.addEventListener("close", () => {
    if (deleteDialog.returnValue !== "confirm") return;
    const control = page.querySelector(`[data-action="delete"][data-id="${deleteDialog.dataset.id}"]`);
    perform(control, "Deleting…", () =>
      api(`${apiBase}/${deleteDialog.dataset.id}`, { method: "DELETE" }));
  });

  // A dialog's form: ``read`` gives the request body or throws the sentence to show; the
  // call then runs with the submit button busy, and the page reloads when it worked.
  const onDialogSubmit = (dialog, busyText, read, path) => {
    dialog?.querySelector("form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = dialog.querySelector("[data-dialog-error]");
      const submit = dialog.querySelector("[data-submit]");
      const label = submit.textContent;
      const fail = (message) => {
        error.textContent = message;
        error.hidden = false;
        submit.disabled = false;
        submit.textContent = label;
      };
      let body;
      try {
        body = read(event.target);
      } catch (problem) {
        fail(problem.message);
        return;
      }
      submit.disabled = true;
      submit.textContent = busyText;
      try {
        await api(`${apiBase}/alerts/${dialog.dataset.id}/${path}`, { method: "PUT", body });
        dialog.close("done");
        window.location.reload();
      } catch (err) {
        fail(`That did not work: ${err.explain ? err.explain() : err.message}`);
      }
    });
  };

  onDialogSubmit(resolveDialog, "Resolving…", (form) => {
    const notes = form.querySelector("textarea").value.trim();
    if (!notes) throw new Error("Resolution notes are required: say what was done.");
    return { resolution_notes: notes };
  }, "resolve");

  // The snooze's end: now plus a preset, or a time picked in the browser's zone; the server
  // says when it is past or more than 30 days away.
  onDialogSubmit(snoozeDialog, "Snoozing…", (form) => {
    const choice = form.querySelector('input[name="duration"]:checked').value;
    if (choice !== "custom") {
      return { until: new Date(Date.now() + Number(choice) * 1000).toISOString() };
    }
    const picked = form.querySelector("[data-custom-until]").value;
    const moment = picked ? new Date(picked) : null; // datetime-local: the browser's zone
    if (!moment || Number.isNaN(moment.getTime())) {
      throw new Error("Pick the date and time the alert should come back.");
    }
    return { until: moment.toISOString() };
  }, "snooze");
  snoozeDialog?.querySelector("[data-custom-until]").addEventListener("input", () => {
    snoozeDialog.querySelector('input[name="duration"][value="custom"]').checked = true;
  });

  for (const dialog of [deleteDialog, resolveDialog, snoozeDialog]) {
    dialog?.querySelector("[data-cancel]")?.addEventListener("click", () => dialog.close("cancel"));
  }

  // Live events (the bell's stream): the unread card follows at once; new rows wait for the
  // reader to ask, so nothing moves under their pointer.
  const live = page.querySelector("[data-live]");
  const unreadCard = page.querySelector('[data-stat="unread"] .nt-card__value');
  const seen = new Set(); // a reconnect may replay a change already counted
  // What the server rendered is as of this moment (its clock, as the events' timestamps).
  const renderedAt = Date.parse(page.dataset.renderedAt);
  const shown = (kind, data) => {
    const changed = Math.max(
      ...[data.created_at, data.last_occurred_at, data.resolved_at].map((t) => Date.parse(t) || 0),
    );
    if (changed <= renderedAt) return true;
    if (kind === "notification") {
      return page.querySelector(`[data-notification-id="${Number(data.id)}"]`) !== null;
    }
    const row = page.querySelector(`[data-alert-id="${Number(data.id)}"]`);
    return row !== null && row.classList.contains("is-read") === data.is_resolved &&
      row.querySelector("[data-occurrences]")?.textContent.startsWith(`${data.occurrence_count} `);
  };
  document.addEventListener("notifier:live", ({ detail: { kind, data } }) => {
    if (kind === "unread") {
      if (unreadCard) {
        unreadCard.textContent = countText(data.unread_count, data.unread_count_exact);
      }
      return;
    }
    const key = kind === "notification" ? `n${data.id}` :
      `a${data.id}:${data.occurrence_count}:${data.is_resolved}`;
    if (seen.has(key) || shown(kind, data)) return;
    seen.add(key);
    live.querySelector("[data-live-text]").textContent =
      `${seen.size} new update${seen.size === 1 ? "" : "s"} since this page loaded.`;
    live.hidden = false;
  });
  live?.querySelector("[data-live-reload]").addEventListener("click", () => window.location.reload());

  refreshTimes(page);
  setInterval(() => refreshTimes(page), 30000);
}
