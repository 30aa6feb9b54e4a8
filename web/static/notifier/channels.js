// The Channels page: add an endpoint (its signing secret shown once, with a copy button),
// edit its name, URL and filter, send a test event, rotate the secret, enable or disable,
// delete with confirmation.
// Every action is a call to the JSON API; text goes in with textContent only.
import { api, el, refreshTimes } from "./api.js";

const page = document.querySelector("[data-channels-page]");

if (page) {
  const base = page.dataset.endpointsApi;
  const status = page.querySelector("[data-page-status]");
  const secretDialog = document.getElementById("nt-secret");
  const confirmDialog = document.getElementById("nt-confirm");
  const form = page.querySelector("form[data-create-endpoint]");
  const editDialog = document.getElementById("nt-edit");
  const editForm = editDialog.querySelector("form[data-edit-endpoint]");
  let editing = null; // the id of the endpoint the edit dialog is open for

  // The filter fields both forms share, as the API takes them; a message when one is wrong.
  const filterOf = (data) => {
    const stores = data.get("store_ids").split(",").map((s) => s.trim()).filter(Boolean);
    if (stores.some((s) => !/^\d+$/.test(s))) {
      return { problem: "Store ids are whole numbers separated by commas, e.g. 5, 12." };
    }
    return {
      body: {
        event_types: data.getAll("event_types"),
        min_priority: data.get("min_priority") || null,
        min_severity: data.get("min_severity") || null,
        store_ids: stores.map(Number),
      },
    };
  };

  const showError = (target, message) => {
    const error = target.querySelector("[data-form-error]");
    error.textContent = message;
    error.hidden = !message;
  };

  const openEditor = (row) => {
    const saved = JSON.parse(row.dataset.edit);
    editing = row.dataset.endpointId;
    editForm.reset();
    editDialog.querySelector("[data-dialog-title]").textContent = saved.name;
    editForm.elements.name.value = saved.name;
    // An email channel has no URL of its own to change; only PagerDuty has a routing key.
    editForm.querySelector("[data-url-field]").hidden = row.dataset.endpointChannel === "email";
    editForm.querySelector("[data-routing-key-field]").hidden =
      row.dataset.endpointChannel !== "pagerduty";
    for (const box of editForm.querySelectorAll("input[name=event_types]")) {
      box.checked = saved.event_types.includes(box.value);
    }
    editForm.elements.min_priority.value = saved.min_priority;
    editForm.elements.min_severity.value = saved.min_severity;
    editForm.elements.store_ids.value = saved.store_ids.join(", ");
    showError(editForm, "");
    editDialog.showModal();
  };

  editDialog.querySelector("[data-cancel]").addEventListener("click", () => editDialog.close());

  editForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(editForm);
    const filter = filterOf(data);
    if (filter.problem) {
      showError(editForm, filter.problem);
      return;
    }
    const body = { name: data.get("name").trim(), ...filter.body };
    const url = (data.get("url") || "").trim();
    if (url) body.url = url; // empty: the saved URL stays
    const key = (data.get("routing_key") || "").trim();
    if (key) body.routing_key = key; // empty: the saved routing key stays
    const submit = editForm.querySelector("[data-submit]");
    submit.disabled = true;
    submit.textContent = "Saving…";
    try {
      await api(`${base}/${editing}`, { method: "PATCH", body });
      editDialog.close();
      window.location.reload();
    } catch (err) {
      showError(editForm, `That did not work: ${err.explain ? err.explain() : err.message}`);
    } finally {
      submit.disabled = false;
      submit.textContent = "Save changes";
    }
  });

  const say = (message, kind = "info", link = null) => {
    status.replaceChildren(document.createTextNode(message));
    if (link) status.append(" ", el("a", { href: link.href }, link.text));
    status.dataset.kind = kind;
    status.hidden = !message;
  };

  // The secret stays in the page only while its dialog is open; closing it reloads the list.
  const showSecret = (name, secret) => {
    secretDialog.querySelector("[data-dialog-title]").textContent = name;
    secretDialog.querySelector("[data-secret]").textContent = secret;
    secretDialog.querySelector("[data-copied]").textContent = "";
    secretDialog.showModal();
  };

  secretDialog.addEventListener("close", () => {
    secretDialog.querySelector("[data-secret]").textContent = "";
    window.location.reload();
  });

  secretDialog.querySelector("[data-copy]").addEventListener("click", async () => {
    const code = secretDialog.querySelector("[data-secret]");
    const said = secretDialog.querySelector("[data-copied]");
    try {
      await navigator.clipboard.writeText(code.textContent);
      said.textContent = "Copied to the clipboard.";
    } catch (err) {
      // No clipboard permission (or not a secure context): select it for Ctrl+C instead.
      window.getSelection().selectAllChildren(code);
      said.textContent = "Selected: press Ctrl+C (or Cmd+C) to copy it.";
    }
  });

  // A confirmation in our own dialog (never a native confirm()).
  const confirmThen = (heading, text, label, action) => {
    confirmDialog.querySelector("[data-dialog-heading]").textContent = heading;
    confirmDialog.querySelector("[data-dialog-text]").textContent = text;
    confirmDialog.querySelector("[data-confirm-label]").textContent = label;
    confirmDialog.returnValue = "";
    confirmDialog.onclose = () => {
      if (confirmDialog.returnValue === "confirm") action();
    };
    confirmDialog.showModal();
  };
  confirmDialog.querySelector("[data-cancel]").addEventListener("click", () => confirmDialog.close("cancel"));

  const busy = async (control, busyText, call) => {
    const label = control.textContent;
    control.disabled = true;
    control.textContent = busyText;
    try {
      return await call();
    } catch (err) {
      say(`That did not work: ${err.explain ? err.explain() : err.message}`, "error");
      return undefined;
    } finally {
      control.disabled = false;
      control.textContent = label;
    }
  };

  page.addEventListener("click", (event) => {
    const control = event.target.closest("[data-action]");
    if (!control) return;
    const row = control.closest("[data-endpoint-id]");
    const { endpointId: id, endpointName: name } = row.dataset;
    const url = `${base}/${id}`;
    const action = control.dataset.action;
    if (action === "edit") {
      openEditor(row);
    } else if (action === "test") {
      busy(control, "Sending…", async () => {
        const queued = await api(`${url}/test`, { method: "POST" });
        if (!queued) return;
        const log = new URL(page.dataset.logUrl, window.location.href);
        log.searchParams.set("endpoint_id", id);
        say(
          `Test event queued for “${name}” (${queued.queued} ${queued.queued === 1 ? "delivery" : "deliveries"}); the dispatcher sends it on its next run.`,
          "info",
          { href: log.href, text: "See it in the delivery log" },
        );
      });
    } else if (action === "rotate") {
      confirmThen(
        `Rotate the secret of “${name}”?`,
        "A new signing secret is made now. The old one keeps signing too for 24 hours, so receivers can switch over without losing a delivery.",
        "Rotate",
        () =>
          busy(control, "Rotating…", async () => {
            const rotated = await api(`${url}/rotate-secret`, { method: "POST" });
            if (rotated) showSecret(name, rotated.secret);
          }),
      );
    } else if (action === "enable" || action === "disable") {
      busy(control, action === "enable" ? "Enabling…" : "Disabling…", async () => {
        await api(`${url}/${action}`, { method: "PUT" });
        window.location.reload();
      });
    } else if (action === "delete") {
      confirmThen(
        `Delete “${name}”?`,
        "The channel and its delivery log are deleted; deliveries still waiting are dropped. This cannot be undone.",
        "Delete",
        () =>
          busy(control, "Deleting…", async () => {
            await api(url, { method: "DELETE" });
            window.location.reload();
          }),
      );
    }
  });

  // The fields each kind of channel asks for.
  const kindChanged = () => {
    const kind = form.elements.channel.value;
    form.querySelector("[data-routing-key-field]").hidden = kind !== "pagerduty";
    form.elements.url.required = kind !== "pagerduty";
    form.elements.url.placeholder = {
      pagerduty: "https://events.pagerduty.com/v2/enqueue (the default)",
      apprise: "ntfys://ntfy.example.com/ops, tgram://bot-token/chat-id, discord://…",
    }[kind] || "https://hooks.example.com/notifier";
  };
  form.elements.channel.addEventListener("change", kindChanged);
  form.addEventListener("reset", () => setTimeout(kindChanged));
  kindChanged();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const filter = filterOf(data);
    if (filter.problem) {
      showError(form, filter.problem);
      return;
    }
    const body = {
      name: data.get("name").trim(),
      channel: data.get("channel"),
      ...filter.body,
    };
    const url = data.get("url").trim();
    if (url) body.url = url; // PagerDuty's may stay empty: its Events API v2
    if (body.channel === "pagerduty") body.routing_key = data.get("routing_key").trim();
    showError(form, "");
    const submit = form.querySelector("[data-submit]");
    submit.disabled = true;
    submit.textContent = "Adding…";
    try {
      const created = await api(base, { method: "POST", body });
      form.reset();
      if (created.secret) showSecret(created.name, created.secret);
      else window.location.reload();
    } catch (err) {
      showError(form, `That did not work: ${err.explain ? err.explain() : err.message}`);
    } finally {
      submit.disabled = false;
      submit.textContent = "Add channel";
    }
  });

  refreshTimes(page);
  setInterval(() => refreshTimes(page), 30000);
  page.dataset.ready = "true"; // the buttons work from here on (tests wait for it)
}
