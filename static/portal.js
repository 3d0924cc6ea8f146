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
// return_to. A console opens by itself only when this tab's own sign-in carried the
// link (remembered in sessionStorage when the person submitted the form or chose a
// provider); a link followed from anywhere else, another site included, only offers
// the console and waits for a click, so no page can mint a role session in the
// signed-in person's browser.
const deepLinkHash = /^#\/account\/\d{12}\/role\/[^/]+\/console\/?$/;
const deepLinkKey = "rolegate.deepLink";
function rememberDeepLink() {
  try { sessionStorage.setItem(deepLinkKey, location.hash); } catch (_) { /* storage off */ }
}
for (const returnTo of document.querySelectorAll('form input[name="return_to"]')) {
  if (deepLinkHash.test(location.hash) && !returnTo.value.includes("#")) {
    returnTo.value += location.hash;
    returnTo.form.addEventListener("submit", rememberDeepLink);
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
  link.addEventListener("click", rememberDeepLink);
}
function carriedBySignIn(hash) {
  let carried = null;
  try {
    carried = sessionStorage.getItem(deepLinkKey);
    sessionStorage.removeItem(deepLinkKey);
  } catch (_) { carried = null; }
  return carried === hash;
}
function openDeepLink() {
  if (location.pathname !== "/start" || !deepLinkHash.test(location.hash)) return;
  const hash = location.hash;
  const [, , account, , encodedRole] = hash.split("/");
  let role = null;
  try { role = decodeURIComponent(encodedRole); } catch (_) { role = null; }
  history.replaceState(null, "", location.pathname + location.search);
  const form = Array.from(document.querySelectorAll("form.console"))
    .find((f) => f.dataset.account === account && f.dataset.role === role);
  const missing = document.getElementById("deep-link-missing");
  const confirm = document.getElementById("deep-link-confirm");
  if (!form) {
    if (missing) missing.hidden = false;
  } else if (carriedBySignIn(hash)) {
    form.submit();
  } else if (confirm) {
    document.getElementById("deep-link-role").textContent = role;
    document.getElementById("deep-link-account").textContent = account;
    const button = document.getElementById("deep-link-open");
    button.onclick = () => form.submit();
    confirm.hidden = false;
    button.focus();
  }
}
openDeepLink();
window.addEventListener("hashchange", openDeepLink);
