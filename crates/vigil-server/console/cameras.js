// Cameras: add (with a test that opens the URL), pause/resume, remove;
// and, per camera, the rules editor drawn on the live picture: zones and
// masks (polygons) and counting lines (with direction), saved through
// PATCH /v1/streams/{id} (JSON merge patch, If-Match).

import { api, h, every, ago } from './app.js';
import { LiveView, toPx } from './live.js';

export async function render(root, { args }) {
  if (args[0]) return editor(root, args[0]);
  const rows = h('tbody', { id: 'cameras' });
  const msg = h('p', { class: 'muted', id: 'add-msg', role: 'status' });
  const f = {
    id: h('input', { name: 'id', required: true, pattern: '[A-Za-z0-9_.\\-]{1,64}', placeholder: 'front-door' }),
    url: h('input', { name: 'url', required: true, placeholder: 'rtsp://user:pass@camera/stream', autocomplete: 'off' }),
    every: h('input', { name: 'every', type: 'number', min: 1, placeholder: 'all' }),
    fps: h('input', { name: 'fps', type: 'number', min: 0.1, step: 0.1, placeholder: 'all' }),
    transport: h('select', { name: 'transport' }, h('option', { value: 'tcp' }, 'tcp'), h('option', { value: 'udp' }, 'udp')),
  };
  const test = h('button', { type: 'button', class: 'secondary', id: 'test-url' }, 'Test');
  const form = h('form', { class: 'card form', id: 'add-camera' },
    h('h2', { class: 'wide' }, 'Add a camera'),
    h('label', {}, 'Name', f.id),
    h('label', { class: 'wide' }, 'URL (credentials are never shown back)', f.url),
    h('label', {}, 'Detect every Nth frame', f.every),
    h('label', {}, 'or at fps', f.fps),
    h('label', {}, 'RTSP transport', f.transport),
    h('div', { class: 'toolbar' }, test, h('button', { type: 'submit' }, 'Add')),
    h('div', { class: 'wide' }, msg));
  test.addEventListener('click', async () => {
    msg.className = 'muted';
    msg.textContent = 'Opening…';
    test.disabled = true;
    try {
      const r = await api('/v1/probe', { method: 'POST', body: { url: f.url.value, transport: f.transport.value } });
      msg.className = 'ok';
      msg.textContent = `OK: ${r.width}×${r.height} at ${r.fps.toFixed(1)} fps`;
    } catch (e) {
      msg.className = 'error';
      msg.textContent = e.message;
    } finally {
      test.disabled = false;
    }
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { id: f.id.value.trim(), url: f.url.value.trim(), transport: f.transport.value };
    if (f.every.value) body.every = Number(f.every.value);
    if (f.fps.value) body.fps = Number(f.fps.value);
    try {
      await api('/v1/streams', { method: 'POST', body });
      msg.className = 'ok';
      msg.textContent = `Added ${body.id}.`;
      form.reset();
      refresh();
    } catch (e) {
      msg.className = 'error';
      msg.textContent = e.message;
    }
  });
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Cameras')),
    h('section', { class: 'card scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ['name', 'URL', 'state', 'fps', 'reconnects', 'last frame', ''].map((c) => h('th', {}, c)))),
      rows)),
    form,
  );
  // Pausing and rule editing need GET/PATCH /v1/streams/{id}; on a daemon
  // without them only add/remove are offered.
  let editable = null;
  const detail = new Map(); // id -> enabled, from GET /v1/streams/{id}
  const refresh = async () => {
    const streams = await api('/v1/streams');
    if (editable === null) {
      // The daemon's own OpenAPI document says whether it can PATCH.
      const doc = await fetch('/openapi.json').then((r) => r.json(), () => ({}));
      editable = Boolean(doc.paths?.['/v1/streams/{id}']?.patch);
    }
    if (editable) {
      await Promise.all(streams.map((s) => api(`/v1/streams/${encodeURIComponent(s.id)}`)
        .then((d) => detail.set(s.id, (d.config ?? d).enabled !== false), () => {})));
    }
    rows.replaceChildren(...streams.map((s) => {
      const paused = detail.get(s.id) === false;
      const act = async (fn) => {
        try {
          await fn();
        } catch (e) {
          msg.className = 'error';
          msg.textContent = `${s.id}: ${e.message}`;
        }
        refresh();
      };
      return h('tr', { 'data-stream': s.id },
        h('td', {}, h('a', { href: `#/live/${encodeURIComponent(s.id)}` }, s.id)),
        h('td', { class: 'url' }, s.url),
        h('td', {}, h('span', { class: `badge state-${paused ? 'paused' : s.blocked && s.state === 'running' ? 'blocked' : s.state}`, 'data-state': s.state }, paused ? 'paused' : s.state),
          s.error ? h('div', { class: 'error' }, s.error) : ''),
        h('td', {}, s.fps_processed.toFixed(1)),
        h('td', {}, String(s.reconnects)),
        h('td', {}, ago(s.last_frame_at)),
        h('td', {}, h('div', { class: 'actions' },
          editable ? h('a', { class: 'button secondary', href: `#/cameras/${encodeURIComponent(s.id)}` }, 'Rules') : '',
          editable
            ? h('button', { class: 'secondary', 'data-action': paused ? 'resume' : 'pause', onclick: () => act(() => patch(s.id, { enabled: paused })) }, paused ? 'Resume' : 'Pause')
            : '',
          h('button', { class: 'danger', onclick: () => confirm(`Remove ${s.id}?`) && act(() => api(`/v1/streams/${encodeURIComponent(s.id)}`, { method: 'DELETE' })) }, 'Remove'))));
    }));
  };
  return every(2000, refresh);
}

