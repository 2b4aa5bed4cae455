// op.mjs runs node-oidc-provider as a real OpenID Provider for multiapp's Go
// interop tests. It is started by the Go package in this directory (nodeop.go);
// see README.md for the configuration and the events it prints.
//
// Usage: node op.mjs CONFIG.json   (or NODEOP_CONFIG=CONFIG.json node op.mjs)
//
// Protocol with the parent process:
//   stdout: one JSON object per line. The first is {"event":"ready","issuer":...}.
//           Every other line is an event (see README.md). Nothing else is written
//           to stdout: the provider's own notices are moved to stderr.
//   stdin:  one JSON command per line ({"cmd":"sync","id":N}, {"cmd":"add_client",...}).
//           End of input (the parent closed the pipe or died) stops the server.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as readline from 'node:readline';

import Provider, { errors as oidcErrors, interactionPolicy } from 'oidc-provider';

// The provider prints notices with console.info, which goes to stdout; stdout
// is reserved for the JSON event stream.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const configPath = process.argv[2] || process.env.NODEOP_CONFIG;
if (!configPath) {
  console.error('nodeop: usage: node op.mjs CONFIG.json (or set NODEOP_CONFIG)');
  process.exit(2);
}
const cfg = JSON.parse(fs.readFileSync(configPath, 'utf8'));

const positive = (v, dflt) => (Number.isInteger(v) && v > 0 ? v : dflt);
const ttl = {
  accessToken: positive(cfg.access_token_ttl, 300),
  idToken: positive(cfg.id_token_ttl, 3600),
  refreshToken: positive(cfg.refresh_token_ttl, 24 * 3600),
  session: positive(cfg.session_ttl, 24 * 3600),
};

// ---------------------------------------------------------------- accounts

const users = Array.isArray(cfg.users) ? cfg.users : [];
const usersById = new Map(users.map((u) => [u.id, u]));

// lookupLogin finds the user a login form names: by id or by email (case-insensitive).
// With no users configured any login is accepted and becomes the subject.
function lookupLogin(login) {
  if (users.length === 0) {
    return { id: login, email: login.includes('@') ? login : `${login}@example.test` };
  }
  const lower = login.toLowerCase();
  return usersById.get(login) || users.find((u) => (u.email || '').toLowerCase() === lower);
}

function userFor(id) {
  if (users.length === 0) return lookupLogin(id);
  return usersById.get(id);
}

// ---------------------------------------------------------------- step-up (acr)

// The acr values the OP advertises (acr_values_supported). With none, the
// provider drops acr from ID tokens altogether (stock behaviour).
const acrValues = Array.isArray(cfg.acr_values) ? cfg.acr_values : [];

// acrFor is the acr a login of user produces: the first of the requested
// acr_values (in order of preference) the user can reach, else the user's
// first (its everyday level). A user without acrs gets none.
function acrFor(user, requested) {
  const reachable = Array.isArray(user.acrs) ? user.acrs : [];
  const wanted = String(requested || '').split(' ').filter(Boolean);
  return wanted.find((v) => reachable.includes(v)) || reachable[0];
}

// The login prompt also comes up when acr_values name a level the session
// does not have (step-up, as Keycloak does); stock node-oidc-provider only
// does so for an essential acr in the claims parameter. Right after a login
// it does not come up again: the login gave what it could, and the ID token
// says which (OpenID Connect Core §5.5.1.1), so the RP decides.
function interactionsPolicy() {
  const policy = interactionPolicy.base();
  policy.get('login').checks.push(new interactionPolicy.Check(
    'acr_values',
    'the requested authentication level could not be obtained',
    (ctx) => {
      const { oidc } = ctx;
      const wanted = String(oidc.params.acr_values || '').split(' ').filter(Boolean);
      if (!wanted.length || !oidc.session.accountId || oidc.result?.login) {
        return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      }
      return wanted.includes(oidc.session.acr)
        ? interactionPolicy.Check.NO_NEED_TO_PROMPT
        : interactionPolicy.Check.REQUEST_PROMPT;
    },
  ));
  return policy;
}

async function findAccount(_ctx, id) {
  const user = userFor(id);
  if (!user) return undefined;
  return {
    accountId: id,
    async claims() {
      const claims = { sub: id };
      if (user.email) {
        claims.email = user.email;
        claims.email_verified = true;
      }
      claims.name = user.name || user.email || id;
      if (Array.isArray(user.roles)) claims.roles = user.roles;
      if (Array.isArray(user.permissions)) claims.permissions = user.permissions;
      return claims;
    },
  };
}

