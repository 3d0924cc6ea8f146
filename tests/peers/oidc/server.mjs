// A real OpenID Connect provider (npm `oidc-provider`) for Rolegate's tests.
//
//   node server.mjs [--port N] [--keys a,b] [--redirect-uris u1,u2] [--post-logout-uris u1,u2]
//
// Listens on 127.0.0.1:N (0 = any free port), issuer http://127.0.0.1:N, and prints
// `oidc-peer ready: <issuer>` on stdout once it accepts connections. `--keys` lists the
// signing keys from ./keys (idp-<name>.pem, kid "rolegate-test-<name>"); the first one
// signs, all are published in the JWKS, so restarting with `--keys b,a` rotates keys.
//
// The built-in development login accepts any user without a password, so it is
// replaced by a small interaction that checks passwords:
//   POST /interaction/<uid>/login   (form: login, password)
//   POST /interaction/<uid>/confirm (grants the requested scopes and claims)
//   POST /interaction/<uid>/abort   (the user cancels: access_denied to the client)
// ID tokens carry `amr: ["pwd"]`. GET /_test/stats reports how often the discovery
// document and the JWKS were fetched. Everything here (keys, passwords, client
// secrets) exists only for tests.
//
// Portal sign-in (Rolegate as a relying party): clients `rolegate-portal` and
// `other-portal` also accept the `--redirect-uris` and `--post-logout-uris` given
// (Rolegate's callback on the test server's port); the `profile`, `email` and
// `groups` scopes put `name`/`preferred_username`, `email` and `groups` (an array)
// plus `groups_csv` (the same, one ";"-separated string) into the ID token.
// A misbehaving provider on demand: POST /_test/tamper with JSON
// `{"claims": {...}, "alg": "none", "key": "attacker"}` rewrites the ID token of the
// next token response (claims set, or removed when null; then unsigned, or re-signed
// with keys/<key>.pem, or with the signing key).

import { readFileSync } from 'node:fs';
import { createPrivateKey, sign } from 'node:crypto';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg('port', process.env.OIDC_PEER_PORT ?? '0'));
const keyNames = arg('keys', process.env.OIDC_PEER_KEYS ?? 'a').split(',').filter(Boolean);
const extraRedirects = arg('redirect-uris', process.env.OIDC_PEER_REDIRECT_URIS ?? '').split(',').filter(Boolean);
const postLogoutUris = arg('post-logout-uris', process.env.OIDC_PEER_POST_LOGOUT_URIS ?? '').split(',').filter(Boolean);

const jwks = {
  keys: keyNames.map((name) => ({
    ...createPrivateKey(readFileSync(join(here, 'keys', `idp-${name}.pem`))).export({ format: 'jwk' }),
    kid: `rolegate-test-${name}`,
    use: 'sig',
    alg: 'RS256',
  })),
};

// Test accounts: the login form checks these passwords.
const ACCOUNTS = new Map([
  ['ci-runner', { password: 'runner-password' }],
  ['intruder', { password: 'intruder-password' }],
  ['alice', {
    password: 'alice-password',
    profile: { name: 'Alice Example', preferred_username: 'alice' },
    email: 'alice@example.com',
    groups: ['Engineering', 'developers'],
  }],
  // Someone in very many groups (large ID tokens), one of which grants a role.
  ['bob', {
    password: 'bob-password',
    profile: { name: 'Bob Many-Groups' },
    email: 'bob@example.com',
    groups: [...Array.from({ length: 1500 }, (_, i) => `team-${String(i).padStart(4, '0')}-with-a-long-directory-group-name`), 'developers'],
  }],
]);

function accountClaims(id) {
  const account = ACCOUNTS.get(id);
  const claims = { sub: id };
  if (account.profile) Object.assign(claims, account.profile);
  if (account.email) Object.assign(claims, { email: account.email, email_verified: true });
  if (account.groups) Object.assign(claims, { groups: account.groups, groups_csv: account.groups.join(';') });
  return claims;
}

const REDIRECT_URI = 'http://127.0.0.1/callback';
const CLIENTS = [
  // The audience registered with Rolegate's IAM OIDC provider.
  { client_id: 'rolegate-sts', client_secret: 'rolegate-sts-secret' },
  // A different application of the same issuer: its tokens have another audience.
  { client_id: 'other-app', client_secret: 'other-app-secret' },
].map((c) => ({
  ...c,
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code'],
  response_types: ['code'],
})).concat([
  // Rolegate's portal sign-in, and another application of the same issuer.
  { client_id: 'rolegate-portal', client_secret: 'rolegate-portal-secret' },
  { client_id: 'other-portal', client_secret: 'other-portal-secret' },
].map((c) => ({
  ...c,
  redirect_uris: [REDIRECT_URI, ...extraRedirects],
  post_logout_redirect_uris: postLogoutUris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
})));