/** PATCH with JSON merge patch; `etag` (If-Match) makes a stale edit fail. */
async function patch(id, body, etag) {
  const headers = { 'Content-Type': 'application/merge-patch+json' };
  if (etag) headers['If-Match'] = etag;
  const resp = await api(`/v1/streams/${encodeURIComponent(id)}`, { method: 'PATCH', body, headers, raw: true });
  return { stream: await resp.json(), etag: resp.headers.get('ETag') };
}

const HIT = 12; // px on screen to grab a vertex

/** The rules editor for one stream. */
async function editor(root, id) {
  let etag = null;
  let rules = { zones: [], lines: [], masks: [] };
  let header = null; // size of the live frame, for norm → px
  const status = h('p', { id: 'rules-msg', class: 'muted', role: 'status' });
  const load = async () => {
    const resp = await api(`/v1/streams/${encodeURIComponent(id)}`, { raw: true });
    const s = await resp.json();
    etag = resp.headers.get('ETag');
    const cfg = s.config ?? s; // GET /v1/streams/{id}: status + `config`
    rules = { zones: clone(cfg.zones), lines: clone(cfg.lines), masks: clone(cfg.masks) };
  };
  try {
    await load();
  } catch (e) {
    root.append(h('p', { class: 'error' }, `Cannot load ${id}: ${e.message}`));
    return null;
  }
  const canvas = h('canvas', { class: 'live', id: 'rules-canvas', 'data-stream': id });
  const view = new LiveView(id, canvas, { boxes: true, zones: true, lines: true, masks: true, trails: false });
  view.lockRules = true;
  const px = () => ({
    zones: rules.zones.map((z) => ({ ...z, points: toPx(z.points, z.units, header), units: 'px' })),
    lines: rules.lines.map((l) => {
      const [a, b] = toPx([l.a, l.b], l.units, header);
      return { ...l, a, b, units: 'px' };
    }),
    masks: rules.masks.map((m) => ({ ...m, points: toPx(m.points, m.units, header), units: 'px' })),
  });
  let tool = 'select';
  let draft = null; // polygon being drawn, or line being dragged
  let sel = null; // {kind, index}
  let drag = null;
  const list = h('ul', { class: 'rules-list', id: 'rules-list' });
  const counts = new Map();

  const sync = () => {
    view.rules = rules;
    view.draw();
    list.replaceChildren(
      ...['zones', 'lines', 'masks'].flatMap((kind) => rules[kind].map((r, i) =>
        h('li', { class: sel && sel.kind === kind && sel.index === i ? 'selected' : '', onclick: () => { sel = { kind, index: i }; sync(); } },
          h('span', {}, `${kind.slice(0, -1)} `,
            h('input', { value: r.name ?? '', size: 10, 'aria-label': 'name', onchange: (e) => { r.name = e.target.value; sync(); } })),
          h('span', { class: 'muted' }, counts.get(`${kind}:${r.name}`) ?? ''),
          kind === 'lines' ? h('button', { class: 'link', title: 'reverse the direction', onclick: (e) => { e.stopPropagation(); [r.a, r.b] = [r.b, r.a]; sync(); } }, '⇄') : '',
          h('button', { class: 'link', title: 'delete', onclick: (e) => { e.stopPropagation(); rules[kind].splice(i, 1); sel = null; sync(); } }, '✕')))),
    );
    if (!list.children.length) list.append(h('li', { class: 'muted' }, 'No rules yet: pick a tool and draw on the picture.'));
  };
  view.onframe = (hd) => {
    const first = !header;
    header = { width: hd.width, height: hd.height };
    if (first) {
      rules = px();
      sync();
    }
    // Objects now in each zone (anchor: bottom centre, the default).
    for (const z of rules.zones) {
      const n = hd.objects.filter((o) => inside([(o.bbox[0] + o.bbox[2]) / 2, o.bbox[3]], z.points)).length;
      counts.set(`zones:${z.name}`, `${n} inside`);
    }
  };
  view.extra = (g) => {
    if (draft?.points) {
      g.strokeStyle = '#fff';
      g.setLineDash([6, 4]);
      g.lineWidth = 2;
      g.beginPath();
      draft.points.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
      if (draft.cursor) g.lineTo(...draft.cursor);
      g.stroke();
      g.setLineDash([]);
    }
    if (sel) {
      const r = rules[sel.kind][sel.index];
      if (r) {
        g.fillStyle = '#fff';
        for (const [x, y] of vertices(sel.kind, r)) g.fillRect(x - 5, y - 5, 10, 10);
      }
    }
  };

  const pos = (ev) => {
    const rect = canvas.getBoundingClientRect();
    return [(ev.clientX - rect.left) * (canvas.width / rect.width), (ev.clientY - rect.top) * (canvas.height / rect.height)];
  };
  const near = (a, b) => Math.hypot(a[0] - b[0], a[1] - b[1]) < HIT * (canvas.width / canvas.getBoundingClientRect().width);
  const nextName = (kind) => {
    const base = kind.slice(0, -1);
    let i = rules[kind].length + 1;
    while (rules[kind].some((r) => r.name === `${base}${i}`)) i += 1;
    return `${base}${i}`;
  };

  canvas.addEventListener('pointerdown', (ev) => {
    if (!header) return;
    const p = pos(ev);
    canvas.setPointerCapture(ev.pointerId);
    if (tool === 'line') {
      draft = { kind: 'lines', a: p, b: p };
      return;
    }
    if (tool === 'zone' || tool === 'mask') {
      const kind = tool === 'zone' ? 'zones' : 'masks';
      if (!draft) draft = { kind, points: [] };
      if (draft.points.length >= 3 && near(p, draft.points[0])) {
        rules[kind].push({ name: nextName(kind), points: draft.points, units: 'px' });
        sel = { kind, index: rules[kind].length - 1 };
        draft = null;
      } else {
        draft.points.push(p);
      }
      sync();
      return;
    }
    // Select: a vertex of the selection, else a shape under the pointer.
    if (sel) {
      const r = rules[sel.kind][sel.index];
      const vi = r ? vertices(sel.kind, r).findIndex((v) => near(p, v)) : -1;
      if (vi >= 0) {
        drag = { vertex: vi, from: p };
        return;
      }
    }
    sel = hitTest(rules, p, near);
    drag = sel ? { vertex: -1, from: p } : null;
    sync();
  });
  canvas.addEventListener('pointermove', (ev) => {
    if (!header) return;
    const p = pos(ev);
    if (draft?.kind === 'lines') {
      draft.b = p;
      view.draw();
      const g = view.ctx;
      g.strokeStyle = '#fff';
      g.lineWidth = 2;
      g.beginPath();
      g.moveTo(...draft.a);
      g.lineTo(...p);
      g.stroke();
      return;
    }
    if (draft?.points) {
      draft.cursor = p;
      view.draw();
      return;
    }
    if (drag && sel) {
      const r = rules[sel.kind][sel.index];
      const dx = p[0] - drag.from[0];
      const dy = p[1] - drag.from[1];
      drag.from = p;
      moveShape(sel.kind, r, drag.vertex, dx, dy);
      view.draw();
    }
  });
  canvas.addEventListener('pointerup', (ev) => {
    if (draft?.kind === 'lines') {
      const p = pos(ev);
      if (!near(p, draft.a)) {
        rules.lines.push({ name: nextName('lines'), a: draft.a, b: p, units: 'px' });
        sel = { kind: 'lines', index: rules.lines.length - 1 };
      }
      draft = null;
      sync();
    }
    if (drag) {
      drag = null;
      sync();
    }
  });
  const onKey = (ev) => {
    if (ev.target instanceof HTMLInputElement) return;
    if (ev.key === 'Escape') {
      draft = null;
      sync();
    } else if ((ev.key === 'Delete' || ev.key === 'Backspace') && sel) {
      rules[sel.kind].splice(sel.index, 1);
      sel = null;
      sync();
    } else if (ev.key === 'Enter' && draft?.points?.length >= 3) {
      rules[draft.kind].push({ name: nextName(draft.kind), points: draft.points, units: 'px' });
      draft = null;
      sync();
    }
  };
  document.addEventListener('keydown', onKey);

  const tools = ['select', 'zone', 'line', 'mask'].map((t) =>
    h('label', { class: 'toggle' }, h('input', { type: 'radio', name: 'tool', value: t, checked: t === tool, 'data-tool': t, onchange: () => { tool = t; draft = null; sync(); } }), ` ${t}`));
  const save = h('button', { id: 'save-rules', onclick: async () => {
    const body = { zones: rules.zones.map(round), lines: rules.lines.map(round), masks: rules.masks.map(round) };
    try {
      const r = await patch(id, body, etag);
      etag = r.etag;
      status.className = 'ok';
      status.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
    } catch (e) {
      status.className = 'error';
      status.textContent = e.status === 412 ? 'Someone else changed this stream; reload to see their version.' : e.message;
    }
  } }, 'Save');
  const reload = h('button', { class: 'secondary', onclick: async () => { await load(); header = null; sel = null; status.textContent = 'Reloaded.'; } }, 'Reload');
  root.append(
    h('div', { class: 'page-head' }, h('a', { href: '#/cameras' }, '← cameras'), h('h1', {}, `Rules of ${id}`)),
    h('div', { class: 'toolbar' }, ...tools, h('span', { class: 'muted' }, 'zone/mask: click the corners, click the first one (or Enter) to close · line: drag from a to b (in = left to right) · select: drag a shape or a corner, Delete removes')),
    h('div', { class: 'editor' }, h('div', { class: 'picture' }, canvas),
      h('aside', { class: 'card' }, h('h2', {}, 'Rules'), list, h('div', { class: 'toolbar' }, save, reload), status)),
  );
  sync();
  // Line crossings counted from the events (newest 500).
  const stopCounts = every(3000, async () => {
    const evs = await api('/v1/events?limit=500');
    for (const l of rules.lines) {
      const mine = evs.filter((e) => e.stream === id && e.type === 'line.crossed' && e.line === l.name);
      const inn = mine.filter((e) => e.direction === 'in').length;
      counts.set(`lines:${l.name}`, `${inn} in · ${mine.length - inn} out`);
    }
    sync();
  });
  return () => {
    stopCounts();
    view.close();
    document.removeEventListener('keydown', onKey);
  };
}

