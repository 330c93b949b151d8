// Jobs: drop a video, watch it upload and process, then play the
// annotated MP4 in the page (served with Range, moov first, so it starts
// and seeks before the download ends) next to its JSON Lines.

import { api, h } from './app.js';

const KEY = 'vigil.jobs'; // ids of jobs started from this browser (there is no job list route)

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? '[]');
  } catch {
    return [];
  }
}

function remember(id) {
  const ids = [id, ...remembered().filter((x) => x !== id)].slice(0, 20);
  localStorage.setItem(KEY, JSON.stringify(ids));
}

export async function render(root) {
  const input = h('input', { type: 'file', id: 'job-file', accept: 'video/*,.avi,.mkv,.mp4,.mov' });
  const every = h('input', { type: 'number', id: 'job-every', min: 1, placeholder: 'every Nth frame', 'aria-label': 'every Nth frame' });
  const drop = h('label', { class: 'drop card', id: 'drop', for: 'job-file' },
    h('strong', {}, 'Drop a video here'), h('span', { class: 'muted' }, ' or click to choose one'), input);
  const list = h('div', { id: 'jobs' });
  root.append(h('div', { class: 'page-head' }, h('h1', {}, 'Jobs')), h('div', { class: 'toolbar' }, every), drop, list);
  const timers = new Set();
  const start = (file) => {
    if (!file) return;
    const card = jobCard(file.name);
    list.prepend(card.el);
    upload(file, every.value, card, timers);
  };
  input.addEventListener('change', () => start(input.files[0]));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    start(e.dataTransfer.files[0]);
  });
  for (const id of remembered()) {
    const card = jobCard(id.slice(0, 8));
    list.append(card.el);
    poll(id, card, timers, true);
  }
  return () => {
    for (const t of timers) clearTimeout(t);
  };
}

function jobCard(title) {
  const up = h('progress', { class: 'upload', max: 1, value: 0 });
  const proc = h('progress', { class: 'processing', max: 1, value: 0 });
  const status = h('span', { class: 'status' }, 'uploading');
  const result = h('div', { class: 'result' });
  const el = h('section', { class: 'job card' },
    h('h2', {}, title), h('div', {}, status),
    h('label', {}, 'Upload ', up), h('label', {}, 'Processing ', proc), result);
  return { el, up, proc, status, result };
}

/** XMLHttpRequest, not fetch: only it reports upload progress. */
function upload(file, everyN, card, timers) {
  const xhr = new XMLHttpRequest();
  const q = everyN ? `?every=${encodeURIComponent(everyN)}` : '';
  xhr.open('POST', `/v1/jobs${q}`);
  xhr.withCredentials = true;
  xhr.setRequestHeader('Content-Type', 'application/octet-stream');
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) {
      card.up.value = e.loaded / e.total;
      card.status.textContent = `uploading ${(100 * e.loaded / e.total).toFixed(0)} %`;
    }
  };
  xhr.onload = () => {
    let body = {};
    try {
      body = JSON.parse(xhr.responseText);
    } catch {
      /* not JSON */
    }
    if (xhr.status !== 202) {
      card.status.textContent = `upload refused: ${body.error ?? xhr.status}`;
      card.status.classList.add('error');
      return;
    }
    card.up.value = 1;
    card.el.dataset.job = body.id;
    remember(body.id);
    poll(body.id, card, timers, false);
  };
  xhr.onerror = () => {
    card.status.textContent = 'upload failed (connection lost)';
    card.status.classList.add('error');
  };
  xhr.send(file);
}

function poll(id, card, timers, old) {
  card.el.dataset.job = id;
  if (old) card.up.value = 1;
  const tick = async () => {
    let job;
    try {
      job = await api(`/v1/jobs/${id}`);
    } catch (e) {
      card.status.textContent = e.status === 404 ? 'expired' : e.message;
      return;
    }
    card.proc.value = job.progress;
    card.status.textContent = `${job.status} · ${(job.progress * 100).toFixed(0)} %` +
      (job.frames_total ? ` · ${job.frames_done}/${job.frames_total} frames` : '');
    card.el.dataset.status = job.status;
    if (job.status === 'failed') {
      card.status.textContent = `failed: ${job.error ?? 'unknown error'}`;
      card.status.classList.add('error');
      return;
    }
    if (job.status === 'succeeded') {
      card.result.replaceChildren(
        h('video', { src: `/v1/jobs/${id}/video`, controls: true, preload: 'metadata', playsinline: true, muted: true }),
        h('p', {}, h('a', { href: `/v1/jobs/${id}/detections`, download: `${id}.jsonl` }, 'Detections (JSON Lines)'),
          ' · ', h('a', { href: `/v1/jobs/${id}/video`, download: `${id}.mp4` }, 'Annotated MP4')));
      return;
    }
    const t = setTimeout(tick, 700);
    timers.add(t);
  };
  tick();
}
