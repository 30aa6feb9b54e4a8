// The delivery log: filters kept in the URL, replay one failed delivery, replay every failed
// delivery since a time. Text goes in with textContent only.
import { api, refreshTimes, statusLine } from "./api.js";

const page = document.querySelector("[data-deliveries-page]");

if (page) {
  const base = page.dataset.deliveriesApi;
  const status = page.querySelector("[data-page-status]");
  const replayForm = page.querySelector("form[data-replay-since]");

  const say = statusLine(status);
  const explain = (err) => (err.explain ? err.explain() : err.message);

  for (const form of page.querySelectorAll("form[data-autosubmit]")) {
    form.addEventListener("change", () => form.requestSubmit());
  }

  // "Since" starts a day ago, in the admin's own time zone (what datetime-local shows).
  const since = replayForm.querySelector('input[name="since"]');
  const dayAgo = new Date(Date.now() - 24 * 3600 * 1000);
  dayAgo.setSeconds(0, 0);
  since.value = new Date(dayAgo.getTime() - dayAgo.getTimezoneOffset() * 60000)
    .toISOString()
    .slice(0, 16);

  page.addEventListener("click", async (event) => {
    const control = event.target.closest('[data-action="replay"]');
    if (!control) return;
    control.disabled = true;
    control.textContent = "Replaying…";
    try {
      await api(`${base}/${control.dataset.id}/replay`, { method: "POST" });
      window.location.reload();
    } catch (err) {
      say(`That did not work: ${explain(err)}`, "error");
      control.disabled = false;
      control.textContent = "Replay";
    }
  });

  replayForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(replayForm);
    const moment = new Date(data.get("since")); // datetime-local: the browser's own zone
    if (Number.isNaN(moment.getTime())) {
      say("Pick the time to replay from.", "error");
      return;
    }
    const body = { since: moment.toISOString() };
    if (data.get("endpoint_id")) body.endpoint_id = Number(data.get("endpoint_id"));
    const submit = replayForm.querySelector("[data-submit]");
    submit.disabled = true;
    try {
      const { replayed } = await api(`${base}/replay-failed`, { method: "POST", body });
      say(
        replayed === 0
          ? "No failed deliveries since then."
          : `${replayed} failed ${replayed === 1 ? "delivery" : "deliveries"} queued again; the dispatcher sends them on its next run.`,
      );
      if (replayed) setTimeout(() => window.location.reload(), 1500);
    } catch (err) {
      say(`That did not work: ${explain(err)}`, "error");
    } finally {
      submit.disabled = false;
    }
  });

  refreshTimes(page);
  setInterval(() => refreshTimes(page), 30000);
  page.dataset.ready = "true"; // the buttons work from here on (tests wait for it)
}
