// The demo's single-page app: OpenID Connect Authorization Code flow with
// PKCE (S256) as a public client, in plain JavaScript with WebCrypto. No
// build step, no library, no secret. Tokens live in this tab (memory and
// sessionStorage), never in cookies, never in localStorage.
//
// What it does, and what a real SPA must do too:
//  - discovery at the issuer; the discovered issuer must match exactly;
//  - login: state, nonce and a PKCE verifier per attempt, kept in
//    sessionStorage until the callback; S256 challenge;
//  - callback: state must match (once), RFC 9207 iss checked; the code is
//    exchanged at the token endpoint with the verifier; the ID token's
//    signature is verified with the OP's JWKS, then iss, aud, azp, exp, iat
//    and nonce are checked;
//  - on every full page load, a silent sign-in (prompt=none): the OP's
//    session is the truth, shared by every app, so a user signed in at
//    another app is signed in here without a login form, and a user signed
//    out everywhere is signed out here, whatever this tab still holds
//    (except right after signing out here: no silent sign-in in this tab
//    until "Sign in" is pressed, so a sign-out sticks);
//  - refresh with the refresh_token grant before the access token expires;
//    a refusal (invalid_grant) means the shared session ended: sign out here;
//  - calls the API with Authorization: Bearer;
//  - logout at the OP's end-session endpoint (a top-level navigation).
'use strict';

const SKEW = 60; // seconds of clock tolerance
const $ = (id) => document.getElementById(id);

let cfg = null; // /config.json
let meta = null; // the OP's discovery document
let tokens = null; // {access_token, refresh_token, id_token, expires_at, claims, access_claims}
let refreshTimer = 0;

// ---- small helpers -------------------------------------------------------

function b64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function b64urlDecode(s) {
  s = s.replace(/-/g, '+').replace(/_/g, '/');
  while (s.length % 4) s += '=';
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function randomString() {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function s256(verifier) {
  return b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
}

function decodeJWT(jwt) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3) throw new Error('not a JWT');
  const dec = new TextDecoder();
  return {
    header: JSON.parse(dec.decode(b64urlDecode(parts[0]))),
    claims: JSON.parse(dec.decode(b64urlDecode(parts[1]))),
    signed: new TextEncoder().encode(parts[0] + '.' + parts[1]),
    signature: b64urlDecode(parts[2]),
  };
}

const now = () => Math.floor(Date.now() / 1000);

function save() {
  if (tokens) sessionStorage.setItem('tokens', JSON.stringify(tokens));
  else sessionStorage.removeItem('tokens');
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem('tokens') || 'null');
  } catch {
    return null;
  }
}

async function getJSON(url) {
  const resp = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!resp.ok) throw new Error(`GET ${url}: ${resp.status}`);
  return resp.json();
}

// ---- ID token verification ----------------------------------------------

const ALGS = {
  RS256: { imp: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, ver: { name: 'RSASSA-PKCS1-v1_5' } },
  PS256: { imp: { name: 'RSA-PSS', hash: 'SHA-256' }, ver: { name: 'RSA-PSS', saltLength: 32 } },
  ES256: { imp: { name: 'ECDSA', namedCurve: 'P-256' }, ver: { name: 'ECDSA', hash: 'SHA-256' } },
};

let jwks = null;

async function findKey(header) {
  const alg = ALGS[header.alg];
  if (!alg) throw new Error(`ID token algorithm ${header.alg} is not allowed`);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (!jwks || attempt === 1) jwks = await getJSON(meta.jwks_uri);
    const jwk = (jwks.keys || []).find((k) =>
      (!header.kid || k.kid === header.kid) && (!k.use || k.use === 'sig') && (!k.alg || k.alg === header.alg));
    if (jwk) {
      const pub = jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y } : { kty: 'RSA', n: jwk.n, e: jwk.e };
      return { key: await crypto.subtle.importKey('jwk', pub, alg.imp, false, ['verify']), alg };
    }
  }
  throw new Error(`no key ${header.kid} in the OP's JWKS`);
}

