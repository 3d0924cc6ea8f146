// The People and API token pages: a select that picks which API address its form
// sends to (add a member to a group), and secrets the API returns once (a new
// token's secret, a generated password) shown from the API's answer only: no page
// ever renders them. Uses admin.js (loaded first) for everything else.
"use strict";
(() => {
  // <select data-sets-api>: its option values are API addresses for its form.
  for (const select of document.querySelectorAll("select[data-sets-api]")) {
    const form = select.form;
    if (!form) continue;
    const apply = () => { form.dataset.api = select.value; };
    select.addEventListener("change", apply);
    apply();
  }

  // data-reveal="field" data-reveal-into="id": after success, the answer's field
  // goes into that element's <code>, shown and focused; a form is emptied.
  document.addEventListener("admin:done", (event) => {
    const source = event.target;
    if (!(source instanceof HTMLElement) || !source.dataset.reveal) return;
    const box = document.getElementById(source.dataset.revealInto || "");
    const value = event.detail?.body?.[source.dataset.reveal];
    if (!box || typeof value !== "string") return;
    const code = box.querySelector("code") || box;
    code.textContent = value;
    box.hidden = false;
    box.focus();
    if (source instanceof HTMLFormElement) source.reset();
  });
})();
