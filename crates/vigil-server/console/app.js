// The console shell: sign-in, navigation (hash routes), and the one API
// helper every page uses. Pages are ES modules exporting
// `render(root, ctx)`, which may return a cleanup function called when the
// user leaves the page (sockets and timers must not outlive it).

import * as live from './live.js';
import * as cameras from './cameras.js';
import * as events from './events.js';
import * as jobs from './jobs.js';
import * as system from './system.js';

const pages = { live, cameras, events, jobs, system };
const view = document.getElementById('view');
let cleanup = null;

/** An API error with the server's own message (`{"error": ...}`). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * fetch() for /v1: same-origin credentials (the session cookie), JSON in
 * and out, errors thrown with the server's message. A 401 sends the user
 * back to the sign-in form.
 */
export async function api(path, { method = 'GET', body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof FormData) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] ??= 'application/json';
    }
  }
  const resp = await fetch(path, init);
  if (resp.status === 401 && path !== '/v1/session') {
    showLogin();
    throw new ApiError(401, 'signed out');
  }
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      msg = (await resp.json()).error ?? msg;
    } catch {
      /* not JSON */
    }
    throw new ApiError(resp.status, msg);
  }
  if (raw) return resp;
  if (resp.status === 204) return null;
  return resp.json();
}

/** Creates an element: h('div', {class: 'x'}, child, 'text', ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A stable colour per class id (the same on every page). */
export function classColor(id) {
  const hue = (Number(id) * 137.508) % 360;
  return `hsl(${hue.toFixed(0)} 85% 55%)`;
}

export function fmtTime(rfc3339) {
  if (!rfc3339) return '—';
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? rfc3339 : d.toLocaleString();
}

/** "x seconds ago" for an RFC 3339 time. */
export function ago(rfc3339) {
  if (!rfc3339) return 'never';
  const s = Math.max(0, (Date.now() - new Date(rfc3339).getTime()) / 1000);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

/** Runs `fn` now and every `ms` until the returned stop() is called. */
export function every(ms, fn) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) console.warn(e);
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function leave() {
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.warn(e);
    }
    cleanup = null;
  }
}

function showLogin() {
  leave();
  document.getElementById('nav').hidden = true;
  document.getElementById('logout').hidden = true;
  const form = document.getElementById('login-tpl').content.cloneNode(true);
  view.replaceChildren(form);
  const f = document.getElementById('login');
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = document.getElementById('login-error');
    err.textContent = '';
    try {
      await api('/v1/session', { method: 'POST', body: { token: document.getElementById('token').value } });
      route();
    } catch (e) {
      err.textContent = e.status === 401 ? 'Wrong token.' : e.message;
    }
  });
  document.getElementById('token').focus();
}

async function route() {
  let session;
  try {
    session = await api('/v1/session');
  } catch (e) {
    view.replaceChildren(h('p', { class: 'error' }, `Cannot reach vigil: ${e.message}`));
    return;
  }
  if (!session.authenticated) {
    showLogin();
    return;
  }
  document.getElementById('nav').hidden = false;
  document.getElementById('logout').hidden = !session.auth_required;
  const [name, ...rest] = (location.hash.replace(/^#\/?/, '') || 'live').split('/');
  const page = pages[name] ?? pages.live;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === name);
  }
  leave();
  view.replaceChildren();
  document.title = `vigil · ${name}`;
  cleanup = (await page.render(view, { args: rest.map(decodeURIComponent) })) ?? null;
}

document.getElementById('logout').addEventListener('click', async () => {
  await api('/v1/session', { method: 'DELETE' }).catch(() => {});
  showLogin();
});
window.addEventListener('hashchange', route);
// Nothing is encoded for a hidden tab: its live views close, and reopen
// when it is shown again.
document.addEventListener('visibilitychange', () => {
  const name = location.hash.replace(/^#\/?/, '').split('/')[0] || 'live';
  if (name === 'live' || name === 'cameras') {
    if (document.hidden) leave();
    else route();
  }
});
route();
