// The notifications page: filters that keep themselves in the URL, per-row actions, bulk
// mark-all-read, delete with confirmation and the alert resolution dialog.
import { api, refreshTimes } from "./api.js";

const page = document.querySelector("[data-notifier-page]");

if (page) {
  const apiBase = page.dataset.apiBase;
  const status = page.querySelector("[data-page-status]");
  const deleteDialog = document.getElementById("nt-confirm-delete");
  const resolveDialog = document.getElementById("nt-resolve");

  const say = (message, kind = "info") => {
    status.textContent = message;
    status.dataset.kind = kind;
    status.hidden = !message;
  };

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

  resolveDialog?.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const notes = resolveDialog.querySelector("textarea").value.trim();
    const error = resolveDialog.querySelector("[data-dialog-error]");
    if (!notes) {
      error.textContent = "Resolution notes are required: say what was done.";
      error.hidden = false;
      return;
    }
    const submit = resolveDialog.querySelector("[data-submit]");
    submit.disabled = true;
    submit.textContent = "Resolving…";
    try {
      await api(`${apiBase}/alerts/${resolveDialog.dataset.id}/resolve`, {
        method: "PUT",
        body: { resolution_notes: notes },
      });
      resolveDialog.close("resolved");
      window.location.reload();
    } catch (err) {
      error.textContent = `That did not work: ${err.message}`;
      error.hidden = false;
      submit.disabled = false;
      submit.textContent = "Resolve";
    }
  });

  for (const dialog of [deleteDialog, resolveDialog]) {
    dialog?.querySelector("[data-cancel]")?.addEventListener("click", () => dialog.close("cancel"));
  }

  refreshTimes(page);
  setInterval(() => refreshTimes(page), 30000);
}