// ---------------------------------------------------------------- clients

function clientMetadata(c) {
  const md = {
    client_id: c.client_id,
    token_endpoint_auth_method: c.token_endpoint_auth_method || (c.client_secret ? 'client_secret_basic' : 'none'),
    redirect_uris: c.redirect_uris || [],
    post_logout_redirect_uris: c.post_logout_redirect_uris || [],
    grant_types: c.grant_types && c.grant_types.length ? c.grant_types : ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    application_type: c.application_type || 'web',
  };
  if (c.client_secret && md.token_endpoint_auth_method.startsWith('client_secret')) md.client_secret = c.client_secret;
  if (c.jwks) md.jwks = c.jwks;
  if (c.jwks_uri) md.jwks_uri = c.jwks_uri;
  if (c.id_token_signed_response_alg) md.id_token_signed_response_alg = c.id_token_signed_response_alg;
  else if (cfg.fapi2 === true) md.id_token_signed_response_alg = 'ES256';
  if (c.backchannel_logout_uri) {
    md.backchannel_logout_uri = c.backchannel_logout_uri;
    md.backchannel_logout_session_required = true;
  }
  return md;
}

// Clients are served by the adapter rather than the static `clients` option so
// that the parent can add clients after start (its RP servers' URLs are often
// only known then).
const clientStore = new Map();
for (const c of cfg.clients || []) clientStore.set(c.client_id, clientMetadata(c));

// Grant members: what a grant revocation (logout, refresh token reuse) destroys.
const grantable = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode',
]);
const graceMs = () => 1000 * (Number.isInteger(cfg.clock_tolerance) ? cfg.clock_tolerance : 2);

// MemoryStore is the provider's storage. The stock memory adapter is an LRU of
// 1000 entries shared by every model, which a long test run can overflow.
class MemoryStore {
  static maps = new Map();

  static map(name) {
    if (!this.maps.has(name)) this.maps.set(name, new Map());
    return this.maps.get(name);
  }

  constructor(name) {
    this.name = name;
    this.items = MemoryStore.map(name);
  }

  async upsert(id, payload, expiresIn) {
    const exp = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 + graceMs() : Infinity;
    this.items.set(id, { payload, exp });
    if (grantable.has(this.name) && payload.grantId) {
      const members = MemoryStore.map('grant:members');
      if (!members.has(payload.grantId)) members.set(payload.grantId, []);
      members.get(payload.grantId).push([this.name, id]);
    }
    if (this.name === 'Session' && payload.uid) MemoryStore.map('session:uid').set(payload.uid, id);
    if (payload.userCode) MemoryStore.map('userCode').set(payload.userCode, id);
  }

  async find(id) {
    if (this.name === 'Client') return clientStore.get(id);
    const item = this.items.get(id);
    if (!item) return undefined;
    if (item.exp <= Date.now()) {
      this.items.delete(id);
      return undefined;
    }
    return item.payload;
  }

  async findByUid(uid) {
    const id = MemoryStore.map('session:uid').get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = MemoryStore.map('userCode').get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const item = this.items.get(id);
    if (item) item.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.items.delete(id);
  }

  async revokeByGrantId(grantId) {
    const members = MemoryStore.map('grant:members');
    for (const [name, id] of members.get(grantId) || []) MemoryStore.map(name).delete(id);
    members.delete(grantId);
  }
}

// ---------------------------------------------------------------- resource server

const resource = cfg.resource && cfg.resource.audience ? cfg.resource : undefined;
const resourceClients = new Set(resource?.clients || []);
const resourceAppliesTo = (client) => !!resource
  && (resourceClients.size === 0 || resourceClients.has(client.clientId));

// ---------------------------------------------------------------- pages

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>`;
}

function loginPage(uid, { loginHint, error } = {}) {
  return page('Sign-in', `${error ? `<p class="error" data-nodeop-error>${esc(error)}</p>\n` : ''}<form data-nodeop="login" method="post" action="/interaction/${esc(uid)}" autocomplete="off">
<input type="hidden" name="prompt" value="login">
<input type="text" name="login" value="${esc(loginHint)}" placeholder="login or email" required autofocus>
<input type="password" name="password" placeholder="password" required>
<button type="submit">Sign-in</button>
</form>
<p><a data-nodeop="abort" href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

