// The Escalation page: add a policy, load one into the form to change it, enable or
// disable it, delete it. Every action is a call to the JSON API; text goes in with
// textContent only.
import { api } from "./api.js";

const page = document.querySelector("[data-escalation-page]");

if (page) {
  const base = page.dataset.policiesApi;
  const status = page.querySelector("[data-page-status]");
  const form = page.querySelector("form[data-policy-form]");
  const heading = page.querySelector("[data-form-heading]");
  const submit = form.querySelector("[data-submit]");
  const cancel = form.querySelector("[data-cancel]");
  let editing = null; // the id of the policy the form holds, or null for a new one
  let savedSteps = []; // its steps as saved: the admins a step emails (set through the API) stay

  const explain = (err) => (err.explain ? err.explain() : err.message);
  const say = (message, kind = "info") => {
    status.textContent = message;
    status.dataset.kind = kind;
    status.hidden = !message;
  };
  const showError = (message) => {
    const error = form.querySelector("[data-form-error]");
    error.textContent = message;
    error.hidden = !message;
  };

  // The steps the form describes: those with minutes, in order.
  const stepsOf = () =>
    [...form.querySelectorAll("[data-step]")]
      .map((fieldset, index) => ({
        users: savedSteps[index] ? savedSteps[index].user_ids : [],
        minutes: fieldset.querySelector("input[name=after_minutes]").value.trim(),
        episode: fieldset.querySelector("input[name=episode]").checked,
        endpoints: [...fieldset.querySelectorAll("input[name=endpoint_ids]:checked")].map((b) => Number(b.value)),
      }))
      .filter((step) => step.minutes !== "")
      .map((step) => ({
        after_minutes: Number(step.minutes),
        episode: step.episode,
        endpoint_ids: step.endpoints,
        user_ids: step.users,
      }));

  const bodyOf = () => {
    const data = new FormData(form);
    const owner = data.get("owner").trim();
    return {
      name: data.get("name").trim(),
      severity: data.get("severity"),
      alert_type: data.get("alert_type") || null,
      owner: owner || null,
      repeat: Number(data.get("repeat") || 0),
      steps: stepsOf(),
    };
  };

  const startEditing = (row) => {
    const saved = JSON.parse(row.dataset.edit);
    form.reset();
    editing = row.dataset.policyId;
    savedSteps = saved.steps;
    heading.textContent = `Change “${saved.name}”`;
    submit.textContent = "Save changes";
    cancel.hidden = false;
    form.elements.name.value = saved.name;
    form.elements.severity.value = saved.severity;
    form.elements.alert_type.value = saved.alert_type;
    form.elements.owner.value = saved.owner;
    form.elements.repeat.value = saved.repeat;
    form.querySelectorAll("[data-step]").forEach((fieldset, index) => {
      const step = saved.steps[index];
      fieldset.querySelector("input[name=after_minutes]").value = step ? step.after_minutes : "";
      fieldset.querySelector("input[name=episode]").checked = Boolean(step && step.episode);
      for (const box of fieldset.querySelectorAll("input[name=endpoint_ids]")) {
        box.checked = Boolean(step && step.endpoint_ids.includes(Number(box.value)));
      }
    });
    showError("");
    form.scrollIntoView({ block: "start" });
  };

  cancel.addEventListener("click", () => window.location.reload());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = bodyOf();
    if (!body.steps.length) {
      showError("Give the first step its minutes.");
      return;
    }
    submit.disabled = true;
    try {
      if (editing) await api(`${base}/${editing}`, { method: "PATCH", body });
      else await api(base, { method: "POST", body });
      window.location.reload();
    } catch (err) {
      showError(`That did not work: ${explain(err)}`);
    } finally {
      submit.disabled = false;
    }
  });

  page.addEventListener("click", async (event) => {
    const control = event.target.closest("[data-action]");
    if (!control) return;
    const row = control.closest("[data-policy-id]");
    const url = `${base}/${row.dataset.policyId}`;
    const action = control.dataset.action;
    if (action === "edit") {
      startEditing(row);
      return;
    }
    control.disabled = true;
    try {
      if (action === "delete") await api(url, { method: "DELETE" });
      else await api(url, { method: "PATCH", body: { is_enabled: action === "enable" } });
      window.location.reload();
    } catch (err) {
      say(`That did not work: ${explain(err)}`, "error");
      control.disabled = false;
    }
  });
}