// verifyIDToken checks the signature with the OP's keys, then the claims.
// nonce is null for an ID token from a refresh (it has none).
async function verifyIDToken(jwt, nonce) {
  const t = decodeJWT(jwt);
  const { key, alg } = await findKey(t.header);
  if (!(await crypto.subtle.verify(alg.ver, key, t.signature, t.signed))) throw new Error('ID token signature is invalid');
  const c = t.claims;
  const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
  if (c.iss !== meta.issuer) throw new Error(`ID token iss ${c.iss} is not ${meta.issuer}`);
  if (!aud.includes(cfg.client_id)) throw new Error('ID token aud does not contain this client');
  if (c.azp && c.azp !== cfg.client_id) throw new Error('ID token azp is another client');
  if (typeof c.exp !== 'number' || c.exp + SKEW < now()) throw new Error('ID token expired');
  if (typeof c.iat !== 'number' || c.iat - SKEW > now()) throw new Error('ID token iat is in the future');
  if (!c.sub) throw new Error('ID token without sub');
  if (nonce !== null && c.nonce !== nonce) throw new Error('ID token nonce does not match this login');
  return c;
}

// ---- token endpoint -------------------------------------------------------

async function tokenRequest(params) {
  params.set('client_id', cfg.client_id); // public client: no secret, auth method "none"
  const resp = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: params,
  });
  let body = {};
  try {
    body = await resp.json();
  } catch {}
  if (!resp.ok) {
    const err = new Error(`${body.error || resp.status}${body.error_description ? ': ' + body.error_description : ''}`);
    err.oauth = body.error || '';
    err.status = resp.status;
    throw err;
  }
  return body;
}

function accessClaims(at) {
  try {
    return decodeJWT(at).claims; // for display only: the API verifies the token
  } catch {
    return {};
  }
}

function setTokens(body, claims) {
  tokens = {
    access_token: body.access_token,
    refresh_token: body.refresh_token || (tokens && tokens.refresh_token) || '',
    id_token: body.id_token || (tokens && tokens.id_token) || '',
    expires_at: now() + (Number(body.expires_in) || 300),
    claims,
    access_claims: accessClaims(body.access_token),
    refreshed_at: tokens ? tokens.refreshed_at : null,
  };
  save();
}

// ---- login ---------------------------------------------------------------

async function login(prompt) {
  const tx = { state: randomString(), nonce: randomString(), verifier: randomString(), prompt: prompt || '', had_tokens: !!tokens };
  sessionStorage.setItem('tx', JSON.stringify(tx));
  const u = new URL(meta.authorization_endpoint);
  const q = u.searchParams;
  q.set('response_type', 'code');
  q.set('client_id', cfg.client_id);
  q.set('redirect_uri', cfg.redirect_uri);
  q.set('scope', cfg.scopes.join(' '));
  q.set('state', tx.state);
  q.set('nonce', tx.nonce);
  q.set('code_challenge', await s256(tx.verifier));
  q.set('code_challenge_method', 'S256');
  if (prompt) q.set('prompt', prompt);
  location.assign(u.toString());
}

