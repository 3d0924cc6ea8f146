// A real OpenID Connect provider (npm `oidc-provider`) for Rolegate's tests.
//
//   node server.mjs [--port N] [--keys a,b]
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
// ID tokens carry `amr: ["pwd"]`. GET /_test/stats reports how often the discovery
// document and the JWKS were fetched. Everything here (keys, passwords, client
// secrets) exists only for tests.

import { readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
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
]);

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
}));

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
    findAccount: async (_ctx, id) => (ACCOUNTS.has(id) ? { accountId: id, claims: async () => ({ sub: id }) } : undefined),
    interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    // `amr` is not in the default claim set: map it to the openid scope so ID tokens carry it.
    claims: { acr: null, auth_time: null, iss: null, sid: null, openid: ['sub', 'amr'] },
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    const path = new URL(req.url, issuer).pathname;
    if (path === '/.well-known/openid-configuration') stats.discovery += 1;
    if (path === '/jwks') stats.jwks += 1;
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
