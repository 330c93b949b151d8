// System: device, model, batching, per-stage latency (P50/P95 from the
// Prometheus histograms, since start), drift PSI and camera health per
// stream. /metrics has the same numbers for Prometheus.

import { api, h, every } from './app.js';

const ms = (v) => (v === null || v === undefined ? '—' : `${v.toFixed(1)} ms`);

export async function render(root) {
  const body = h('div', { id: 'system' });
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'System'), h('a', { href: '/metrics', target: '_blank' }, '/metrics')), body);
  return every(5000, async () => {
    const s = await api('/v1/system');
    body.replaceChildren(
      h('section', { class: 'card' },
        h('h2', {}, 'Inference'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Device'), h('dd', { id: 'sys-device' }, `${s.device} · ${s.precision}`),
          h('dt', {}, 'Runtime'), h('dd', {}, s.backend),
          h('dt', {}, 'Model'), h('dd', {}, s.model),
          h('dt', {}, 'Batch'), h('dd', {}, `up to ${s.batch_max_size} frames, waits ${s.batch_max_wait_ms} ms` +
            (s.batch_mean ? ` (mean ${s.batch_mean.toFixed(2)})` : '')),
          h('dt', {}, 'Sessions'), h('dd', {}, String(s.sessions)))),
      h('section', { class: 'card' },
        h('h2', {}, 'Latency per stage'),
        table(['stage', 'frames', 'P50', 'P95'],
          [...s.stages, { ...s.live_latency, name: 'live view' }].map((q) => [q.name, q.count, ms(q.p50_ms), ms(q.p95_ms)]))),
      h('section', { class: 'card' },
        h('h2', {}, 'Streams'),
        table(['stream', 'state', 'fps', 'camera health', 'drift PSI', 'camera anomalies', 'viewers'],
          s.streams.map((st) => [
            st.id,
            h('span', { class: `badge state-${st.blocked ? 'blocked' : st.state}` }, st.blocked ? 'blocked' : st.state),
            st.fps_processed.toFixed(1),
            st.health.length
              ? h('span', { class: 'badge state-failed' }, st.health.join(', '))
              : h('span', { class: 'badge state-running' }, 'ok'),
            Object.entries(st.drift_psi).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ') || '—',
            Object.entries(st.anomalies).filter(([, v]) => v > 0).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none',
            String(st.viewers),
          ]))),
    );
  });
}

function table(head, rows) {
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))) : h('tr', {}, h('td', { colspan: head.length, class: 'muted' }, 'none')))));
}
