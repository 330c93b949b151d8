// Live: a grid of every stream, its picture over a WebSocket
// (/v1/streams/{id}/live: JPEG + detections, drawn here on a canvas so the
// overlays can be toggled without another encode), state, rates, and its
// last events. A tile opens one large view with overlay toggles.

import { api, h, classColor, every, ago } from './app.js';

const TRAIL = 30; // centres kept per track for trails

/**
 * One live picture on a canvas. The server sends only the newest frame to
 * a slow client; here, too, a frame that arrives while the previous one is
 * still decoding replaces the waiting one instead of queueing.
 */
export class LiveView {
  constructor(stream, canvas, overlays = { boxes: true, zones: true, lines: true, masks: true, trails: false }) {
    this.stream = stream;
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.overlays = overlays;
    this.rules = { zones: [], lines: [], masks: [] };
    this.trails = new Map();
    this.frames = 0;
    this.last = null;
    this.latencyMs = null;
    this.closed = false;
    this.pending = null;
    this.busy = false;
    this.retry = 500;
    this.onframe = null;
    this.extra = null; // extra drawing (the rules editor)
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${proto}://${location.host}/v1/streams/${encodeURIComponent(this.stream)}/live`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        const msg = JSON.parse(m.data);
        if (msg.type === 'rules' && !this.lockRules) this.rules = { zones: msg.zones ?? [], lines: msg.lines ?? [], masks: msg.masks ?? [] };
        return;
      }
      this.retry = 500;
      this.pending = m.data;
      if (!this.busy) this.drain();
    };
    ws.onclose = () => {
      if (this.closed) return;
      // The stream restarted, was paused, or the daemon went away: retry
      // with backoff while the page is open.
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    };
  }

  async drain() {
    this.busy = true;
    while (this.pending && !this.closed) {
      const buf = this.pending;
      this.pending = null;
      try {
        await this.show(buf);
      } catch (e) {
        console.warn(`live ${this.stream}:`, e);
      }
    }
    this.busy = false;
  }

  async show(buf) {
    const view = new DataView(buf);
    const n = view.getUint32(0);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
    const jpeg = new Blob([new Uint8Array(buf, 4 + n)], { type: 'image/jpeg' });
    const bitmap = await createImageBitmap(jpeg);
    this.latencyMs = Date.now() - header.processed_unix_ms;
    this.last = { header, bitmap };
    for (const o of header.objects) {
      if (o.track_id === undefined) continue;
      const [x1, y1, x2, y2] = o.bbox;
      const t = this.trails.get(o.track_id) ?? [];
      t.push([(x1 + x2) / 2, y2]);
      if (t.length > TRAIL) t.shift();
      this.trails.set(o.track_id, t);
    }
    if (this.trails.size > 500) this.trails.clear();
    this.draw();
    this.frames += 1;
    this.canvas.dataset.frames = String(this.frames);
    this.canvas.dataset.objects = String(header.objects.length);
    this.onframe?.(header);
  }

  /** Redraws the last frame (after an overlay toggle or a rules edit). */
  draw() {
    if (!this.last) return;
    const { header, bitmap } = this.last;
    const c = this.canvas;
    if (c.width !== header.width || c.height !== header.height) {
      c.width = header.width;
      c.height = header.height;
    }
    const g = this.ctx;
    g.drawImage(bitmap, 0, 0);
    const lw = Math.max(2, header.width / 400);
    const o = this.overlays;
    if (o.masks) for (const m of this.rules.masks) drawPolygon(g, toPx(m.points ?? m, m.units, header), 'rgba(0,0,0,0.55)', null, lw);
    if (o.zones) {
      for (const z of this.rules.zones) {
        const pts = toPx(z.points, z.units, header);
        drawPolygon(g, pts, 'rgba(56,189,248,0.15)', '#38bdf8', lw);
        if (pts[0]) label(g, z.name ?? 'zone', pts[0][0], pts[0][1], '#38bdf8', header.width);
      }
    }
    if (o.lines) {
      for (const l of this.rules.lines) {
        const [a, b] = toPx([l.a, l.b], l.units, header);
        if (a && b) drawLine(g, a, b, l.name ?? 'line', lw, header.width);
      }
    }
    if (o.trails) {
      for (const [id, pts] of this.trails) {
        if (pts.length < 2) continue;
        g.strokeStyle = classColor(id);
        g.lineWidth = lw;
        g.beginPath();
        pts.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
        g.stroke();
      }
    }
    if (o.boxes) {
      for (const d of header.objects) {
        const [x1, y1, x2, y2] = d.bbox;
        const col = classColor(d.class_id);
        g.strokeStyle = col;
        g.lineWidth = lw;
        g.strokeRect(x1, y1, x2 - x1, y2 - y1);
        const text = `${d.label}${d.track_id !== undefined ? ' #' + d.track_id : ''} ${(d.score * 100).toFixed(0)}%`;
        label(g, text, x1, y1, col, header.width);
      }
    }
    this.extra?.(g, header);
  }

  close() {
    this.closed = true;
    this.ws?.close();
  }
}

/** Points in pixels; `units = "norm"` points are fractions of the frame. */
export function toPx(points, units, header) {
  if (!Array.isArray(points)) return [];
  const norm = units === 'norm';
  return points.map(([x, y]) => (norm ? [x * header.width, y * header.height] : [x, y]));
}

function drawPolygon(g, pts, fill, stroke, lw) {
  if (pts.length < 3) return;
  g.beginPath();
  pts.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
  g.closePath();
  if (fill) {
    g.fillStyle = fill;
    g.fill();
  }
  if (stroke) {
    g.strokeStyle = stroke;
    g.lineWidth = lw;
    g.stroke();
  }
}

