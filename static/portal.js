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
// Deep links: /start#/account/<id>/role/<name>/console opens that role's console.
// The fragment never reaches the server, so the sign-in form carries it in
// return_to, and /start submits the matching Console form (which has the CSRF token).
const deepLinkHash = /^#\/account\/\d{12}\/role\/[^/]+\/console\/?$/;
for (const returnTo of document.querySelectorAll('form input[name="return_to"]')) {
  if (deepLinkHash.test(location.hash) && !returnTo.value.includes("#")) {
    returnTo.value += location.hash;
  }
}
// The identity-provider links carry it too: the server keeps return_to through the
// round trip to the IdP and redirects to it afterwards.
for (const link of document.querySelectorAll("a.signin-source")) {
  if (!deepLinkHash.test(location.hash)) break;
  const url = new URL(link.href, location.href);
  const returnTo = url.searchParams.get("return_to") || "/start";
  if (!returnTo.includes("#")) {
    url.searchParams.set("return_to", returnTo + location.hash);
    link.href = url.pathname + url.search;
  }
}
function openDeepLink() {
  if (location.pathname !== "/start" || !deepLinkHash.test(location.hash)) return;
  const [, , account, , encodedRole] = location.hash.split("/");
  let role = null;
  try { role = decodeURIComponent(encodedRole); } catch (_) { role = null; }
  history.replaceState(null, "", location.pathname + location.search);
  const form = Array.from(document.querySelectorAll("form.console"))
    .find((f) => f.dataset.account === account && f.dataset.role === role);
  const missing = document.getElementById("deep-link-missing");
  if (form) {
    form.submit();
  } else if (missing) {
    missing.hidden = false;
  }
}
openDeepLink();
window.addEventListener("hashchange", openDeepLink);
