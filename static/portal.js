// Filter accounts and roles as you type; copy buttons. No inline script (CSP).
"use strict";
const filter = document.getElementById("filter");
if (filter) {
  filter.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    for (const account of document.querySelectorAll(".account")) {
      const accountHit = account.dataset.search.includes(q);
      let any = false;
      for (const role of account.querySelectorAll(".role")) {
        const hit = !q || accountHit || role.dataset.search.includes(q);
        role.hidden = !hit;
        any = any || hit;
      }
      account.hidden = !any;
    }
  });
}
for (const button of document.querySelectorAll("button.copy")) {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  });
}