/** A counting line with an arrow on its "in" side (left to right of a→b). */
export function drawLine(g, a, b, name, lw, width) {
  g.strokeStyle = '#facc15';
  g.lineWidth = lw * 1.5;
  g.beginPath();
  g.moveTo(a[0], a[1]);
  g.lineTo(b[0], b[1]);
  g.stroke();
  const mx = (a[0] + b[0]) / 2;
  const my = (a[1] + b[1]) / 2;
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len = Math.hypot(dx, dy) || 1;
  // Seen from a looking towards b, "in" is crossing left to right: the
  // arrow points to the right-hand side.
  const nx = -dy / len;
  const ny = dx / len;
  const s = Math.max(12, width / 50);
  g.beginPath();
  g.moveTo(mx - nx * s, my - ny * s);
  g.lineTo(mx + nx * s, my + ny * s);
  g.lineTo(mx + nx * s * 0.5 + (dx / len) * s * 0.3, my + ny * s * 0.5 + (dy / len) * s * 0.3);
  g.stroke();
  label(g, `${name} (in →)`, a[0], a[1], '#facc15', width);
}

function label(g, text, x, y, color, width) {
  const size = Math.max(12, Math.round(width / 60));
  g.font = `600 ${size}px system-ui, sans-serif`;
  const w = g.measureText(text).width + 8;
  const top = Math.max(0, y - size - 6);
  g.fillStyle = color;
  g.fillRect(x, top, w, size + 6);
  g.fillStyle = '#000';
  g.fillText(text, x + 4, top + size);
}

function stateBadge(s) {
  const st = s.blocked && s.state === 'running' ? 'blocked' : s.state;
  return h('span', { class: `badge state-${st}`, 'data-state': st }, st);
}

export async function render(root, { args }) {
  if (args[0]) return renderOne(root, args[0]);
  const grid = h('section', { class: 'grid', id: 'live-grid' });
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Live')), grid);
  const tiles = new Map();
  let lastEvents = [];
  const refresh = async () => {
    const [streams, evs] = await Promise.all([api('/v1/streams'), api('/v1/events?limit=100').catch(() => lastEvents)]);
    lastEvents = evs;
    const ids = new Set(streams.map((s) => s.id));
    for (const [id, t] of tiles) {
      if (!ids.has(id)) {
        t.view.close();
        t.el.remove();
        tiles.delete(id);
      }
    }
    if (streams.length === 0) {
      grid.replaceChildren(h('p', { class: 'muted' }, 'No streams. Add a camera on the ', h('a', { href: '#/cameras' }, 'Cameras'), ' page.'));
      return;
    }
    grid.querySelector('p.muted')?.remove();
    for (const s of streams) {
      let t = tiles.get(s.id);
      if (!t) {
        const canvas = h('canvas', { class: 'live', width: 640, height: 360, 'data-stream': s.id, 'aria-label': `live view of ${s.id}` });
        const meta = h('div', { class: 'meta' });
        const evList = h('ul', { class: 'tile-events' });
        const el = h('article', { class: 'tile card', 'data-stream': s.id },
          h('a', { href: `#/live/${encodeURIComponent(s.id)}`, class: 'picture', title: 'open the large view' }, canvas),
          meta, evList);
        t = { el, meta, evList, view: new LiveView(s.id, canvas) };
        tiles.set(s.id, t);
        grid.append(el);
      }
      t.meta.replaceChildren(
        h('strong', {}, s.id), ' ', stateBadge(s),
        h('span', { class: 'muted' }, ` ${s.fps_processed.toFixed(1)} fps · ${s.frames_dropped} dropped · ${ago(s.last_frame_at)}`),
      );
      const mine = lastEvents.filter((e) => e.stream === s.id).slice(0, 3);
      t.evList.replaceChildren(...mine.map((e) => h('li', {}, h('span', { class: 'etype' }, e.type), ' ', e.label ?? '', e.track_id ? ` #${e.track_id}` : '', e.zone ? ` ${e.zone}` : '', e.line ? ` ${e.line} ${e.direction ?? ''}` : '', h('span', { class: 'muted' }, ` ${ago(e.at)}`))));
    }
  };
  const stop = every(2000, refresh);
  return () => {
    stop();
    for (const t of tiles.values()) t.view.close();
  };
}

/** One stream, large, with overlay toggles. */
function renderOne(root, id) {
  const canvas = h('canvas', { class: 'live large', 'data-stream': id, 'aria-label': `live view of ${id}` });
  const overlays = { boxes: true, zones: true, lines: true, masks: true, trails: true };
  const view = new LiveView(id, canvas, overlays);
  const stat = h('span', { class: 'muted', id: 'live-stat' });
  const toggles = Object.keys(overlays).map((k) =>
    h('label', { class: 'toggle' },
      h('input', { type: 'checkbox', checked: overlays[k], 'data-overlay': k, onchange: (e) => { overlays[k] = e.target.checked; view.draw(); } }),
      ` ${k}`));
  view.onframe = (hd) => {
    stat.textContent = `${hd.objects.length} objects · frame ${hd.seq} · ${view.latencyMs} ms behind`;
  };
  root.append(
    h('div', { class: 'page-head' }, h('a', { href: '#/live' }, '← all streams'), h('h1', {}, id), h('a', { href: `#/cameras/${encodeURIComponent(id)}` }, 'edit rules')),
    h('div', { class: 'toolbar' }, ...toggles, stat),
    h('div', { class: 'picture' }, canvas),
  );
  return () => view.close();
}
