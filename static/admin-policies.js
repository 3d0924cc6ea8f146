// The policy editor: each .policy-editor's textarea is checked by the server's
// validator (POST /admin/api/v1/policies/validate) 400 ms after the last keystroke.
// An error is shown with its line and column, its line is marked in the gutter, a
// button puts the caret there, and the form's Save stays disabled until the
// document is valid. Also: the "attach to role" form sends to the chosen role.
"use strict";
(() => {
  const admin = window.RolegateAdmin;
  if (!admin) return;
  const DELAY_MS = 400;

  // The offset in `text` of a 1-based line and column.
  function offsetOf(text, line, column) {
    const lines = text.split("\n");
    let offset = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
    return Math.min(offset + Math.max(column - 1, 0), text.length);
  }

  function setupEditor(box) {
    const textarea = box.querySelector("textarea");
    const gutter = box.querySelector(".editor-gutter");
    const status = box.querySelector(".editor-status");
    const form = box.closest("form");
    const save = form ? form.querySelector('[type="submit"]') : null;
    let timer = null;
    let sequence = 0;
    let errorLine = null;
    let valid = false;

    function drawGutter() {
      const count = textarea.value.split("\n").length;
      gutter.replaceChildren();
      for (let n = 1; n <= count; n++) {
        const line = document.createElement("span");
        line.textContent = String(n);
        if (n === errorLine) line.className = "error-line";
        gutter.append(line, "\n");
      }
      gutter.scrollTop = textarea.scrollTop;
    }

    function setSave(enabled) {
      if (save) save.disabled = !enabled;
    }

    function customer() {
      const field = box.dataset.customerField;
      if (field && form) {
        const input = form.querySelector(`[name="${field}"]`);
        if (input) return input.value.trim() !== "";
      }
      return box.dataset.customer === "true";
    }

    function showValid(body) {
      valid = true;
      errorLine = null;
      box.classList.remove("has-error");
      textarea.removeAttribute("aria-invalid");
      status.replaceChildren();
      const ok = document.createElement("p");
      ok.className = "ok editor-valid";
      ok.textContent = "Valid policy.";
      status.append(ok);
      const warnings = body?.warnings || [];
      if (warnings.length) {
        const list = document.createElement("ul");
        list.className = "editor-warnings";
        for (const warning of warnings) {
          const item = document.createElement("li");
          const where = warning.line ? ` (line ${warning.line}, column ${warning.column})` : "";
          item.textContent = `Warning: ${warning.message}${where}`;
          list.append(item);
        }
        status.append(list);
      }
      setSave(true);
      drawGutter();
    }

    function showInvalid(error) {
      valid = false;
      const location = error.location || {};
      errorLine = location.line || null;
      box.classList.add("has-error");
      textarea.setAttribute("aria-invalid", "true");
      status.replaceChildren();
      const message = document.createElement("p");
      message.className = "bad editor-error";
      message.textContent = error.message || "The document is not a valid policy.";
      status.append(message);
      if (location.line) {
        const where = document.createElement("p");
        where.className = "editor-where";
        const note = document.createElement("span");
        note.className = "editor-location";
        note.textContent = `Line ${location.line}, column ${location.column || 1}`;
        where.append(note);
        if (location.pointer) {
          const pointer = document.createElement("code");
          pointer.textContent = location.pointer;
          where.append(" at ", pointer);
        }
        const go = document.createElement("button");
        go.type = "button";
        go.className = "secondary editor-go";
        go.textContent = `Go to line ${location.line}, column ${location.column || 1}`;
        go.addEventListener("click", () => {
          const at = offsetOf(textarea.value, location.line, location.column || 1);
          textarea.focus();
          textarea.setSelectionRange(at, at);
        });
        where.append(" ", go);
        status.append(where);
      } else if (location.pointer !== undefined) {
        const where = document.createElement("p");
        where.className = "editor-where";
        where.textContent = `At ${location.pointer || "the whole document"}`;
        status.append(where);
      }
      setSave(false);
      drawGutter();
    }

    async function validate() {
      const mine = ++sequence;
      const query = new URLSearchParams({ kind: box.dataset.policyKind || "identity", customer: String(customer()) });
      const result = await admin.api("POST", `${box.dataset.validate}?${query}`, textarea.value);
      if (mine !== sequence) return; // a newer edit is being checked
      if (result.ok) showValid(result.body);
      else if (result.status === 422 && result.body?.error) showInvalid(result.body.error);
      else {
        status.textContent = result.body?.error?.message || `The document could not be checked (${result.status}).`;
        setSave(false);
      }
    }

    function changed() {
      valid = false;
      setSave(false);
      clearTimeout(timer);
      timer = setTimeout(validate, DELAY_MS);
      drawGutter();
    }

    textarea.addEventListener("input", changed);
    textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; });
    const customerField = box.dataset.customerField && form ? form.querySelector(`[name="${box.dataset.customerField}"]`) : null;
    if (customerField) customerField.addEventListener("change", changed);
    // admin.js enables Save again after a refused save; an invalid document keeps it off.
    if (save) {
      new MutationObserver(() => { if (!valid && !save.disabled) setSave(false); })
        .observe(save, { attributes: true, attributeFilter: ["disabled"] });
    }
    setSave(false);
    drawGutter();
    validate();
  }

  for (const box of document.querySelectorAll(".policy-editor")) setupEditor(box);

  // A new inline policy: the form sends to the path with the name typed.
  for (const input of document.querySelectorAll("input[data-api-name]")) {
    const form = input.closest("form");
    if (!form) continue;
    input.addEventListener("input", () => {
      form.dataset.api = form.dataset.apiBase + encodeURIComponent(input.value.trim());
    });
  }

  // "Attach to role": the form sends to the API path of the role chosen.
  for (const select of document.querySelectorAll("select[data-attach-select]")) {
    const form = select.closest("form");
    const update = () => { if (form) form.dataset.api = select.value; };
    select.addEventListener("change", update);
    update();
  }
})();
