// The notification settings page: the form becomes one preferences document, saved with
// PUT through the JSON API (its rules, its 422s). Text goes in with textContent only.
import { api, statusLine } from "./api.js";

const page = document.querySelector("[data-settings-page]");

if (page) {
  const form = page.querySelector("form[data-settings-form]");
  const status = page.querySelector("[data-page-status]");
  const windows = page.querySelector("[data-windows]");
  const template = page.querySelector("template[data-window-template]");

  const say = statusLine(status);

  page.querySelector("[data-add-window]").addEventListener("click", () => {
    windows.append(template.content.cloneNode(true));
  });
  windows.addEventListener("click", (event) => {
    const remove = event.target.closest("[data-remove-window]");
    if (remove) remove.closest("[data-window]").remove();
  });

  const documentOf = () => {
    const rules = { in_app: {}, email: {} };
    for (const row of form.querySelectorAll("tr[data-category]")) {
      for (const cell of row.querySelectorAll("td[data-channel]")) {
        const level = cell.querySelector("[data-min-level]").value;
        rules[cell.dataset.channel][row.dataset.category] = {
          mode: cell.querySelector("[data-mode]").value,
          min_level: level || null,
        };
      }
    }
    const quiet = [...windows.querySelectorAll("[data-window]")].map((item) => ({
      days: [...item.querySelectorAll("[data-day]:checked")].map((box) => Number(box.value)),
      start: item.querySelector("[data-start]").value,
      end: item.querySelector("[data-end]").value,
    }));
    return {
      channels: {
        in_app: form.querySelector('[data-switch="in_app"]').checked,
        email: form.querySelector('[data-switch="email"]').checked,
      },
      rules,
      time_zone: form.querySelector("[data-time-zone]").value,
      quiet_hours: quiet,
      digest: {
        frequency: form.querySelector("[data-digest-frequency]").value,
        hour: Number(form.querySelector("[data-digest-hour]").value),
      },
    };
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const save = form.querySelector("[data-save]");
    save.disabled = true;
    try {
      await api(page.dataset.preferencesApi, { method: "PUT", body: documentOf() });
      say("Settings saved.");
    } catch (err) {
      say(`Not saved: ${err.explain ? err.explain() : err.message}`, "error");
    } finally {
      save.disabled = false;
    }
  });
  page.dataset.ready = "true"; // the form works from here on (tests wait for it)
}
