// Sign-in: OAuth 2.0 authorization code with PKCE (RFC 7636), the flow Cognito's hosted UI offers
// public clients. On AWS the page goes to the user pool's hosted UI; locally to the bridge's
// issuer, which lets you choose a dev user. Where to go comes from the api function
// (meta.auth, from GET /auth/config). The access token lives in sessionStorage (this tab only)
// and goes with every API request as `Authorization: Bearer`.

const TOKEN = 'jobs.auth.token';
const PENDING = 'jobs.auth.pending';

/** From the page's settings (dashboard.rs renders GET /auth/config's answer into index.html). */
export const config = JSON.parse(document.getElementById('meta')?.textContent || '{}').auth || { mode: 'off' };

/** Where the issuer sends the browser back: this page, without query or hash. */
function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(n = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

/** The claims of a JWT (not verified here: the gateway verifies every request). */
function claimsOf(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(decodeURIComponent(escape(atob(part))));
  } catch {
    return null;
  }
}

/** Who the API says is signed in (GET /me: {owner, name, admin}); set by app.js at start. */
export const session = { me: null };

/** The access token if there is one that has not expired (30 s margin). */
export function token() {
  if (config.mode !== 'jwt') return null;
  const t = sessionStorage.getItem(TOKEN);
  const claims = t && claimsOf(t);
  if (!claims || (claims.exp && claims.exp * 1000 < Date.now() + 30_000)) {
    sessionStorage.removeItem(TOKEN);
    return null;
  }
  return t;
}

/** Who is signed in: {name, admin}, or null. */
export function who() {
  const t = token();
  const c = t && claimsOf(t);
  if (!c) return null;
  const groups = c['cognito:groups'] || [];
  return { name: c.username || c['cognito:username'] || c.sub, admin: groups.includes('admin') };
}

/** Off to the issuer's sign-in page; it comes back to this page with ?code=&state=. */
export async function signIn() {
  const verifier = random(48);
  const state = random(16);
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, hash: location.hash }));
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scope || 'openid',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  location.assign(`${config.authorize_url}?${q}`);
}

/** Back from the issuer: trades the code for tokens. Resolves to an error text, or ''. */
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return '';
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', `${redirectUri()}${pending?.hash || ''}`);
  if (params.has('error')) return `Sign-in failed: ${params.get('error_description') || params.get('error')}`;
  if (!pending || pending.state !== params.get('state')) return 'Sign-in failed: the answer did not match this tab (state); try again.';
  let resp;
  try {
    resp = await fetch(config.token_url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: config.client_id,
        code: params.get('code'),
        redirect_uri: redirectUri(),
        code_verifier: pending.verifier,
      }),
    });
  } catch (e) {
    return `Sign-in failed: the token endpoint (${new URL(config.token_url).host}) could not be reached: ${e.message}`;
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok || !body.access_token) return `Sign-in failed: ${body.error_description || body.error || `HTTP ${resp.status}`}`;
  sessionStorage.setItem(TOKEN, body.access_token);
  return '';
}

/** Forgets the token and ends the issuer's session. */
export function signOut() {
  sessionStorage.removeItem(TOKEN);
  const q = new URLSearchParams({ client_id: config.client_id, logout_uri: redirectUri() });
  location.assign(`${config.logout_url}?${q}`);
}

/** The API refused the token (expired, revoked): forget it, so the page asks to sign in again. */
export function forget() {
  sessionStorage.removeItem(TOKEN);
}
