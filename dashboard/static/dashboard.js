// wanflow review: keyboard shortcuts and small conveniences. Plain JS, no dependencies, no network but our own API.
(function () {
  "use strict";
  const page = document.body.dataset.page;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content;
  const help = document.getElementById("help");
  const toastEl = document.getElementById("toast");
  const t = JSON.parse(document.body.dataset.i18n || "{}");  // this page's language (dashboard/i18n.py JS)
  const say = (key, fallback) => t[key] || fallback;

  function toast(text, kind) {
    toastEl.textContent = text;
    toastEl.className = kind || "";
    toastEl.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { toastEl.hidden = true; }, 6000);
  }

  async function decide(assetId, body) {
    const r = await fetch(`/api/clips/${assetId}/decision`, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await r.json(); } catch (e) { /* empty body */ }
    return {status: r.status, data};
  }

  function typing(e) {
    const t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }

  document.querySelectorAll("[data-help]").forEach((b) => b.addEventListener("click", () => help.showModal()));
  document.querySelectorAll("form[data-autosubmit] select").forEach((s) => s.addEventListener("change", () => s.form.submit()));
  document.querySelectorAll("form[data-autosubmit] input").forEach((i) => i.addEventListener("change", () => i.form.submit()));
  document.querySelectorAll("[data-random-seed]").forEach((b) => b.addEventListener("click", () => {
    const buf = new Uint32Array(1);
    crypto.getRandomValues(buf);
    document.getElementById("seed").value = String(buf[0] % 2147483648);
  }));
  document.querySelectorAll("video[data-hover-play]").forEach((v) => {
    v.addEventListener("mouseenter", () => v.play().catch(() => {}));
    v.addEventListener("mouseleave", () => v.pause());
  });

  // ---- queue page: j/k select, Enter/o open, a approve, r reject (with a reason) ----
  const rows = Array.from(document.querySelectorAll("table.queue tbody tr[data-asset]"));
  let current = rows.length ? 0 : -1;
  function select(i) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, n) => r.classList.toggle("selected", n === current));
    rows[current].scrollIntoView({block: "nearest"});
  }
  if (page === "queue" && rows.length) select(0);
  rows.forEach((r, n) => r.addEventListener("click", (e) => { if (e.target.tagName !== "A") select(n); }));

  function outcome(row, res, label) {
    if (res.status === 200) {
      const s = res.data.state;
      const text = s.status === "pending" ? `${say("to", "to")} ${s.stage}` : s.clip_status.replace("_", " ");
      row.querySelector(".status").textContent = text;
      row.querySelector(".status").className = `status status-${s.status === "pending" ? "to_approve" : s.clip_status}`;
      row.dataset.open = s.status === "pending" ? "1" : "0";
      row.dataset.stage = s.stage;
      toast(`${say("clip", "Clip")} #${row.dataset.asset}: ${say(label, label)}`, "ok");
      select(current + 1);
    } else if (res.status === 409) {
      const s = res.data.state || {};
      const last = (s.decisions || []).slice(-1)[0];
      row.querySelector(".status").textContent = (s.clip_status || "").replace("_", " ");
      toast(`${say("decided_first", "Someone else decided first")}: ${res.data.detail}` +
            (last ? ` (${last.decision} ${say("by", "by")} ${last.reviewer})` : ""), "conflict");
    } else {
      toast(`${say("not_recorded", "Not recorded")}: ${res.data.detail || res.status}`, "error");
    }
  }

  const rejectDialog = document.getElementById("reject");
  async function approveSelected() {
    const row = rows[current];
    if (!row) return;
    outcome(row, await decide(row.dataset.asset, {decision: "approve", expected_stage: row.dataset.stage}), "approved");
  }
  function rejectSelected() {
    const row = rows[current];
    if (!row || !rejectDialog) return;
    document.getElementById("reject-id").textContent = `#${row.dataset.asset}`;
    rejectDialog.showModal();
  }
  if (rejectDialog) {
    rejectDialog.addEventListener("close", async () => {
      if (rejectDialog.returnValue !== "reject") return;
      const f = document.getElementById("reject-form");
      const row = rows[current];
      const body = {decision: "reject", reason_code: f.reason_code.value, reason: f.reason.value,
                    expected_stage: row.dataset.stage};
      f.reason.value = "";
      outcome(row, await decide(row.dataset.asset, body), "rejected");
    });
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    if (document.querySelector("dialog[open]")) return;
    if (e.key === "?") { e.preventDefault(); help.showModal(); return; }
    if (page === "queue") {
      if (e.key === "j") select(current + 1);
      else if (e.key === "k") select(current - 1);
      else if ((e.key === "Enter" || e.key === "o") && rows[current]) location.href = `/clips/${rows[current].dataset.asset}`;
      else if (e.key === "a") approveSelected();
      else if (e.key === "r") rejectSelected();
      else return;
      e.preventDefault();
    } else if (page === "clip") {
      const approve = document.getElementById("approve");
      if (e.key === "a" && approve) approve.click();
      else if (e.key === "r" && document.getElementById("reason-code")) document.getElementById("reason-code").focus();
      else if (e.key === "j" || e.key === "k") location.href = "/";
      else return;
      e.preventDefault();
    }
  });
})();
