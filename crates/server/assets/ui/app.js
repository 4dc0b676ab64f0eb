// ferrolite admin UI: fills the server-rendered pages from the gateway's
// management API and the UI's own /ui/api endpoints. No framework, no build.
"use strict";
(function () {
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const page = document.body.dataset.page;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // ---- small helpers -------------------------------------------------------
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function status(msg, bad) {
    const s = $("#status");
    if (!s) return;
    s.textContent = msg || "";
    s.classList.toggle("bad", !!bad);
  }
  class ApiError extends Error { constructor(msg, code) { super(msg); this.status = code; } }
  async function api(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") opts.headers["x-csrf-token"] = CSRF;
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const r = await fetch(path, opts);
    if (r.status === 401 && path.startsWith("/ui/")) {
      location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new ApiError("Logged out", 401);
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    if (!r.ok) {
      let msg = (data && data.error && (data.error.message || data.error)) || (data && data.detail && (data.detail.error || data.detail)) || text || r.statusText;
      if (typeof msg !== "string") msg = JSON.stringify(msg);
      if (r.status === 404 && !path.startsWith("/ui/")) msg = `${path} is not available on this gateway (${msg})`;
      throw new ApiError(msg, r.status);
    }
    return { data, headers: r.headers, status: r.status };
  }
  const get = async (p) => (await api("GET", p)).data;
  const post = async (p, b) => (await api("POST", p, b)).data;

  const nf = new Intl.NumberFormat();
  const num = (v) => (v === null || v === undefined || v === "" ? "–" : nf.format(v));
  function money(v) {
    if (v === null || v === undefined) return "–";
    v = Number(v);
    if (v === 0) return "$0";
    if (Math.abs(v) < 0.01) return "$" + v.toPrecision(3);
    return "$" + v.toFixed(2);
  }
  const ms = (v) => (v === null || v === undefined ? "–" : v >= 10000 ? (v / 1000).toFixed(1) + " s" : v < 1 ? "< 1 ms" : Math.round(v) + " ms");
  const when = (t) => (t ? new Date(t).toLocaleString() : "–");
  const short = (s, n) => (s && s.length > (n || 12) ? s.slice(0, n || 12) + "…" : s || "");
  function compact(v) {
    v = Number(v) || 0;
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (Math.abs(v) >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return String(Math.round(v * 100) / 100);
  }
  function failed(e) { if (e && e.status !== 401) status(e.message || String(e), true); }
  function td(label, content, cls) { return h("td", { "data-label": label, class: cls }, content); }
  function empty(tbody, cols, msg) { tbody.replaceChildren(h("tr", {}, h("td", { colspan: cols, class: "empty" }, msg))); }
  function badge(text, kind) { return h("span", { class: "badge " + kind }, text); }
  function listOf(v) { return Array.isArray(v) ? v : v && typeof v === "object" ? (v.keys || v.users || v.teams || v.data || []) : []; }

  // Dialogs: Cancel buttons close; forms report errors inside.
  function setupDialog(d) {
    $$(".cancel", d).forEach((b) => b.addEventListener("click", () => d.close()));
    return d;
  }
  function formError(form, msg) { const p = $(".error", form); if (p) p.textContent = msg || ""; }
  // Read a form into a JSON body: empty fields are left out, numbers parsed.
  function formBody(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.type === "submit" || el.type === "button") continue;
      if (el.multiple) { out[el.name] = Array.from(el.selectedOptions).map((o) => o.value); continue; }
      const v = el.value.trim();
      if (v === "") continue;
      out[el.name] = el.type === "number" ? Number(v) : v;
    }
    return out;
  }
  function fill(form, obj) {
    form.reset();
    for (const el of form.elements) {
      if (!el.name) continue;
      const v = obj[el.name];
      if (el.multiple) { for (const o of el.options) o.selected = Array.isArray(v) && v.includes(o.value); }
      else if (v !== undefined && v !== null) el.value = v;
    }
  }
  async function modelNames() {
    try { return (await get("/ui/api/models")).groups.map((g) => g.name); } catch (_) { return []; }
  }
  async function teamList() {
    try { return listOf(await get("/team/list")); } catch (_) { return []; }
  }
  function setOptions(select, values, keepFirst) {
    const first = keepFirst ? select.options[0] : null;
    select.replaceChildren(...(first ? [first] : []), ...values.map(([v, label]) => h("option", { value: v }, label)));
  }
  function every(msOf, fn) { fn(); return setInterval(() => { if (!document.hidden && !document.querySelector("dialog[open]")) fn(); }, msOf); }

  // ---- overview ------------------------------------------------------------
  function bucketLabel(t, width) {
    const d = new Date(t);
    if (width >= 86400000) return `${d.getMonth() + 1}/${d.getDate()}`;
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  function overview() {
    let data = null, win = "hour";
    function draw() {
      if (!data) return;
      const w = data.windows[win], t = w.totals;
      $("#t-requests").textContent = num(t.requests);
      $("#t-errors").textContent = num(t.errors);
      $("#t-tokens").textContent = num(t.tokens);
      $("#t-spend").textContent = money(t.spend);
      $("#t-p50").textContent = ms(w.p50_ms);
      $("#t-p95").textContent = ms(w.p95_ms);
      const labels = w.buckets.map((b) => bucketLabel(b.t, w.bucket_ms));
      const col = (k) => w.buckets.map((b) => b[k]);
      FLCharts.bars($("#c-requests"), labels, [{ name: "requests", values: col("requests") }, { name: "errors", values: col("errors"), cls: "s1" }], compact);
      FLCharts.bars($("#c-tokens"), labels, [{ name: "tokens", values: col("tokens"), cls: "s2" }], compact);
      FLCharts.bars($("#c-spend"), labels, [{ name: "spend", values: col("spend"), cls: "s3" }], (v) => (v >= 1 ? "$" + compact(v) : "$" + Number(v.toPrecision(2))));
      const tops = [["#top-models", data.top.models], ["#top-keys", data.top.keys], ["#top-teams", data.top.teams]];
      for (const [sel, list] of tops) {
        const ol = $(sel);
        ol.replaceChildren(...(list.length ? list.map((x) => h("li", {}, h("span", { class: "num" }, `${money(x.spend)} · ${num(x.requests)} req`), x.label || x.id)) : [h("li", { class: "none" }, "No spend yet")]));
      }
      if (!data.store) status("No database is configured: totals, logs and usage need one (general_settings.database_url).");
    }
    $$(".seg").forEach((b) => b.addEventListener("click", () => {
      win = b.dataset.window;
      $$(".seg").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
      draw();
    }));
    every(15000, async () => { try { data = await get("/ui/api/overview"); draw(); } catch (e) { failed(e); } });
  }

  // ---- models --------------------------------------------------------------
  function usageMeter(used, limit) {
    if (!limit) return h("span", {}, `${num(used)} / no limit`);
    const pct = Math.min(100, (100 * used) / limit);
    const bar = h("span", {});
    bar.style.width = pct + "%";
    return h("span", {}, h("span", { class: "meter", role: "img", "aria-label": `${Math.round(pct)}% of the limit` }, bar), `${num(used)} / ${num(limit)}`);
  }
  function stateBadge(d) {
    if (d.state === "cooling_down") return badge("cooling down until " + new Date(d.cooling_until).toLocaleTimeString(), "bad");
    if (d.state === "probation") return badge("probation", "warn");
    return badge("healthy", "ok");
  }
  async function testModel(group) {
    const dlg = $("#test-dialog");
    $("#test-title").textContent = "Test " + group.name;
    $("#test-status").textContent = "Sending one request…";
    $("#test-answer").textContent = "";
    dlg.showModal();
    const embedding = group.deployments.every((d) => d.mode === "embedding");
    const started = performance.now();
    try {
      const r = embedding
        ? await api("POST", "/v1/embeddings", { model: group.name, input: "Hello from the ferrolite UI" })
        : await api("POST", "/v1/chat/completions", { model: group.name, messages: [{ role: "user", content: "Say hello in one short sentence." }], max_tokens: 64 });
      const took = performance.now() - started;
      const by = r.headers.get("x-litellm-model-id");
      $("#test-status").textContent = `Answered in ${ms(took)}` + (by ? ` by deployment ${short(by, 16)}` : "") + ".";
      $("#test-answer").textContent = embedding
        ? `Embedding of ${(r.data.data && r.data.data[0] && r.data.data[0].embedding || []).length} dimensions`
        : ((r.data.choices && r.data.choices[0] && r.data.choices[0].message && r.data.choices[0].message.content) || JSON.stringify(r.data, null, 2));
    } catch (e) {
      $("#test-status").textContent = `Failed after ${ms(performance.now() - started)}: ${e.message}`;
    }
  }
  function models() {
    setupDialog($("#test-dialog"));
    every(5000, async () => {
      let data;
      try { data = await get("/ui/api/models"); } catch (e) { return failed(e); }
      const root = $("#models");
      if (!data.groups.length) { root.replaceChildren(h("p", { class: "notice" }, "No models are configured.")); return; }
      root.replaceChildren(...data.groups.map((g) => {
        const healthy = g.deployments.filter((d) => d.state !== "cooling_down").length;
        const rows = g.deployments.map((d) => h("tr", {},
          td("Deployment", h("code", { title: d.id }, short(d.id, 14))),
          td("Upstream model", [d.model, d.mock ? " " : null, d.mock ? badge("mock", "muted") : null]),
          td("Provider", d.provider || "–"),
          td("API base", d.api_base || "default"),
          td("State", stateBadge(d)),
          td("Failures / requests (1 h)", `${num(d.failures_1h)} / ${num(d.requests_1h)}`, "num"),
          td("RPM", usageMeter(d.rpm_used, d.rpm_limit), "num"),
          td("TPM", usageMeter(d.tpm_used, d.tpm_limit), "num"),
          td("In flight", d.max_parallel_requests ? `${d.in_flight} / ${d.max_parallel_requests}` : String(d.in_flight), "num"),
          td("Latency", ms(d.latency_ms), "num")));
        return h("section", { class: "group", "aria-label": "Model group " + g.name },
          h("header", {}, h("h2", {}, g.name), h("span", { class: "hint" }, `${healthy} of ${g.deployments.length} deployment(s) available`),
            h("button", { type: "button", onclick: () => testModel(g), "aria-label": "Test " + g.name }, "Test")),
          h("div", { class: "table-wrap stack" }, h("table", {},
            h("thead", {}, h("tr", {}, ...["Deployment", "Upstream model", "Provider", "API base", "State", "Failures / requests (1 h)", "RPM this minute", "TPM this minute", "In flight", "Latency"].map((c) => h("th", { scope: "col" }, c)))),
            h("tbody", {}, rows))));
      }));
    });
  }

  // ---- keys ----------------------------------------------------------------
  function expiresText(v) {
    if (!v) return "never";
    const t = typeof v === "number" ? v : Date.parse(v);
    return isNaN(t) ? String(v) : (t < Date.now() ? "expired " : "") + new Date(t).toLocaleDateString();
  }
  function limitsText(x) {
    const parts = [];
    if (x.rpm_limit) parts.push(`${num(x.rpm_limit)} rpm`);
    if (x.tpm_limit) parts.push(`${num(x.tpm_limit)} tpm`);
    if (x.max_parallel_requests) parts.push(`${num(x.max_parallel_requests)} parallel`);
    return parts.join(", ") || "–";
  }
  function budgetText(x) { return `${money(x.spend || 0)} / ${x.max_budget !== null && x.max_budget !== undefined ? money(x.max_budget) : "no budget"}${x.budget_duration ? " per " + x.budget_duration : ""}`; }
  function showNewKey(k) {
    $("#new-key-value").textContent = k;
    $("#new-key").hidden = false;
    $("#new-key-copy").focus();
  }
  function keys() {
    const dlg = setupDialog($("#key-dialog")), form = $("#key-form");
    let all = [], teamNames = {};
    $("#new-key-copy").addEventListener("click", async () => {
      try { await navigator.clipboard.writeText($("#new-key-value").textContent); status("Key copied."); } catch (_) { status("Select the key and copy it."); }
    });
    $("#new-key-close").addEventListener("click", () => { $("#new-key").hidden = true; $("#new-key-value").textContent = ""; });
    async function load() {
      try {
        const r = await get("/key/list?return_full_object=true&size=100&page=1");
        all = listOf(r).filter((k) => typeof k === "object");
        render();
      } catch (e) { failed(e); empty($("#keys-table tbody"), 10, "Keys cannot be listed: " + e.message); }
    }
    async function act(what, fn) {
      try { await fn(); status(what); await load(); } catch (e) { failed(e); }
    }
    function render() {
      const q = $("#key-search").value.trim().toLowerCase();
      const rows = all.filter((k) => !q || [k.key_alias, k.key_name, k.token, k.user_id, k.team_id, teamNames[k.team_id]].some((v) => v && String(v).toLowerCase().includes(q)));
      const tb = $("#keys-table tbody");
      if (!rows.length) return empty(tb, 10, all.length ? "No key matches." : "No keys yet. Create one.");
      tb.replaceChildren(...rows.map((k) => {
        const name = k.key_alias || k.key_name || short(k.token);
        const id = k.token;
        return h("tr", {},
          td("Alias", k.key_alias || "–"),
          td("Key", h("code", {}, k.key_name || short(k.token))),
          td("Models", (k.models && k.models.length ? k.models.join(", ") : "all")),
          td("Team", teamNames[k.team_id] || k.team_alias || k.team_id || "–"),
          td("User", k.user_id || "–"),
          td("Spend / budget", budgetText(k), "num"),
          td("Limits", limitsText(k)),
          td("Expires", expiresText(k.expires)),
          td("Status", k.blocked ? badge("blocked", "bad") : badge("active", "ok")),
          td("Actions", [
            h("button", { type: "button", class: "small", "aria-label": "Edit " + name, onclick: () => openEdit(k) }, "Edit"), " ",
            k.blocked
              ? h("button", { type: "button", class: "small", "aria-label": "Unblock " + name, onclick: () => act("Key unblocked.", () => post("/key/unblock", { key: id })) }, "Unblock")
              : h("button", { type: "button", class: "small", "aria-label": "Block " + name, onclick: () => act("Key blocked.", () => post("/key/block", { key: id })) }, "Block"), " ",
            h("button", { type: "button", class: "small", "aria-label": "Regenerate " + name, onclick: () => regenerate(k) }, "Regenerate"), " ",
            h("button", { type: "button", class: "small danger", "aria-label": "Delete " + name, onclick: () => { if (confirm(`Delete key ${name}? Apps using it stop working.`)) act("Key deleted.", () => post("/key/delete", { keys: [id] })); } }, "Delete"),
          ], "actions"));
      }));
    }
    async function regenerate(k) {
      if (!confirm(`Regenerate ${k.key_alias || k.key_name}? The old key stops working at once.`)) return;
      try {
        let r;
        try { r = await post("/key/regenerate", { key: k.token }); }
        catch (e) { if (e.status === 404 || e.status === 405) r = await post(`/key/${encodeURIComponent(k.token)}/regenerate`, {}); else throw e; }
        showNewKey(r.key);
        await load();
      } catch (e) { failed(e); }
    }
    async function prepare() {
      const [names, teams] = await Promise.all([modelNames(), teamList()]);
      setOptions($("#k-models"), names.map((n) => [n, n]));
      setOptions($("#k-team"), teams.map((t) => [t.team_id, t.team_alias || t.team_id]), true);
    }
    function openNew() {
      prepare().then(() => {
        fill(form, {});
        form.elements.key.value = "";
        $("#key-dialog-title").textContent = "Create key";
        $("#key-save").textContent = "Create";
        $("#k-duration").disabled = false;
        formError(form, "");
        dlg.showModal();
      });
    }
    function openEdit(k) {
      prepare().then(() => {
        fill(form, k);
        form.elements.key.value = k.token;
        $("#key-dialog-title").textContent = "Edit " + (k.key_alias || k.key_name);
        $("#key-save").textContent = "Save";
        $("#k-duration").disabled = false;
        formError(form, "");
        dlg.showModal();
      });
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = formBody(form);
      const editing = !!body.key;
      if (editing) {
        // Clearing a field on edit sets it to null.
        for (const n of ["key_alias", "team_id", "user_id", "max_budget", "budget_duration", "rpm_limit", "tpm_limit", "max_parallel_requests"]) if (!(n in body)) body[n] = null;
      }
      try {
        const r = await post(editing ? "/key/update" : "/key/generate", body);
        dlg.close();
        if (!editing && r && r.key) showNewKey(r.key);
        status(editing ? "Key updated." : "Key created.");
        await load();
      } catch (e) { formError(form, e.message); }
    });
    $("#key-new").addEventListener("click", openNew);
    $("#key-search").addEventListener("input", render);
    teamList().then((ts) => { for (const t of ts) teamNames[t.team_id] = t.team_alias || t.team_id; load(); });
  }

  // ---- users and teams -----------------------------------------------------
  function teams() {
    const tdlg = setupDialog($("#team-dialog")), tform = $("#team-form");
    const mdlg = setupDialog($("#member-dialog")), mform = $("#member-form");
    const udlg = setupDialog($("#user-dialog")), uform = $("#user-form");
    let teamsList = [], users = [];
    async function load() {
      try { teamsList = await teamList(); renderTeams(); } catch (e) { failed(e); }
      try {
        users = listOf(await get("/user/list?page_size=100"));
        renderUsers();
      } catch (e) { failed(e); empty($("#users-table tbody"), 6, "Users cannot be listed: " + e.message); }
    }
    async function act(what, fn) { try { await fn(); status(what); await load(); } catch (e) { failed(e); } }
    function members(t) { return t.members_with_roles || []; }
    function renderTeams() {
      const tb = $("#teams-table tbody");
      if (!teamsList.length) return empty(tb, 7, "No teams yet.");
      tb.replaceChildren(...teamsList.map((t) => {
        const name = t.team_alias || t.team_id;
        return h("tr", {},
          td("Alias", name),
          td("Team id", h("code", {}, t.team_id)),
          td("Members", members(t).length ? members(t).map((m) => `${m.user_id || m.user_email} (${m.role})`).join(", ") : "–"),
          td("Models", t.models && t.models.length ? t.models.join(", ") : "all"),
          td("Spend / budget", budgetText(t), "num"),
          td("Limits", limitsText(t)),
          td("Actions", [
            h("button", { type: "button", class: "small", "aria-label": "Members of " + name, onclick: () => openMembers(t) }, "Members"), " ",
            h("button", { type: "button", class: "small", "aria-label": "Edit " + name, onclick: () => openTeam(t) }, "Edit"), " ",
            h("button", { type: "button", class: "small danger", "aria-label": "Delete " + name, onclick: () => { if (confirm(`Delete team ${name}?`)) act("Team deleted.", () => post("/team/delete", { team_ids: [t.team_id] })); } }, "Delete"),
          ], "actions"));
      }));
    }
    function teamsOf(u) {
      if (Array.isArray(u.teams) && u.teams.length) return u.teams.map((x) => (typeof x === "string" ? x : x.team_alias || x.team_id)).join(", ");
      const ts = teamsList.filter((t) => members(t).some((m) => m.user_id === u.user_id));
      return ts.map((t) => t.team_alias || t.team_id).join(", ") || "–";
    }
    function renderUsers() {
      const tb = $("#users-table tbody");
      if (!users.length) return empty(tb, 6, "No users yet.");
      tb.replaceChildren(...users.map((u) => h("tr", {},
        td("User id", h("code", {}, u.user_id)),
        td("Email", u.user_email || "–"),
        td("Role", u.user_role || "–"),
        td("Teams", teamsOf(u)),
        td("Spend / budget", budgetText(u), "num"),
        td("Actions", [
          h("button", { type: "button", class: "small", "aria-label": "Edit user " + u.user_id, onclick: () => openUser(u) }, "Edit"), " ",
          h("button", { type: "button", class: "small danger", "aria-label": "Delete user " + u.user_id, onclick: () => { if (confirm(`Delete user ${u.user_id}?`)) act("User deleted.", () => post("/user/delete", { user_ids: [u.user_id] })); } }, "Delete"),
        ], "actions"))));
    }
    async function openTeam(t) {
      setOptions($("#t-models"), (await modelNames()).map((n) => [n, n]));
      fill(tform, t || {});
      tform.elements.team_id.value = t ? t.team_id : "";
      $("#team-dialog-title").textContent = t ? "Edit " + (t.team_alias || t.team_id) : "Create team";
      formError(tform, "");
      tdlg.showModal();
    }
    tform.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = formBody(tform), editing = !!body.team_id;
      if (editing) for (const n of ["max_budget", "budget_duration", "rpm_limit", "tpm_limit"]) if (!(n in body)) body[n] = null;
      try { await post(editing ? "/team/update" : "/team/new", body); tdlg.close(); status(editing ? "Team updated." : "Team created."); await load(); }
      catch (e) { formError(tform, e.message); }
    });
    function renderMembers(t) {
      const ul = $("#member-list");
      const ms = members(t);
      ul.replaceChildren(...(ms.length ? ms.map((m) => h("li", {}, `${m.user_id || m.user_email} (${m.role})`,
        h("button", { type: "button", class: "small danger", "aria-label": "Remove " + m.user_id, onclick: async () => {
          try { await post("/team/member_delete", { team_id: t.team_id, user_id: m.user_id }); await load(); const nt = teamsList.find((x) => x.team_id === t.team_id); if (nt) renderMembers(nt); }
          catch (e) { formError(mform, e.message); }
        } }, "Remove"))) : [h("li", { class: "hint" }, "No members yet.")]));
    }
    function openMembers(t) {
      mform.reset();
      mform.elements.team_id.value = t.team_id;
      $("#member-dialog-title").textContent = "Members of " + (t.team_alias || t.team_id);
      formError(mform, "");
      renderMembers(t);
      mdlg.showModal();
    }
    mform.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const b = formBody(mform);
      if (!b.user_id) return formError(mform, "Enter a user id.");
      try {
        await post("/team/member_add", { team_id: b.team_id, member: [{ role: b.role || "user", user_id: b.user_id }] });
        await load();
        const nt = teamsList.find((x) => x.team_id === b.team_id);
        if (nt) renderMembers(nt);
        mform.elements.user_id.value = "";
        formError(mform, "");
      } catch (e) { formError(mform, e.message); }
    });
    function openUser(u) {
      fill(uform, u || {});
      uform.elements.user_id.readOnly = !!u;
      uform.dataset.editing = u ? "1" : "";
      $("#user-dialog-title").textContent = u ? "Edit user " + u.user_id : "Create user";
      formError(uform, "");
      udlg.showModal();
    }
    uform.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = formBody(uform), editing = !!uform.dataset.editing;
      if (editing && !("max_budget" in body)) body.max_budget = null;
      try {
        const r = await post(editing ? "/user/update" : "/user/new", body);
        udlg.close();
        status(editing ? "User updated." : "User created." + (r && r.key ? " A key was created for them: " + r.key + " (shown once)." : ""));
        await load();
      } catch (e) { formError(uform, e.message); }
    });
    $("#team-new").addEventListener("click", () => openTeam(null));
    $("#user-new").addEventListener("click", () => openUser(null));
    load();
  }

  // ---- logs ----------------------------------------------------------------
  function logs() {
    const dlg = setupDialog($("#log-dialog")), form = $("#log-filters");
    let shown = null;
    modelNames().then((ns) => $("#model-names").replaceChildren(...ns.map((n) => h("option", { value: n }))));
    function query() {
      const p = new URLSearchParams();
      for (const name of ["key", "model", "status"]) { const v = form.elements[name].value.trim(); if (v) p.set(name, v); }
      for (const name of ["since", "until"]) { const v = form.elements[name].value; if (v) p.set(name, String(new Date(v).getTime())); }
      p.set("limit", "200");
      return p.toString();
    }
    function open(r) {
      $("#log-dialog-title").textContent = "Request " + short(r.request_id, 24);
      const rows = [
        ["Request id", r.request_id], ["Status", r.status], ["Call type", r.call_type], ["Started", when(r.startTime)], ["Ended", when(r.endTime)],
        ["Latency", ms(r.latency_ms)], ["Model group", r.model_group], ["Upstream model", r.model], ["Deployment", r.model_id], ["Provider", r.custom_llm_provider],
        ["API base", r.api_base], ["Key", r.key_label || r.api_key || "master key"], ["Key hash", r.api_key], ["User", r.user], ["Team", r.team_id], ["End user", r.end_user],
        ["Prompt tokens", num(r.prompt_tokens)], ["Completion tokens", num(r.completion_tokens)], ["Total tokens", num(r.total_tokens)], ["Cost", money(r.spend)],
        ["Cache hit", r.cache_hit ? "yes" : "no"], ["Tags", (r.request_tags || []).join(", ")],
      ].filter(([, v]) => v !== null && v !== undefined && v !== "");
      $("#log-detail").replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
      $("#log-meta").textContent = r.metadata && Object.keys(r.metadata).length ? JSON.stringify(r.metadata, null, 2) : "(none)";
      // Stored prompts (store_prompts_in_spend_logs): fetched for this call
      // only, shown as text (user content: never parsed as HTML).
      const box = $("#log-content");
      box.hidden = true;
      $("#log-messages").textContent = "";
      $("#log-response").textContent = "";
      shown = r.request_id;
      dlg.showModal();
      get("/ui/api/logs?limit=1&request_id=" + encodeURIComponent(r.request_id)).then((d) => {
        const full = d && d.logs && d.logs[0];
        if (shown !== r.request_id || !full || (full.messages == null && full.response == null)) return;
        const text = (v) => (v == null ? "(not stored)" : typeof v === "string" ? v : JSON.stringify(v, null, 2));
        $("#log-messages").textContent = text(full.messages);
        $("#log-response").textContent = text(full.response);
        box.hidden = false;
      }).catch(failed);
    }
    async function load() {
      const tb = $("#logs-table tbody");
      let data;
      try { data = await get("/ui/api/logs?" + query()); } catch (e) { return failed(e); }
      if (!data.store) return empty(tb, 7, "No database is configured: request logs need one (general_settings.database_url).");
      if (!data.logs.length) return empty(tb, 7, "No requests match.");
      tb.replaceChildren(...data.logs.map((r) => h("tr", { class: "clickable", onclick: (ev) => { if (ev.target.tagName !== "BUTTON") open(r); } },
        td("Time", h("button", { type: "button", onclick: () => open(r), "aria-label": "Details of the request at " + when(r.start_ms) }, when(r.start_ms))),
        td("Status", r.status === "success" ? badge("success", "ok") : badge(r.status, "bad")),
        td("Model", r.model_group || r.model),
        td("Key", r.key_label || short(r.api_key) || "master key"),
        td("Tokens", num(r.total_tokens), "num"),
        td("Cost", money(r.spend), "num"),
        td("Latency", ms(r.latency_ms), "num"))));
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    form.addEventListener("reset", () => setTimeout(load, 0));
    every(10000, load);
  }

  // ---- usage ---------------------------------------------------------------
  function usage() {
    const form = $("#usage-form");
    async function load() {
      const by = form.elements.by.value, days = form.elements.days.value;
      const qs = `by=${encodeURIComponent(by)}&days=${encodeURIComponent(days)}`;
      $("#usage-csv").href = "/ui/api/usage.csv?" + qs;
      $("#usage-group-h").textContent = by[0].toUpperCase() + by.slice(1);
      let data;
      try { data = await get("/ui/api/usage?" + qs); } catch (e) { return failed(e); }
      const tb = $("#usage-table tbody");
      if (!data.store) { empty(tb, 4, "No database is configured: usage needs one (general_settings.database_url)."); return; }
      const totals = data.days.map((_, i) => data.groups.reduce((a, g) => a + (g.per_day[i] || 0), 0));
      FLCharts.bars($("#usage-chart"), data.days.map((d) => d.slice(5)), [{ name: "spend", values: totals, cls: "s3" }], (v) => "$" + (v >= 1 ? compact(v) : Number(v.toPrecision(2))), { height: 190 });
      if (!data.groups.length) return empty(tb, 4, "No spend in this period.");
      tb.replaceChildren(...data.groups.map((g) => h("tr", {},
        td("Group", g.label || g.group || "(none)"), td("Spend", money(g.spend), "num"), td("Requests", num(g.requests), "num"), td("Tokens", num(g.total_tokens), "num"))));
    }
    form.addEventListener("change", load);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    load();
  }

  const pages = { overview, models, keys, teams, logs, usage };
  if (pages[page]) pages[page]();
})();