function clone(v) {
  return Array.isArray(v) ? JSON.parse(JSON.stringify(v)) : [];
}

function round(r) {
  const rp = (p) => [Math.round(p[0]), Math.round(p[1])];
  const out = { ...r, units: 'px' };
  if (r.points) out.points = r.points.map(rp);
  if (r.a) out.a = rp(r.a);
  if (r.b) out.b = rp(r.b);
  return out;
}

function vertices(kind, r) {
  return kind === 'lines' ? [r.a, r.b] : r.points;
}

function moveShape(kind, r, vertex, dx, dy) {
  const pts = vertices(kind, r);
  const move = (p) => [p[0] + dx, p[1] + dy];
  if (vertex >= 0) {
    if (kind === 'lines') r[vertex === 0 ? 'a' : 'b'] = move(pts[vertex]);
    else r.points[vertex] = move(pts[vertex]);
  } else if (kind === 'lines') {
    r.a = move(r.a);
    r.b = move(r.b);
  } else {
    r.points = r.points.map(move);
  }
}

function hitTest(rules, p, near) {
  for (let i = rules.lines.length - 1; i >= 0; i -= 1) {
    const l = rules.lines[i];
    if (near(p, closest(p, l.a, l.b))) return { kind: 'lines', index: i };
  }
  for (const kind of ['zones', 'masks']) {
    for (let i = rules[kind].length - 1; i >= 0; i -= 1) {
      if (inside(p, rules[kind][i].points)) return { kind, index: i };
    }
  }
  return null;
}

function closest(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const t = Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy || 1)));
  return [a[0] + t * dx, a[1] + t * dy];
}

function inside([x, y], pts) {
  let c = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i];
    const [xj, yj] = pts[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) c = !c;
  }
  return c;
}
