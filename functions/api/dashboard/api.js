// Talking to the API: same origin, paths relative to the page (so a stage prefix works too),
// and every failure turned into an ApiError whose message is a sentence for a person.

import { forget, token } from './auth.js';

const base = new URL('.', document.baseURI);

/** The signed-in user's token for API requests (none when sign-in is off). */
function bearer() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** Set by app.js: what to do when the API says the token is no good (ask to sign in again). */
export const onUnauthorized = { handler: () => {} };

/** The page's settings, rendered into index.html by the api function (dashboard.rs). */
export const meta = JSON.parse(document.getElementById('meta')?.textContent || '{}');

export class ApiError extends Error {
  constructor(message, status = 0, detail = '') {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

export function url(path) {
  return new URL(path.replace(/^\//, ''), base).toString();
}

/** The words for a failed request: what happened, then the server's own reason. */
export function describe(status, serverMessage, what = 'The request') {
  const reason = serverMessage ? `: ${serverMessage}` : '';
  if (status === 0) return `${what} could not reach the API (${base.origin}). Is the stack running?${reason}`;
  if (status === 400) return `${what} was refused as invalid${reason}`;
  if (status === 401) return `Your sign-in has ended; sign in again${reason}`;
  if (status === 403) return `Not allowed${reason}`;
  if (status === 404) return `Not found${reason}`;
  if (status === 429) return `Over a limit; try again later${reason}`;
  if (status === 409) return `Not possible in the job's current state${reason}`;
  if (status === 413) return `Too large${reason}`;
  if (status === 503) return `The service is unavailable right now (503)${reason}`;
  if (status >= 500) return `The service failed (${status})${reason}`;
  return `${what} failed (HTTP ${status})${reason}`;
}

async function errorFrom(resp, what) {
  let message = '';
  try {
    const text = await resp.text();
    try {
      message = JSON.parse(text).error || '';
    } catch {
      message = text.slice(0, 200);
    }
  } catch {
    /* no body */
  }
  return new ApiError(describe(resp.status, message, what), resp.status, message);
}

/** A JSON request. Resolves to the parsed body; rejects with an ApiError in words. */
export async function api(path, { method = 'GET', body, headers = {}, what } = {}) {
  const init = { method, cache: 'no-store', headers: { accept: 'application/json', ...bearer(), ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  let resp;
  try {
    resp = await fetch(url(path), init);
  } catch (e) {
    throw new ApiError(describe(0, e.message, what || `${method} ${path}`));
  }
  if (resp.status === 401) {
    forget();
    onUnauthorized.handler();
  }
  if (!resp.ok) throw await errorFrom(resp, what || `${method} ${path}`);
  const text = await resp.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(`The API answered ${method} ${path} with something that is not JSON`, resp.status);
  }
}

/**
 * An upload with progress events (fetch has none for request bodies): XMLHttpRequest.
 * onProgress(loaded, total). Resolves to {status, body}; rejects with an ApiError.
 */
export function xhrUpload({ method, target, body, headers = {}, onProgress, what = 'The upload' }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, target);
    // The token goes to the API only, never to a presigned S3 URL.
    const toApi = new URL(target, base).origin === base.origin;
    for (const [k, v] of Object.entries({ ...(toApi ? bearer() : {}), ...headers })) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress?.(e.loaded, e.lengthComputable ? e.total : 0);
    xhr.onload = () => {
      let parsed = null;
      try {
        parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        parsed = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ status: xhr.status, body: parsed });
      } else {
        const msg = parsed?.error || s3Error(xhr.responseText) || xhr.statusText;
        reject(new ApiError(describe(xhr.status, msg, what), xhr.status, msg));
      }
    };
    xhr.onerror = () => reject(new ApiError(`${what} failed: the connection to ${new URL(target, base).host} broke or was refused`));
    xhr.onabort = () => reject(new ApiError(`${what} was cancelled`));
    xhr.send(body);
  });
}

/** S3 answers errors in XML: <Error><Code>..</Code><Message>..</Message></Error>. */
function s3Error(text) {
  const code = /<Code>([^<]*)<\/Code>/.exec(text || '')?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text || '')?.[1];
  return code ? `${code}${message ? `: ${message}` : ''}` : '';
}