// logoutSource replaces the stock confirmation page: the form already carries
// logout=yes (sign out of every client of the session) and submits itself in a
// real browser. The Go Browser recognises data-nodeop="logout" and submits it.
async function logoutSource(ctx, form) {
  const marked = form
    .replace('<form ', '<form data-nodeop="logout" ')
    .replace('</form>', '<input type="hidden" name="logout" value="yes"/><button type="submit" autofocus>Yes, sign me out</button></form>');
  ctx.type = 'html';
  ctx.body = page('Sign-out', `${marked}
<script>document.forms[0].submit()</script>`);
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<p data-nodeop="signed-out">You are signed out.</p>');
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page('Error', `<dl data-nodeop="error">${Object.entries(out)
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`);
}

// ---------------------------------------------------------------- provider config

function providerConfiguration() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = {
    ...privateKey.export({ format: 'jwk' }),
    kid: crypto.randomBytes(8).toString('hex'),
    use: 'sig',
    alg: 'RS256',
  };

  const keys = [jwk];
  if (cfg.fapi2 === true) {
    // FAPI 2.0 allows PS256, ES256 and EdDSA only: an ES256 key for ID tokens.
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    keys.push({
      ...ec.export({ format: 'jwk' }), kid: crypto.randomBytes(8).toString('hex'), use: 'sig', alg: 'ES256',
    });
  }

  return {
    adapter: MemoryStore,
    jwks: { keys },
    cookies: {
      keys: [crypto.randomBytes(32).toString('hex')],
      // Plain http on 127.0.0.1: the provider only sets Secure on https requests.
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    clockTolerance: Number.isInteger(cfg.clock_tolerance) && cfg.clock_tolerance >= 0 ? cfg.clock_tolerance : 2,
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      acr: null,
      auth_time: null,
      iss: null,
      sid: null,
    },
    // Scope claims (email, name) go into the ID token even when an access token
    // is issued too, as hosted OPs do.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    findAccount,
    acrValues,
    interactions: {
      policy: interactionsPolicy(),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      // PAR (RFC 9126) is always offered; require_par makes it mandatory.
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: cfg.require_par === true },
      // FAPI 2.0 Security Profile for every client when fapi2 is set.
      fapi: { enabled: cfg.fapi2 === true, profile: '2.0' },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      revocation: { enabled: true, allowedPolicy: async () => true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      userinfo: { enabled: true },
      // DPoP (RFC 9449; on by default in v9; the key is dPoP, not dpop): only
      // clients that send a proof get bound tokens, so it changes nothing for
      // the others. With dpop_nonces, every DPoP request must carry a nonce of
      // the OP (§8).
      dPoP: {
        enabled: true,
        nonceSecret: cfg.dpop_nonces ? crypto.randomBytes(32) : undefined,
        requireNonce: () => cfg.dpop_nonces === true,
      },
      resourceIndicators: {
        enabled: true,
        // The configured API is the default resource of the clients it applies to,
        // so their access tokens are JWTs for it without a resource parameter.
        async defaultResource(_ctx, client, oneOf) {
          if (oneOf) return oneOf;
          return resourceAppliesTo(client) ? resource.audience : undefined;
        },
        // Also at the token endpoint (which otherwise issues a userinfo token
        // whenever openid was requested).
        async useGrantedResource() { return true; },
        async getResourceServerInfo(_ctx, indicator, client) {
          if (!resource || indicator !== resource.audience || !resourceAppliesTo(client)) {
            throw new oidcErrors.InvalidTarget();
          }
          return {
            scope: (resource.scopes || []).join(' '),
            audience: resource.audience,
            accessTokenTTL: ttl.accessToken,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    async extraTokenClaims(ctx, token) {
      const extra = {};
      if (token.sid) extra.sid = token.sid;
      // RFC 9470 §6.1 (RFC 9068 §2.2.1): access tokens say how and when the
      // user authenticated, from the code or refresh token they come from.
      const source = ctx?.oidc?.entities?.AuthorizationCode || ctx?.oidc?.entities?.RefreshToken;
      if (token.kind === 'AccessToken' && source) {
        if (source.acr) extra.acr = source.acr;
        if (source.authTime) extra.auth_time = source.authTime;
      }
      const user = token.accountId ? userFor(token.accountId) : undefined;
      if (user && Array.isArray(user.roles)) extra.roles = user.roles;
      if (user && Array.isArray(user.permissions)) extra.permissions = user.permissions;
      return Object.keys(extra).length ? extra : undefined;
    },
    // Any client allowed the refresh_token grant gets a refresh token, without
    // offline_access. Such tokens expire with the OP session (expiresWithSession
    // default: no offline_access) and are revoked at logout.
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    rotateRefreshToken: cfg.rotate_refresh_tokens === true,
    // No consent page: every configured client is first-party. The grant is
    // topped up with whatever the request asks for.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
      let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
      if (!grant) {
        grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
      }
      const scopes = [...oidc.requestParamOIDCScopes];
      if (scopes.length) grant.addOIDCScope(scopes.join(' '));
      const claims = [...oidc.requestParamClaims];
      if (claims.length) grant.addOIDCClaims(claims);
      for (const [indicator, rs] of Object.entries(oidc.resourceServers || {})) {
        const wanted = [...oidc.requestParamScopes].filter((s) => rs.scopes.has(s));
        if (wanted.length) grant.addResourceScope(indicator, wanted.join(' '));
      }
      await grant.save();
      return grant;
    },
    ttl: {
      AccessToken: ttl.accessToken,
      IdToken: ttl.idToken,
      RefreshToken: ttl.refreshToken,
      Session: ttl.session,
      Grant: ttl.session,
      Interaction: 600,
      AuthorizationCode: 60,
    },
    // v9 refuses outgoing requests to loopback and private addresses by passing
    // an SSRF-checking undici dispatcher; the RPs under test listen on
    // 127.0.0.1, so drop it (test fixture only).
    fetch(url, options) {
      delete options.dispatcher; // eslint-disable-line no-param-reassign
      return globalThis.fetch(url, options);
    },
    renderError,
  };
}

// ---------------------------------------------------------------- server

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, providerConfiguration());

// Every client gets sid in its ID tokens and access tokens (stock v9 adds it
// only for clients with backchannel_logout_session_required), as hosted OPs do.
provider.Client.prototype.includeSid = function includeSid() { return true; };

// The registered token_endpoint_auth_method is enforced, as Ory Hydra and the
// development OP do: stock v9 accepts client_secret_basic and
// client_secret_post alike for a client registered with either
// (lib/shared/client_auth.js), so an RP that sends the secret the other way
// would pass here and fail there. The check runs where the stock code compares
// the secret (token, introspection and revocation endpoints alike), so the
// answer is the provider's own invalid_client.
const stockCompareClientSecret = provider.Client.prototype.compareClientSecret;
provider.Client.prototype.compareClientSecret = function compareClientSecret(actual) {
  const params = Provider.ctx?.oidc?.params;
  if (params && cfg.accept_any_secret_method !== true) {
    const used = params.client_secret ? 'client_secret_post' : 'client_secret_basic';
    if (used !== this.clientAuthMethod) {
      throw new oidcErrors.InvalidClientAuth(`the client is registered for ${this.clientAuthMethod}, the request used ${used}`);
    }
  }
  return stockCompareClientSecret.call(this, actual);
};

// One event per request to the routes tests care about, written before the
// response leaves (stdout to a pipe is synchronous on Linux, and the parent
// uses a sync command as a barrier anyway).
const reported = new Set([
  'discovery', 'jwks', 'authorization', 'resume', 'token', 'userinfo', 'introspection',
  'revocation', 'end_session', 'end_session_confirm', 'end_session_success',
  'pushed_authorization_request',
]);
provider.use(async (ctx, next) => {
  await next();
  const route = ctx.oidc?.route;
  if (!route || !reported.has(route)) return;
  const ev = {
    event: 'request', route, method: ctx.method, status: ctx.status,
  };
  const clientId = ctx.oidc.client?.clientId;
  if (clientId) ev.client_id = clientId;
  if (route === 'token') ev.grant_type = ctx.oidc.params?.grant_type;
  if (ctx.status >= 400 && ctx.body && typeof ctx.body === 'object' && ctx.body.error) ev.error = ctx.body.error;
  if (ctx.state.nodeopDetail) ev.detail = ctx.state.nodeopDetail;
  if (ctx.status >= 300 && ctx.status < 400 && route !== 'discovery') {
    const loc = URL.parse(ctx.response.get('location') || '', issuer);
    const err = loc?.searchParams.get('error');
    if (err) ev.error = err;
  }
  emit(ev);
});

// The provider answers e.g. every invalid_grant with the same description;
// its error events carry the reason ("refresh token already used", ...).
for (const name of [
  'authorization.error', 'grant.error', 'userinfo.error', 'introspection.error', 'pushed_authorization_request.error',
  'revocation.error', 'end_session.error', 'end_session_confirm.error', 'jwks.error',
]) {
  provider.on(name, (ctx, err) => {
    const detail = err?.error_detail || err?.error_description;
    if (ctx?.state && detail) ctx.state.nodeopDetail = String(detail);
  });
}

provider.on('backchannel.success', (_ctx, client, sub, sid) => {
  emit({
    event: 'backchannel_logout', client_id: client.clientId, sub, sid, ok: true,
  });
});
provider.on('backchannel.error', (_ctx, err, client, sub, sid) => {
  emit({
    event: 'backchannel_logout', client_id: client.clientId, sub, sid, ok: false, error: String(err?.cause?.message || err?.message || err),
  });
});
provider.on('server_error', (_ctx, err) => {
  emit({ event: 'server_error', error: String(err?.message || err) });
  console.error('nodeop: server_error', err);
});

// ---------------------------------------------------------------- interactions

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 64 * 1024) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function sendHTML(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function finishConsent(req, res, details) {
  const { prompt, params, session, grantId } = details;
  let grant = grantId ? await provider.Grant.find(grantId) : undefined;
  if (!grant) grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const d = prompt.details || {};
  if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const id = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    sendHTML(res, 400, page('Error', '<p data-nodeop="error">interaction mismatch</p>'));
    return;
  }
  const clientId = details.params.client_id;
  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (details.prompt.name === 'consent') {
    // Never shown: loadExistingGrant grants everything; native clients still
    // pass through here (the policy always asks them) and are granted silently.
    await finishConsent(req, res, details);
    return;
  }
  if (details.prompt.name !== 'login') {
    sendHTML(res, 501, page('Error', `<p data-nodeop="error">prompt ${esc(details.prompt.name)} not implemented</p>`));
    return;
  }
  if (req.method === 'GET') {
    sendHTML(res, 200, loginPage(uid, { loginHint: details.params.login_hint }));
    return;
  }
  const form = await readForm(req);
  const login = form.get('login') || '';
  const password = form.get('password') || '';
  const user = login ? lookupLogin(login) : undefined;
  const ok = !!user && (!user.password || user.password === password);
  const acr = ok ? acrFor(user, details.params.acr_values) : undefined;
  emit({
    event: 'login', client_id: clientId, login, ok, ...(ok ? { sub: user.id } : {}), ...(acr ? { acr } : {}),
  });
  if (!ok) {
    sendHTML(res, 200, loginPage(uid, { loginHint: login, error: 'Invalid login or password.' }));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: user.id, ...(acr ? { acr } : {}) } }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const interactionPath = /^\/interaction\/([A-Za-z0-9_-]+)(\/abort)?$/;