async function callback() {
  const q = new URLSearchParams(location.search);
  const tx = JSON.parse(sessionStorage.getItem('tx') || 'null');
  sessionStorage.removeItem('tx'); // single use
  history.replaceState(null, '', '/'); // the code leaves the address bar and the history
  if (!tx || !q.get('state') || q.get('state') !== tx.state) throw new Error('state does not match a login started in this tab');
  if (q.has('iss') ? q.get('iss') !== meta.issuer : meta.authorization_response_iss_parameter_supported) {
    throw new Error('the authorization response iss is not the OP\'s (RFC 9207)');
  }
  if (q.get('error')) {
    const silent = tx.prompt === 'none';
    const e = q.get('error');
    if (silent && ['login_required', 'interaction_required', 'consent_required', 'account_selection_required'].includes(e)) {
      tokens = null;
      save();
      return showSignedOut(tx.had_tokens
        ? 'Your session at the OP has ended (a sign-out in another app, an administrator, or its expiry): this page asked the OP when it loaded.'
        : 'Not signed in at the OP: this page asked it when it loaded (prompt=none). Sign in at any app of the demo, then reload this page.');
    }
    throw new Error(`the OP answered ${e}${q.get('error_description') ? ': ' + q.get('error_description') : ''}`);
  }
  const body = await tokenRequest(new URLSearchParams({
    grant_type: 'authorization_code',
    code: q.get('code') || '',
    redirect_uri: cfg.redirect_uri,
    code_verifier: tx.verifier,
  }));
  if (!body.id_token) throw new Error('the token response has no ID token');
  const claims = await verifyIDToken(body.id_token, tx.nonce);
  tokens = null;
  setTokens(body, claims);
  await signedIn();
}

// ---- refresh --------------------------------------------------------------

async function refresh(manual) {
  clearTimeout(refreshTimer);
  if (!tokens || !tokens.refresh_token) {
    if (manual) $('refresh-status').textContent = 'no refresh token (offline_access not granted)';
    return false;
  }
  try {
    const body = await tokenRequest(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }));
    let claims = tokens.claims;
    if (body.id_token) {
      const c = await verifyIDToken(body.id_token, null);
      if (c.sub !== claims.sub) throw new Error('refreshed ID token is another user\'s');
      claims = c;
    }
    setTokens(body, claims);
    tokens.refreshed_at = new Date().toLocaleTimeString();
    save();
    render();
    return true;
  } catch (e) {
    if (e.oauth === 'invalid_grant') {
      // The OP refused: the shared session is over (logout at another app,
      // admin, expiry) or the token was rotated out. Sign out here.
      tokens = null;
      save();
      showSignedOut(`Your session ended at the OP: the refresh was refused (${e.message}).`);
      return false;
    }
    $('refresh-status').textContent = `failed, will retry: ${e.message}`;
    refreshTimer = setTimeout(() => refresh(false), 15000);
    return false;
  }
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!tokens || !tokens.refresh_token) return;
  const inMs = Math.max(5, tokens.expires_at - now() - 60) * 1000;
  refreshTimer = setTimeout(() => refresh(false), inMs);
}

// ---- the API ---------------------------------------------------------------

async function callAPI(path, statusEl, bodyEl, retried) {
  const url = cfg.api_url.replace(/\/$/, '') + path;
  try {
    const resp = await fetch(url, { headers: { Authorization: 'Bearer ' + tokens.access_token, Accept: 'application/json' } });
    if (resp.status === 401 && !retried && (await refresh(false))) return callAPI(path, statusEl, bodyEl, true);
    const text = await resp.text();
    let shown = text;
    try {
      shown = JSON.stringify(JSON.parse(text), null, 1).replace(/\n\s*/g, ' ');
    } catch {}
    const www = resp.headers.get('WWW-Authenticate');
    if (www) shown += `\nWWW-Authenticate: ${www}`;
    $(statusEl).textContent = String(resp.status);
    $(statusEl).className = 'pill ' + (resp.ok ? 'ok' : 'no');
    $(bodyEl).textContent = shown;
  } catch (e) {
    $(statusEl).textContent = 'failed';
    $(statusEl).className = 'pill no';
    $(bodyEl).textContent = e.message;
  }
}

async function callAPIs() {
  if (!cfg.api_url || !tokens) return;
  $('api').hidden = false;
  $('api-me-url').textContent = cfg.api_url.replace(/\/$/, '') + '/api/me';
  $('api-admin-url').textContent = cfg.api_url.replace(/\/$/, '') + '/api/admin';
  await callAPI('/api/me', 'api-me-status', 'api-me-body', false);
  if (tokens) await callAPI('/api/admin', 'api-admin-status', 'api-admin-body', false);
}

