// The admin UI's one way to change anything: forms and buttons marked data-api send
// JSON to the admin API with the session's CSRF token, then show the API's errors
// beside the fields they point at. No inline script (CSP); page scripts use
// window.RolegateAdmin.
"use strict";
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  // Calls the admin API; resolves to {ok, status, body, etag} whatever the status.
  async function api(method, path, body, headers = {}) {
    const init = { method, credentials: "same-origin", headers: { "Accept": "application/json", ...headers } };
    if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      return { ok: false, status: 0, body: { error: { code: "NETWORK", message: "The server could not be reached: " + error.message } } };
    }
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch (_) { parsed = { error: { code: "NOT_JSON", message: text.slice(0, 300) } }; }
    return { ok: response.ok, status: response.status, body: parsed, etag: response.headers.get("ETag") };
  }

  function flash(message, bad) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.classList.toggle("bad", !!bad);
    box.hidden = false;
  }

  // A field's JSON pointer: data-pointer, else its dotted name as /a/b.
  function pointerOf(field) {
    if (field.dataset.pointer !== undefined) return field.dataset.pointer;
    if (!field.name || field.name === "@body") return "";
    return "/" + field.name.split(".").join("/");
  }

  function clearErrors(form) {
    for (const old of form.querySelectorAll(".field-error")) old.remove();
    for (const old of form.querySelectorAll(".invalid")) {
      old.classList.remove("invalid");
      old.removeAttribute("aria-invalid");
    }
    const general = form.querySelector(".form-error");
    if (general) { general.textContent = ""; general.hidden = true; }
  }

  // Puts each of the API's errors beside the field its pointer falls in (the
  // longest matching pointer wins); the rest go to the form's .form-error.
  function showErrors(form, body) {
    clearErrors(form);
    const errors = body?.errors?.length ? body.errors : (body?.error ? [body.error] : [{ message: "The change was not accepted." }]);
    const fields = [...form.querySelectorAll("[name]")].filter((f) => f.type !== "hidden" || f.dataset.pointer);
    const leftover = [];
    for (const error of errors) {
      const pointer = error.pointer;
      let best = null;
      if (typeof pointer === "string") {
        for (const field of fields) {
          const own = pointerOf(field);
          if (pointer === own || pointer.startsWith(own + "/") || own === "") {
            if (!best || own.length > pointerOf(best).length) best = field;
          }
        }
      }
      if (!best) { leftover.push(error); continue; }
      best.classList.add("invalid");
      best.setAttribute("aria-invalid", "true");
      const note = document.createElement("span");
      note.className = "field-error";
      note.setAttribute("role", "alert");
      const where = pointer && pointer !== pointerOf(best) ? ` (at ${pointer})` : "";
      note.textContent = `${error.message}${where}`;
      note.dataset.code = error.code || "";
      best.insertAdjacentElement("afterend", note);
    }
    if (leftover.length) {
      let general = form.querySelector(".form-error");
      if (!general) {
        general = document.createElement("p");
        general.className = "form-error";
        general.setAttribute("role", "alert");
        form.prepend(general);
      }
      general.textContent = leftover.map((e) => e.message + (e.pointer ? ` (at ${e.pointer})` : "")).join(" ");
      general.hidden = false;
    }
  }

  function setPath(target, path, value) {
    const keys = path.split(".");
    let at = target;
    for (const key of keys.slice(0, -1)) {
      if (typeof at[key] !== "object" || at[key] === null) at[key] = {};
      at = at[key];
    }
    at[keys[keys.length - 1]] = value;
  }

  class FieldError extends Error {
    constructor(field, message) { super(message); this.field = field; }
  }

  // The JSON body of a form: each named field by its data-kind.
  function bodyOf(form) {
    let body = {};
    for (const field of form.querySelectorAll("[name]")) {
      if (field.disabled || field.name === "csrf" || field.dataset.kind === "skip") continue;
      const kind = field.dataset.kind || "string";
      let value;
      if (kind === "bool") value = field.checked;
      else if (field.type === "radio") { if (!field.checked) continue; value = field.value; }
      else {
        const raw = field.value;
        if (raw.trim() === "" && field.dataset.optional !== undefined) continue;
        if (kind === "number") value = Number(raw);
        else if (kind === "list") value = raw.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
        else if (kind === "json") {
          try { value = JSON.parse(raw); } catch (error) { throw new FieldError(field, "Not valid JSON: " + error.message); }
        } else value = raw;
      }
      if (field.name === "@body") body = value;
      else setPath(body, field.name, value);
    }
    return body;
  }

  function pretty(value) { return JSON.stringify(value, null, 2); }

  // Someone else saved first: both versions side by side, nothing overwritten.
  async function showStale(form, yours) {
    let panel = form.querySelector(".stale-panel");
    if (!panel) {
      panel = document.createElement("section");
      panel.className = "card stale stale-panel";
      panel.setAttribute("role", "alert");
      form.prepend(panel);
    }
    const current = form.dataset.current ? await api("GET", form.dataset.current) : null;
    panel.replaceChildren();
    const title = document.createElement("h3");
    title.textContent = "Someone else saved a change first";
    const hint = document.createElement("p");
    hint.textContent = "Nothing was saved. Compare the two versions, then reload to edit the current one.";
    const columns = document.createElement("div");
    columns.className = "columns";
    for (const [label, value] of [["Saved meanwhile", current?.body], ["Your edit", yours]]) {
      const column = document.createElement("div");
      const heading = document.createElement("h4");
      heading.textContent = label;
      const pre = document.createElement("pre");
      pre.className = label === "Your edit" ? "stale-yours" : "stale-theirs";
      pre.textContent = pretty(value);
      column.append(heading, pre);
      columns.append(column);
    }
    const reload = document.createElement("button");
    reload.type = "button";
    reload.textContent = "Reload the current version";
    reload.addEventListener("click", () => location.reload());
    panel.append(title, hint, columns, reload);
    panel.scrollIntoView({ block: "start" });
  }

  function withQuery(path, key, value) {
    const url = new URL(path, location.href);
    url.searchParams.set(key, value);
    return url.pathname + url.search;
  }

  // What happens after a success: data-then="reload" (default), "go:/path", "none".
  function after(element, result) {
    element.dispatchEvent(new CustomEvent("admin:done", { bubbles: true, detail: result }));
    const then = element.dataset.then || "reload";
    if (element.dataset.done) sessionStorage.setItem("rolegate.flash", element.dataset.done);
    if (then === "reload") location.reload();
    else if (then.startsWith("go:")) location.assign(then.slice(3).replace("{id}", encodeURIComponent(result.body?.id ?? "")));
    else if (element.dataset.done) { flash(element.dataset.done); sessionStorage.removeItem("rolegate.flash"); }
  }

  // Sends one change; handles the lock-out guard's confirmation and stale edits.
  async function send(element, method, path, body, onError) {
    const headers = element.dataset.ifMatch ? { "If-Match": element.dataset.ifMatch } : {};
    let result = await api(method, path, body, headers);
    if (result.status === 409 && result.body?.error?.code === "LOCKOUT_RISK") {
      if (window.confirm(result.body.error.message + "\n\nDo it anyway? You may lose access to these admin pages.")) {
        result = await api(method, withQuery(path, "confirm_lockout", "true"), body, headers);
      }
    }
    if (result.ok) after(element, result);
    else onError(result);
    return result;
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.dataset.api === undefined) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    let body;
    try {
      body = bodyOf(form);
    } catch (error) {
      if (!(error instanceof FieldError)) throw error;
      clearErrors(form);
      showErrors(form, { error: { message: error.message, pointer: pointerOf(error.field) } });
      return;
    }
    const method = (form.dataset.method || "POST").toUpperCase();
    const submit = form.querySelector('[type="submit"]');
    if (submit) submit.disabled = true;
    clearErrors(form);
    await send(form, method, form.dataset.api, method === "DELETE" && !Object.keys(body).length ? undefined : body, (result) => {
      if (result.status === 412) showStale(form, body);
      else showErrors(form, result.body);
    });
    if (submit) submit.disabled = false;
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-api]");
    if (!button || button.form?.dataset.api !== undefined) return;
    event.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    let body;
    if (button.dataset.body) body = JSON.parse(button.dataset.body);
    await send(button, (button.dataset.method || "POST").toUpperCase(), button.dataset.api, body, (result) => {
      flash(result.body?.error?.message || `The change was not accepted (${result.status}).`, true);
    });
    button.disabled = false;
  });

  const pending = sessionStorage.getItem("rolegate.flash");
  if (pending) { sessionStorage.removeItem("rolegate.flash"); flash(pending); }

  window.RolegateAdmin = { api, flash, showErrors, clearErrors, bodyOf, pretty, FieldError, pointerOf };
})();
