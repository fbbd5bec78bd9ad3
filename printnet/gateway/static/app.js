// printnet queue page: fetches /api/queue every few seconds and redraws in place.
// Plain JavaScript, no framework; every value is set as text, never as HTML.
"use strict";
(function () {
  const REFRESH_MS = 2000;
  const KEY = "printnet.auth";
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const state = {
    printer: params.get("printer") || "",
    user: params.get("user") || "",
    page: Math.max(1, parseInt(params.get("page") || "1", 10) || 1),
    auth: sessionStorage.getItem(KEY),
    me: null,
    data: null,
    busy: false,
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const badge = (s) => el("span", { class: "badge s-" + String(s || "unknown").replace(/\W/g, "") }, s || "unknown");
  const shortId = (id) => String(id || "").slice(-6);
  function ago(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "?";
    if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }
  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    const today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
                 : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  }
  function headers(extra) {
    const h = Object.assign({ "X-Printnet": "1" }, extra || {});
    if (state.auth) h["Authorization"] = "Basic " + state.auth;
    return h;
  }
  function toast(text, bad) {
    const t = $("toast");
    t.textContent = text;
    t.className = "toast" + (bad ? " bad" : "");
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  // -- fetching ----------------------------------------------------------------------

  function query() {
    const q = new URLSearchParams();
    if (state.printer) q.set("printer", state.printer);
    if (state.user) q.set("user", state.user);
    if (state.page > 1) q.set("page", String(state.page));
    return q.toString();
  }

  async function refresh() {
    if (state.busy) return;
    state.busy = true;
    try {
      const q = query();
      const sent = state.auth;
      history.replaceState(null, "", q ? "?" + q : location.pathname);
      const res = await fetch("/api/queue" + (q ? "?" + q : ""), { headers: headers(), cache: "no-store" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const data = await res.json();
      if (sent !== state.auth) return;  // logged in or out meanwhile: this answer is stale
      state.data = data;
      state.page = data.page;
      if (state.auth && !data.me) logout("log-in expired or wrong");
      state.me = data.me;
      render(data);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      $("updated").classList.remove("bad");
    } catch (err) {
      $("updated").textContent = "cannot reach the gateway (" + err.message + "), retrying";
    } finally {
      state.busy = false;
    }
  }

  // -- drawing -----------------------------------------------------------------------

  function render(d) {
    renderAccount();
    renderFilters(d);
    renderPrinters(d.printers);
    renderJobs(d);
    renderCompleted(d.completed);
    renderServers(d.servers);
  }

  function renderAccount() {
    const me = state.me;
    $("login").hidden = !!me;
    $("who").hidden = !me;
    $("who-name").textContent = me ? me.user + (me.operator ? " (operator)" : "") : "";
    $("filter-mine").disabled = !me;
    $("filter-mine").checked = !!me && state.user === me.user;
  }

  function renderFilters(d) {
    const sel = $("filter-printer");
    const names = [...new Set((d.printers || []).flatMap((p) => [p.name, ...(p.classes || [])]))].sort();
    if (state.printer && !names.includes(state.printer)) names.push(state.printer);
    const want = ["", ...names].join("\n");
    if (sel.dataset.names !== want) {
      sel.replaceChildren(el("option", { value: "" }, "all"), ...names.map((n) => el("option", { value: n }, n)));
      sel.dataset.names = want;
    }
    sel.value = state.printer;
    if (document.activeElement !== $("filter-user")) $("filter-user").value = state.user;
  }

  function progressOf(p) {
    const g = p.progress;
    if (!g) return null;
    const pct = g.total ? Math.min(100, Math.round((100 * g.bytes) / g.total)) : 0;
    const pages = !g.page_total ? `${g.bytes} of ${g.total} bytes`
      : g.pages ? `${g.pages} of ${g.page_total} pages` : `${g.page_total} pages`;
    const bar = el("span", {});
    bar.style.width = pct + "%";  // CSSOM, not a style attribute: the page's CSP allows it
    return [el("div", { class: "progress", role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 }, bar),
            el("div", { class: "line muted" }, `${pct}% · ${pages}`)];
  }

  function renderPrinters(printers) {
    const box = $("printers");
    if (!printers || !printers.length) {
      box.replaceChildren(el("p", { class: "muted" }, "No server reports a printer yet."));
      return;
    }
    box.replaceChildren(...printers.map((p) => {
      const reasons = (p.reasons || []).join(", ");
      const job = p.job ? (state.data.jobs || []).find((j) => j.id === p.job) : null;
      return el("article", { class: "card printer", "data-printer": p.name },
        el("h3", {}, p.name, badge(p.state)),
        el("div", { class: "line" }, "Setup ", el("strong", {}, p.setup || "—"),
           p.form ? ` · form ${p.form}` : "", p.server ? ` · on ${p.server}` : ""),
        reasons ? el("div", { class: "reasons" }, reasons) : null,
        p.accepting === false ? el("div", { class: "reasons" }, "not accepting jobs" + (p.reject_reason ? ": " + p.reject_reason : "")) : null,
        p.job ? el("div", { class: "line current" }, "Printing ", el("span", { class: "mono" }, shortId(p.job)),
                   job ? ` · ${job.title || "(untitled)"} · ${job.user}` : "") : el("div", { class: "line muted" }, "No current job"),
        ...(progressOf(p) || []));
    }));
  }

  function canAct(job) {
    const me = state.me;
    return !!me && (me.operator || job.user === me.user);
  }

  function actionButtons(job) {
    if (!canAct(job)) return [];
    const b = [];
    if (job.state === "pending") b.push(["hold", "Hold", ""]);
    if (job.state === "held") b.push(["release", "Release", ""]);
    if (["pending", "held", "printing"].includes(job.state)) b.push(["cancel", "Cancel", "danger"]);
    return b.map(([action, label, cls]) => el("button", {
      type: "button", class: "act " + cls, "data-action": action, "data-job": job.id,
      onclick: () => act(job, action),
    }, label));
  }

  function pagesOf(job) {
    if (!job.pages) return job.copies > 1 ? `× ${job.copies}` : "";
    return job.copies > 1 ? `${job.pages} × ${job.copies}` : String(job.pages);
  }

  function renderJobs(d) {
    const body = $("jobs").tBodies[0];
    $("queue-count").textContent = d.total ? `(${d.total})` : "";
    if (!d.jobs.length) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 9 }, "The queue is empty.")));
    } else {
      body.replaceChildren(...d.jobs.map((j) => el("tr", {
        "data-job": j.id, "data-state": j.state, class: state.me && j.user === state.me.user ? "mine" : "",
      },
        el("td", { "data-label": "Position" }, j.position || ""),
        el("td", { "data-label": "Job", class: "mono", title: j.id }, shortId(j.id)),
        el("td", { "data-label": "User" }, j.user),
        el("td", { "data-label": "Printer" }, j.assigned && j.assigned !== j.printer ? `${j.printer} → ${j.assigned}` : j.printer),
        el("td", { "data-label": "Title" }, j.title || "(untitled)", j.priority && j.priority !== "standard" ? " " : "",
           j.priority && j.priority !== "standard" ? badge(j.priority) : null),
        el("td", { "data-label": "State" }, badge(j.state)),
        el("td", { "data-label": "Pages" }, pagesOf(j)),
        el("td", { "data-label": "Note", class: "note" }, j.note || ""),
        el("td", { class: "actions" }, ...actionButtons(j)))));
    }
    $("page-info").textContent = `page ${d.page} of ${d.pages}`;
    $("prev").disabled = d.page <= 1;
    $("next").disabled = d.page >= d.pages;
    $("pager").hidden = d.pages <= 1;
  }

  function renderCompleted(rows) {
    const body = $("completed").tBodies[0];
    if (!rows || !rows.length) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 7 }, "Nothing finished yet.")));
      return;
    }
    body.replaceChildren(...rows.map((j) => el("tr", { "data-job": j.id, "data-state": j.state },
      el("td", { "data-label": "Job", class: "mono", title: j.id }, shortId(j.id)),
      el("td", { "data-label": "User" }, j.user),
      el("td", { "data-label": "Printer" }, j.assigned || j.printer),
      el("td", { "data-label": "Title" }, j.title || "(untitled)",
         j.via ? el("span", { class: "via", title: "how the user was known" }, j.via) : null),
      el("td", { "data-label": "State" }, badge(j.state)),
      el("td", { "data-label": "Pages" }, pagesOf(j)),
      el("td", { "data-label": "Finished" }, when(j.finished)))));
  }

  function renderServers(servers) {
    const box = $("servers");
    if (!servers || !servers.length) {
      box.replaceChildren(el("p", { class: "muted" }, "No server has published its status."));
      return;
    }
    box.replaceChildren(...servers.map((s) => {
      const locks = (s.locks || []).map((l) => {
        const stale = l.lease && l.age > l.lease;
        return el("li", {}, el("span", { class: "mono" }, l.name),
                  el("span", { class: stale ? "reasons" : "muted" }, `${l.holder}@${l.host} · ${ago(l.age)} old · lease ${ago(l.lease)}`));
      });
      const title = s.name === null ? "Other locks" : s.name;
      return el("article", { class: "card server" },
        el("h3", {}, title, s.name === null ? null : badge(s.state)),
        s.name === null ? null : el("div", { class: "line muted" }, `${s.host || "?"} · status ${ago(s.age)} old · lease ${ago(s.lease)}`),
        s.spool_error ? el("div", { class: "reasons" }, s.spool_error) : null,
        locks.length ? el("ul", { class: "locks" }, ...locks) : el("div", { class: "line muted" }, "holds no locks"));
    }));
  }

  // -- actions -----------------------------------------------------------------------

  async function act(job, action) {
    try {
      const res = await fetch(`/api/jobs/${encodeURIComponent(job.id)}/${action}`, { method: "POST", headers: headers() });
      const body = await res.json().catch(() => ({}));
      if (res.ok && body.outcome === "applied") toast(`${action}: job ${shortId(job.id)} done`);
      else if (res.status === 202) toast(`${action}: job ${shortId(job.id)} queued for the servers`);
      else toast(`${action} refused: ${body.outcome || body.error || res.status}`, true);
    } catch (err) {
      toast(`${action} failed: ${err.message}`, true);
    }
    refresh();
  }

  async function login(user, password) {
    const auth = btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)));
    const res = await fetch("/api/me", { headers: { "Authorization": "Basic " + auth, "X-Printnet": "1" } });
    if (!res.ok) { toast("Wrong user name or password", true); return; }
    state.auth = auth;
    sessionStorage.setItem(KEY, auth);
    state.me = await res.json();
    toast(`Logged in as ${state.me.user}`);
    refresh();
  }

  function logout(why) {
    state.auth = null;
    state.me = null;
    sessionStorage.removeItem(KEY);
    if (why) toast(why, true);
  }

  // -- wiring ------------------------------------------------------------------------

  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    login($("login-user").value.trim(), $("login-password").value);
    $("login-password").value = "";
  });
  $("logout").addEventListener("click", () => { logout(); refresh(); });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("filter-printer").addEventListener("change", (e) => { state.printer = e.target.value; state.page = 1; refresh(); });
  let typing;
  $("filter-user").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.user = e.target.value.trim(); state.page = 1; refresh(); }, 300);
  });
  $("filter-mine").addEventListener("change", (e) => {
    state.user = e.target.checked && state.me ? state.me.user : "";
    state.page = 1;
    refresh();
  });
  $("prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); refresh(); });
  $("next").addEventListener("click", () => { state.page += 1; refresh(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  refresh();
})();
