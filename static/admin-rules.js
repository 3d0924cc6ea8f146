// Mapping rules: the draft (kept in this browser until published), the editor with
// its live test panel, and the review before publishing. Every check is the admin
// API's: saving to the draft asks /ruleset/impact (which validates the whole
// draft), the test panel asks /mapping-rules/test, publishing PUTs /ruleset with
// If-Match on the version the draft started from.
"use strict";
(() => {
  const A = window.RolegateAdmin;
  const data = document.getElementById("rules-data");
  if (!A || !data) return;
  const API = "/admin/api/v1";
  const KEY = "rolegate.rules.draft";
  const version = Number(data.dataset.version);
  const published = JSON.parse(data.dataset.published || "[]");

  function loadDraft() {
    try {
      const draft = JSON.parse(localStorage.getItem(KEY));
      if (draft && Array.isArray(draft.rules) && Number.isInteger(draft.base)) return draft;
    } catch (_) { /* no draft */ }
    return null;
  }
  const saveDraft = (draft) => localStorage.setItem(KEY, JSON.stringify(draft));
  const clearDraft = () => localStorage.removeItem(KEY);

  // Key order does not make two rules differ.
  function canonical(value) {
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
    }
    return value;
  }
  const same = (a, b) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
  const byId = (rules) => new Map(rules.map((r) => [r.id, r]));

  function changesOf(draft) {
    const before = byId(published);
    const after = byId(draft.rules);
    const out = { added: [], removed: [], changed: [] };
    for (const [id, rule] of after) {
      if (!before.has(id)) out.added.push(id);
      else if (!same(before.get(id), rule)) out.changed.push(id);
    }
    for (const id of before.keys()) if (!after.has(id)) out.removed.push(id);
    return out;
  }
  const count = (c) => c.added.length + c.removed.length + c.changed.length;

  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  };

  // ---- The rule list: the draft's state beside each rule.
  function listPage() {
    const banner = document.getElementById("draft-banner");
    const draft = loadDraft();
    const filter = document.getElementById("rule-filter");
    filter?.addEventListener("input", () => {
      const q = filter.value.trim().toLowerCase();
      for (const row of document.querySelectorAll("#rule-list tbody tr")) {
        row.hidden = q && !row.dataset.search.toLowerCase().includes(q);
      }
    });
    if (!draft) return;
    const c = changesOf(draft);
    if (!count(c)) return;
    banner.hidden = false;
    const stale = draft.base !== version ? ` It started from version ${draft.base}; version ${version} is in force now.` : "";
    document.getElementById("draft-summary").textContent =
      `Your draft changes ${count(c)} rule(s): ${c.added.length} new, ${c.changed.length} changed, ${c.removed.length} removed.${stale}`;
    for (const row of document.querySelectorAll("#rule-list tbody tr")) {
      const id = row.dataset.rule;
      const cell = row.querySelector(".draft-state");
      if (c.changed.includes(id)) cell.append(el("span", "changed", "tag"));
      if (c.removed.includes(id)) cell.append(el("span", "removed", "tag loss"));
    }
    if (c.added.length) {
      document.getElementById("draft-only").hidden = false;
      const list = document.getElementById("draft-only-list");
      for (const id of c.added) {
        const item = el("li");
        const link = el("a", id);
        link.href = `/admin/rules/${encodeURIComponent(id)}`;
        item.append(link, " ", el("span", "new", "tag gain"));
        list.append(item);
      }
    }
    document.getElementById("discard-draft").addEventListener("click", () => {
      if (!window.confirm("Discard every change in your draft?")) return;
      clearDraft();
      location.reload();
    });
  }

  // ---- The editor.
  const JSON_FIELDS = ["when", "grant", "target", "session", "for_each", "valid"];
  const NEW_RULE = {
    id: "", name: "", effect: "grant", source: ["directory"], priority: 100, enabled: true,
    when: { claim: "groups", op: "contains_any", values: [] }, grant: [],
  };

  function fill(form, rule) {
    form.elements.id.value = rule.id || "";
    form.elements.name.value = rule.name || "";
    form.elements.effect.value = rule.effect || "grant";
    form.elements.source.value = rule.source === "any" ? "any" : (rule.source || []).join(", ");
    form.elements.priority.value = rule.priority ?? 100;
    form.elements.enabled.checked = rule.enabled !== false;
    form.elements.description.value = rule.description || "";
    for (const name of JSON_FIELDS) {
      form.elements[name].value = rule[name] === undefined ? "" : A.pretty(rule[name]);
    }
    if (["target", "session", "for_each", "valid"].some((n) => rule[n] !== undefined)) {
      form.querySelector("details").open = true;
    }
  }

  function ruleOf(form) {
    const rule = A.bodyOf(form);
    if (Array.isArray(rule.source) && rule.source.length === 1 && rule.source[0] === "any") rule.source = "any";
    return rule;
  }

  // The API's errors about the whole draft, pointed back into this form's rule.
  function errorsForRule(body, index, id) {
    const all = body?.errors?.length ? body.errors : (body?.error ? [body.error] : []);
    const own = `/rules/${index}`;
    return all.map((e) => {
      const pointer = e.pointer || "";
      if (pointer === own || pointer.startsWith(own + "/")) return { ...e, pointer: pointer.slice(own.length) };
      const other = /^\/rules\/(\d+)/.exec(pointer);
      return { code: e.code, message: other ? `Another rule in your draft: ${e.message}` : e.message };
    }).map((e) => ({ ...e, message: e.message.replace(`rule ${id}`, "this rule") }));
  }

  function editorPage() {
    const form = document.getElementById("rule-form");
    const originalId = data.dataset.ruleId || "";
    const draft = loadDraft();
    const working = draft ? draft.rules : published;
    let rule = originalId ? working.find((r) => r.id === originalId) : NEW_RULE;
    if (!rule) {
      document.getElementById("rule-missing").hidden = false;
      rule = { ...NEW_RULE, id: originalId };
    }
    fill(form, rule);
    const remove = document.getElementById("remove-rule");
    remove.hidden = !originalId;

    const candidate = (edited) => {
      const rules = working.filter((r) => r.id !== originalId);
      const at = working.findIndex((r) => r.id === originalId);
      if (at >= 0) rules.splice(at, 0, edited); else rules.push(edited);
      return { rules, index: at >= 0 ? at : rules.length - 1 };
    };
    const keep = (rules, message) => {
      saveDraft({ base: draft ? draft.base : version, rules });
      sessionStorage.setItem("rolegate.flash", message);
      location.assign("/admin/rules");
    };

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let edited;
      try { edited = ruleOf(form); } catch (error) {
        if (!(error instanceof A.FieldError)) throw error;
        A.showErrors(form, { error: { message: error.message, pointer: A.pointerOf(error.field) } });
        return;
      }
      const { rules, index } = candidate(edited);
      const result = await A.api("POST", `${API}/ruleset/impact`, { rules });
      if (!result.ok) {
        A.showErrors(form, { errors: errorsForRule(result.body, index, edited.id) });
        return;
      }
      keep(rules, `Rule ${edited.id} saved to your draft. Review and publish it to put it in force.`);
    });
    remove.addEventListener("click", () => {
      if (!window.confirm(`Remove rule ${originalId} from your draft? It stays in force until you publish.`)) return;
      keep(working.filter((r) => r.id !== originalId), `Rule ${originalId} removed from your draft.`);
    });

    // The test panel.
    const select = document.getElementById("test-sign-in");
    const source = document.getElementById("test-source");
    const claims = document.getElementById("test-claims");
    const result = document.getElementById("test-result");
    select.addEventListener("change", () => {
      const option = select.selectedOptions[0];
      if (!option?.dataset.claims) return;
      source.value = option.dataset.source;
      claims.value = A.pretty(JSON.parse(option.dataset.claims));
    });
    document.getElementById("run-test").addEventListener("click", async () => {
      result.replaceChildren();
      let edited;
      let given;
      try {
        edited = ruleOf(form);
        given = JSON.parse(claims.value || "{}");
      } catch (error) {
        result.append(el("p", error.message, "error"));
        return;
      }
      const { rules, index } = candidate(edited);
      const answer = await A.api("POST", `${API}/mapping-rules/test`, {
        source: source.value.trim(), claims: given, rules, explain: edited.id,
      });
      if (!answer.ok) {
        A.showErrors(form, { errors: errorsForRule(answer.body, index, edited.id) });
        result.append(el("p", "The rule has errors; see the form.", "error"));
        return;
      }
      showEvaluation(result, answer.body, edited.id);
    });
  }

  function conditionItem(report) {
    const item = el("li", undefined, report.held ? "held" : "not-held");
    item.append(el("span", report.held ? "✓ held" : "✗ did not hold", report.held ? "ok" : "bad"), " ");
    if (report.claim !== undefined) {
      item.append(el("code", `${report.claim} ${report.kind} ${JSON.stringify(report.values)}`));
      if (report.matched?.length) item.append(` matched ${report.matched.join(", ")}`);
      if (report.near_miss) item.append(el("div", `Near miss: ${report.near_miss}`, "muted near-miss"));
    } else {
      item.append(el("code", report.kind));
    }
    if (report.children?.length) {
      const list = el("ul");
      for (const child of report.children) list.append(conditionItem(child));
      item.append(list);
    }
    return item;
  }

  function showEvaluation(box, evaluation, id) {
    const skipped = (evaluation.not_applied || []).find((n) => n.rule === id);
    const verdict = el("p", undefined, skipped ? "bad" : "ok");
    verdict.id = "test-verdict";
    verdict.textContent = skipped
      ? `This rule did not apply: ${skipped.reason}.${skipped.near_miss ? " " + skipped.near_miss : ""}`
      : "This rule applies to these claims.";
    box.append(verdict);
    if (evaluation.conditions) {
      box.append(el("h3", "Conditions"));
      const tree = el("ul");
      tree.id = "test-conditions";
      tree.append(conditionItem(evaluation.conditions));
      box.append(tree);
    }
    box.append(el("h3", "Roles these claims get from the draft"));
    if (!evaluation.entitlements?.length) box.append(el("p", "None.", "muted"));
    else {
      const list = el("ul");
      list.id = "test-roles";
      for (const e of evaluation.entitlements) {
        const why = e.granted_by.map((g) => `${g.rule}${g.matched.length ? " (" + g.matched.join(", ") + ")" : ""}`).join("; ");
        const item = el("li", `${e.account} / ${e.role} — by ${why}`);
        if (e.granted_by.some((g) => g.rule === id)) item.classList.add("from-this-rule");
        list.append(item);
      }
      box.append(list);
    }
    for (const r of evaluation.removed || []) {
      box.append(el("p", `${r.account} / ${r.role} removed by ${r.denied_by.join(", ")}`, "bad"));
    }
    for (const w of evaluation.warnings || []) box.append(el("p", `Warning (${w.code}): ${w.message}`, "bad"));
  }

  // ---- The review.
  // Lines of `a` and `b` as a line diff (longest common subsequence).
  function lineDiff(a, b) {
    const x = a.split("\n");
    const y = b.split("\n");
    const dp = Array.from({ length: x.length + 1 }, () => new Array(y.length + 1).fill(0));
    for (let i = x.length - 1; i >= 0; i--) {
      for (let j = y.length - 1; j >= 0; j--) {
        dp[i][j] = x[i] === y[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
      }
    }
    const out = [];
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      if (i < x.length && j < y.length && x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
      else if (j < y.length && (i === x.length || dp[i][j + 1] >= dp[i + 1][j])) { out.push(["+", y[j]]); j++; }
      else { out.push(["-", x[i]]); i++; }
    }
    return out;
  }

  function diffBlock(before, after) {
    const pre = el("pre", undefined, "code diff");
    for (const [mark, line] of lineDiff(before === undefined ? "" : A.pretty(before), after === undefined ? "" : A.pretty(after))) {
      if (mark === " " && (before === undefined || after === undefined)) continue;
      const span = el("span", `${mark} ${line}`, mark === "+" ? "diff-add" : mark === "-" ? "diff-del" : "");
      pre.append(span);
    }
    return pre;
  }

  function reviewPage() {
    const draft = loadDraft();
    const c = draft ? changesOf(draft) : null;
    if (!draft || !count(c)) {
      document.getElementById("no-draft").hidden = false;
      return;
    }
    document.getElementById("review").hidden = false;
    document.getElementById("review-base").textContent = draft.base === version
      ? `Your draft is based on version ${draft.base}, the version in force.`
      : `Your draft is based on version ${draft.base}, but version ${version} is in force now: someone published meanwhile. Publishing will show both and save nothing.`;
    const before = byId(published);
    const after = byId(draft.rules);
    const diff = document.getElementById("rule-diff");
    for (const [label, ids] of [["New", c.added], ["Changed", c.changed], ["Removed", c.removed]]) {
      for (const id of ids) {
        const section = el("section", undefined, "rule-change");
        section.dataset.rule = id;
        section.append(el("h3", `${label}: ${id}`), diffBlock(before.get(id), after.get(id)));
        diff.append(section);
      }
    }
    const form = document.getElementById("publish-form");
    form.elements.rules.value = JSON.stringify(draft.rules);
    form.dataset.ifMatch = `"v${draft.base}"`;
    form.addEventListener("admin:done", clearDraft);
    impact(draft.rules);
  }

  async function impact(rules) {
    const box = document.getElementById("impact");
    const answer = await A.api("POST", `${API}/ruleset/impact`, { rules });
    box.replaceChildren();
    if (!answer.ok) {
      box.append(el("p", `The draft is not valid: ${answer.body?.error?.message || answer.status}`, "error"));
      document.getElementById("publish").disabled = true;
      return;
    }
    const people = answer.body.people || [];
    if (!people.length) {
      box.append(el("p", "Nobody who signed in recently gains or loses a role.", "muted"));
      return;
    }
    const table = el("table", undefined, "data");
    table.id = "impact-table";
    const head = el("tr");
    for (const h of ["Person", "Source", "Gains", "Loses"]) head.append(el("th", h));
    table.append(el("thead"), el("tbody"));
    table.tHead.append(head);
    const roles = (list, cls) => {
      const cell = el("td");
      for (const r of list) cell.append(el("span", `${r.account}/${r.role}`, `tag ${cls}`), " ");
      return cell;
    };
    for (const p of people) {
      const row = el("tr");
      row.dataset.person = p.user_name;
      row.append(el("td", p.user_name), el("td", p.source), roles(p.gains, "gain"), roles(p.loses, "loss"));
      table.tBodies[0].append(row);
    }
    box.append(table);
  }

  if (document.getElementById("rule-form")) editorPage();
  else if (document.getElementById("publish-form")) reviewPage();
  else if (document.getElementById("rule-list")) listPage();
})();