const signingKey = createPrivateKey(readFileSync(join(here, 'keys', `idp-${keyNames[0]}.pem`)));
let tamper = null;

function b64json(value) {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

// Rewrites an ID token as the pending /_test/tamper request says.
function retoken(jwt, spec) {
  const [h, p] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  for (const [name, value] of Object.entries(spec.claims ?? {})) {
    if (value === null) delete payload[name];
    else payload[name] = value;
  }
  if (spec.alg === 'none') {
    return `${b64json({ alg: 'none', typ: header.typ })}.${b64json(payload)}.`;
  }
  const key = spec.key
    ? createPrivateKey(readFileSync(join(here, 'keys', `${String(spec.key).replace(/[^a-z0-9-]/gi, '')}.pem`)))
    : signingKey;
  const input = `${b64json(header)}.${b64json(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

const stats = { discovery: 0, jwks: 0 };

function html(res, status, body) {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(`<!DOCTYPE html><html><body>${body}</body></html>`);
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginForm(uid, message) {
  return `${message ? `<p class="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <input name="login" autocomplete="username"> <input name="password" type="password">
  <button type="submit">Sign in</button>
</form>`;
}

async function interaction(provider, req, res, path) {
  const [, , uid, action] = path.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    html(res, 400, '<p>interaction mismatch</p>');
    return;
  }
  if (req.method === 'GET' && action === undefined) {
    if (details.prompt.name === 'login') {
      html(res, 200, loginForm(uid));
    } else {
      html(res, 200, `<form method="post" action="/interaction/${escapeHtml(uid)}/confirm"><button>Allow</button></form>`);
    }
    return;
  }
  if (req.method === 'POST' && action === 'login' && details.prompt.name === 'login') {
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    const account = ACCOUNTS.get(login);
    if (!account || form.get('password') !== account.password) {
      html(res, 401, loginForm(uid, 'Invalid user name or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
    return;
  }
  if (req.method === 'POST' && action === 'abort') {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
    return;
  }
  if (req.method === 'POST' && action === 'confirm' && details.prompt.name === 'consent') {
    const { prompt: { details: missing }, params, session: { accountId } } = details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  html(res, 400, `<p>unexpected ${escapeHtml(req.method)} ${escapeHtml(action ?? '')} for prompt ${escapeHtml(details.prompt.name)}</p>`);
}

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: CLIENTS,
    jwks,
    cookies: { keys: ['rolegate-test-cookie-key-1'] },
    findAccount: async (_ctx, id) => (ACCOUNTS.has(id) ? { accountId: id, claims: async () => accountClaims(id) } : undefined),
    interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    // `amr` is not in the default claim set: map it to the openid scope so ID tokens carry it.
    // The profile, email and groups claims are granted by their scopes and, with
    // conformIdTokenClaims off, appear in the ID token (not only at userinfo).
    claims: {
      acr: null,
      auth_time: null,
      iss: null,
      sid: null,
      openid: ['sub', 'amr'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups', 'groups_csv'],
    },
    conformIdTokenClaims: false,
  });
  provider.use(async (ctx, next) => {
    await next();
    if (tamper && ctx.path === '/token' && ctx.body && typeof ctx.body.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: retoken(ctx.body.id_token, tamper) };
      tamper = null;
    }
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    const path = new URL(req.url, issuer).pathname;
    if (path === '/.well-known/openid-configuration') stats.discovery += 1;
    if (path === '/jwks') stats.jwks += 1;
    if (path === '/_test/tamper' && req.method === 'POST') {
      (async () => {
        const chunks = [];
        for await (const chunk of req) chunks.push(chunk);
        tamper = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
        res.setHeader('content-type', 'application/json');
        res.end('{"ok":true}');
      })().catch((err) => {
        res.statusCode = 400;
        res.end(String(err.message));
      });
      return;
    }
    if (path === '/_test/stats') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(stats));
      return;
    }
    if (path.startsWith('/interaction/')) {
      interaction(provider, req, res, path).catch((err) => {
        html(res, 500, `<p>${escapeHtml(err.message)}</p>`);
      });
      return;
    }
    callback(req, res);
  });
  process.stdout.write(`oidc-peer ready: ${issuer}\n`);
});
server.on('error', (err) => {
  process.stderr.write(`oidc-peer: ${err.message}\n`);
  process.exit(1);
});
// The test harness may stop reading our output: never die of EPIPE.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
