// Events: newest first, filterable by stream, type, label and delivery
// status, with the snapshot, the full JSON and each webhook's delivery
// state; refreshed every few seconds while open.

import { api, h, every, fmtTime } from './app.js';

const TYPES = ['track.started', 'track.ended', 'zone.entered', 'zone.left', 'line.crossed', 'drift.detected', 'camera.anomaly'];
const LIMIT = 500;

export async function render(root) {
  const f = {
    stream: h('select', { id: 'f-stream', 'aria-label': 'stream' }, h('option', { value: '' }, 'all streams')),
    type: h('select', { id: 'f-type', 'aria-label': 'type' }, h('option', { value: '' }, 'all types'), ...TYPES.map((t) => h('option', { value: t }, t))),
    label: h('input', { id: 'f-label', type: 'search', placeholder: 'label (e.g. person)', 'aria-label': 'label' }),
    status: h('select', { id: 'f-status', 'aria-label': 'delivery status' },
      h('option', { value: '' }, 'any delivery'), ...['pending', 'delivered', 'dead'].map((s) => h('option', { value: s }, s))),
  };
  const list = h('ol', { class: 'events', id: 'events' });
  const count = h('span', { class: 'muted' });
  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Events'), count),
    h('div', { class: 'toolbar' }, f.stream, f.type, f.label, f.status),
    list,
  );
  const open = new Set(); // expanded event ids survive refreshes
  let rows = [];
  const show = () => {
    const want = {
      stream: f.stream.value,
      type: f.type.value,
      label: f.label.value.trim().toLowerCase(),
    };
    const shown = rows.filter((e) =>
      (!want.stream || e.stream === want.stream) &&
      (!want.type || e.type === want.type) &&
      (!want.label || (e.label ?? '').toLowerCase().includes(want.label)));
    count.textContent = `${shown.length} of the last ${rows.length}`;
    list.replaceChildren(...(shown.length ? shown.map((e) => item(e, open)) : [h('li', { class: 'muted' }, 'No events match.')]));
  };
  const refresh = async () => {
    const q = f.status.value ? `&status=${f.status.value}` : '';
    rows = await api(`/v1/events?limit=${LIMIT}${q}`);
    const streams = [...new Set(rows.map((e) => e.stream))].sort();
    const have = [...f.stream.options].map((o) => o.value);
    for (const s of streams) if (!have.includes(s)) f.stream.append(h('option', { value: s }, s));
    show();
  };
  for (const el of [f.stream, f.type, f.label]) {
    el.addEventListener('input', show);
    el.addEventListener('change', show);
  }
  f.status.addEventListener('change', refresh);
  return every(3000, refresh);
}

function item(e, open) {
  const thumb = e.snapshot_url
    ? h('a', { href: e.snapshot_url, target: '_blank', rel: 'noopener' },
      h('img', { class: 'thumb', src: e.snapshot_url, alt: `snapshot of ${e.type}`, loading: 'lazy', width: 160, height: 120 }))
    : h('div', { class: 'thumb none' }, 'no snapshot');
  const what = [e.label, e.track_id ? `#${e.track_id}` : null, e.zone ? `zone ${e.zone}` : null,
    e.line ? `line ${e.line}${e.direction ? ' ' + e.direction : ''}` : null,
    e.score !== undefined ? `${(e.score * 100).toFixed(0)}%` : null].filter(Boolean).join(' · ');
  const deliveries = (e.deliveries ?? []).map((d) =>
    h('li', {}, h('span', { class: `badge del-${d.status}` }, d.status), ' ',
      d.webhook, ` · ${d.attempts} attempt(s)`, d.last_error ? h('span', { class: 'error' }, ` · ${d.last_error}`) : ''));
  const details = h('details', { open: open.has(e.id), ontoggle: (ev) => (ev.target.open ? open.add(e.id) : open.delete(e.id)) },
    h('summary', {}, 'JSON and deliveries'),
    deliveries.length ? h('ul', { class: 'deliveries' }, deliveries) : h('p', { class: 'muted' }, 'No webhooks configured for this event.'),
    h('pre', {}, JSON.stringify(e, null, 2)));
  return h('li', { class: 'event card', 'data-id': e.id },
    thumb,
    h('div', { class: 'body' },
      h('div', {}, h('span', { class: 'etype' }, e.type), ' ', h('strong', {}, e.stream), ' ', h('span', { class: `badge del-${e.status}` }, e.status)),
      h('div', {}, what),
      h('div', { class: 'muted' }, fmtTime(e.at)),
      details));
}
