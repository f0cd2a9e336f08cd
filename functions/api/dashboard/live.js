// Live updates: one WebSocket to the WebSocket API (meta.live_url; README "Live updates"), signed
// in with the page's token as `?token=` (none when sign-in is off), subscribed to every job the
// user may see. Each change arrives as a JobUpdate ({type: "job", job_id, status, progress, stage,
// counts, error, job_version, ...}); versions already seen are dropped (delivery is at least once).
// A broken connection is retried with exponential backoff (1 s doubling to 30 s, jittered); while
// it is not live the page polls as before (app.js), while live it does not.

import { meta } from './api.js';
import { config, token } from './auth.js';

const BASE_MS = 1000;
const CAP_MS = 30000;
/** API Gateway closes a connection idle for 10 min: say something before that. */
const KEEPALIVE_MS = 8 * 60 * 1000;

/**
 * startLive({onUpdate(msg), onLive() -> Promise, onState(state)}): connects and keeps connecting.
 * States: 'off' (no live URL in this deployment), 'connecting', 'live', 'offline'.
 * onLive runs on every (re)subscription, before the state turns 'live' (the view refetches once,
 * closing the gap while it was not connected). Returns {state(), stop()}.
 */
export function startLive({ onUpdate, onLive = async () => {}, onState = () => {} }) {
  let state = '';
  let socket = null;
  let attempt = 0;
  let retryTimer = null;
  let keepAlive = null;
  let stopped = false;
  const seen = new Map(); // job_id -> highest job_version applied

  function set(s, detail = '') {
    if (s === state && !detail) return;
    state = s;
    onState(s, detail);
  }

  function schedule(detail) {
    set('offline', detail);
    if (stopped) return;
    // Full jitter over an exponential bound: many pages do not come back at the same moment.
    const bound = Math.min(CAP_MS, BASE_MS * 2 ** attempt);
    attempt += 1;
    const wait = Math.round(bound / 2 + (Math.random() * bound) / 2);
    retryTimer = setTimeout(connect, wait);
  }

  function connect() {
    retryTimer = null;
    if (stopped) return;
    const t = token();
    if (config.mode === 'jwt' && !t) return schedule('not signed in');
    let url;
    try {
      url = new URL(meta.live_url);
      if (t) url.searchParams.set('token', t);
    } catch {
      set('off', `not a WebSocket URL: ${meta.live_url}`);
      return;
    }
    set('connecting');
    let ws;
    try {
      ws = new WebSocket(url.toString());
    } catch (e) {
      return schedule(e.message);
    }
    socket = ws;
    let subscribed = false;
    ws.onopen = () => ws.send(JSON.stringify({ action: 'subscribe' }));
    ws.onmessage = async (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === 'subscribed' && !subscribed) {
        subscribed = true;
        try {
          await onLive();
        } catch {
          /* the view shows its own error; pushes still apply */
        }
        if (socket === ws && ws.readyState === WebSocket.OPEN) {
          attempt = 0;
          set('live');
        }
      } else if (msg.type === 'job') {
        const last = seen.get(msg.job_id);
        if (last !== undefined && msg.job_version <= last) return;
        seen.set(msg.job_id, msg.job_version);
        onUpdate(msg);
      } else if (msg.type === 'error') {
        console.warn(`live updates: ${msg.error}`);
      }
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      schedule(event.code === 1000 ? 'closed' : `connection lost (${event.code})`);
    };
    // An error is followed by close, which reconnects.
  }

  if (!meta.live_url) {
    set('off', 'this deployment names no WebSocket URL');
  } else {
    connect();
    // Re-subscribing is harmless and counts as activity for API Gateway's idle timeout.
    keepAlive = setInterval(() => {
      if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ action: 'subscribe' }));
    }, KEEPALIVE_MS);
  }

  return {
    state: () => state,
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearInterval(keepAlive);
      const ws = socket;
      socket = null;
      ws?.close(1000);
      set('offline', 'stopped');
    },
  };
}

/**
 * Runs fn at most once per `ms`, the last call always honoured (pushes come in bursts). Each call
 * resolves when the run that covers it has finished (its error is the view's to show).
 */
export function throttle(fn, ms) {
  let pending = null;
  let last = 0;
  return () => {
    if (pending) return pending;
    const wait = Math.max(0, last + ms - Date.now());
    pending = new Promise((resolve) => setTimeout(resolve, wait)).then(async () => {
      last = Date.now();
      pending = null;
      try {
        await fn();
      } catch {
        /* shown by the view */
      }
    });
    return pending;
  };
}