// ---- logout ----------------------------------------------------------------

function signOut() {
  const idToken = tokens && tokens.id_token;
  tokens = null;
  save();
  // The sign-out sticks in this tab: no silent sign-in until "Sign in" is
  // pressed, even if the OP session survives (no end-session endpoint, the
  // user cancelled at the OP).
  sessionStorage.setItem('signed_out', '1');
  if (!meta.end_session_endpoint) return showSignedOut('Signed out of this app (the OP has no end-session endpoint).');
  const u = new URL(meta.end_session_endpoint);
  if (idToken) u.searchParams.set('id_token_hint', idToken);
  u.searchParams.set('client_id', cfg.client_id);
  if (cfg.post_logout_redirect_uri) u.searchParams.set('post_logout_redirect_uri', cfg.post_logout_redirect_uri);
  u.searchParams.set('state', randomString());
  location.assign(u.toString());
}

// ---- rendering ----------------------------------------------------------------

function show(id) {
  for (const s of ['loading', 'error', 'signed-out', 'signed-in', 'api']) $(s).hidden = s !== id;
}

function showSignedOut(reason) {
  clearTimeout(refreshTimer);
  show('signed-out');
  $('signed-out-reason').textContent = reason || '';
  $('signed-out-reason').hidden = !reason;
}

function showError(e) {
  show('error');
  $('error-text').textContent = String(e && e.message ? e.message : e);
}

function render() {
  if (!tokens) return showSignedOut('');
  const c = tokens.claims || {};
  const ac = tokens.access_claims || {};
  $('signed-in').hidden = false;
  $('loading').hidden = $('error').hidden = $('signed-out').hidden = true;
  $('hello').textContent = `Hello, ${c.name || c.email || c.sub}`;
  $('issuer').textContent = meta.issuer;
  $('client-id').textContent = cfg.client_id;
  $('email').textContent = c.email || '—';
  $('sub').textContent = c.sub;
  $('sid').textContent = c.sid || '—';
  $('roles').textContent = (ac.roles || c.roles || []).join(', ') || '—';
  $('permissions').textContent = (ac.permissions || c.permissions || []).join(', ') || '—';
  $('expiry').textContent = `expires at ${new Date(tokens.expires_at * 1000).toLocaleTimeString()}, refreshed 1 minute before`;
  $('refresh-status').textContent = tokens.refreshed_at ? `last refreshed at ${tokens.refreshed_at}` : 'not refreshed yet';
  scheduleRefresh();
}

async function signedIn() {
  render();
  await callAPIs();
}

// ---- start ---------------------------------------------------------------------

async function main() {
  $('sign-in').addEventListener('click', () => {
    sessionStorage.removeItem('signed_out');
    login('').catch(showError);
  });
  $('retry').addEventListener('click', () => {
    sessionStorage.clear();
    location.assign('/');
  });
  $('sign-out').addEventListener('click', signOut);
  $('refresh').addEventListener('click', async () => {
    if (await refresh(true)) await callAPIs();
  });
  $('call-api').addEventListener('click', () => callAPIs());

  cfg = await getJSON('/config.json');
  for (const l of cfg.links || []) {
    const a = document.createElement('a');
    a.href = l.url;
    a.textContent = l.name;
    $('links').append(a);
  }
  meta = await getJSON(cfg.issuer.replace(/\/$/, '') + '/.well-known/openid-configuration');
  if (meta.issuer !== cfg.issuer) throw new Error(`the OP's discovery says issuer ${meta.issuer}, not ${cfg.issuer}`);

  if (location.pathname === '/auth/callback') return callback();
  tokens = load();
  if (sessionStorage.getItem('signed_out')) {
    tokens = null;
    save();
    return showSignedOut('You signed out of this app: it will not sign you in silently in this tab until you press “Sign in”.');
  }
  // Every full page load asks the OP, without a form (prompt=none): signed
  // in at another app, or signed out everywhere since the last load?
  return login('none');
}

main().catch(showError);