server.on('request', (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  const m = interactionPath.exec(pathname);
  if (!m) {
    callback(req, res);
    return;
  }
  const action = m[2] ? 'abort' : req.method === 'POST' ? 'submit' : 'show';
  if ((action === 'submit' && req.method !== 'POST') || (action !== 'submit' && req.method !== 'GET')) {
    sendHTML(res, 405, page('Error', '<p data-nodeop="error">method not allowed</p>'));
    return;
  }
  interaction(req, res, m[1], action).catch((err) => {
    emit({ event: 'server_error', error: `interaction: ${err?.message || err}` });
    if (!res.headersSent) {
      sendHTML(res, 400, page('Error', `<p data-nodeop="error">${esc(err?.message || err)}</p>`));
    } else {
      res.end();
    }
  });
});

// ---------------------------------------------------------------- control

function shutdown(code) {
  server.close();
  server.closeAllConnections?.();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    emit({ event: 'command_error', error: 'invalid JSON command' });
    return;
  }
  switch (cmd.cmd) {
    case 'sync':
      emit({ event: 'sync', id: cmd.id });
      break;
    case 'add_client': {
      const md = clientMetadata(cmd.client || {});
      let error;
      try {
        clientStore.set(md.client_id, md);
        await provider.Client.find(md.client_id); // validates the metadata
      } catch (err) {
        clientStore.delete(md.client_id);
        error = String(err?.error_description || err?.message || err);
      }
      emit({
        event: 'client_added', id: cmd.id, client_id: md.client_id, ...(error ? { error } : {}),
      });
      break;
    }
    default:
      emit({ event: 'command_error', id: cmd.id, error: `unknown command ${cmd.cmd}` });
  }
});
rl.on('close', () => shutdown(0));

// Validate the configured clients now, so a bad one fails the start, not a test.
for (const id of clientStore.keys()) {
  try {
    await provider.Client.find(id);
  } catch (err) {
    console.error(`nodeop: client ${id}: ${err?.error_description || err?.message || err}`);
    process.exit(3);
  }
}

emit({ event: 'ready', issuer });
