/**
 * The playground's browser script (ES2020, no dependencies), served as a module from the edge so
 * the Content-Security-Policy needs no inline script. It talks to the same API as any client:
 * POST /v1/generations/quote while the form changes, POST /v1/generations, the job's SSE stream
 * read with fetch() (EventSource cannot send the Authorization header; polling is the fallback),
 * GET /v1/generations/{id} for the finished job with fresh presigned URLs.
 *
 * Written without template literals so it can live in a String.raw module.
 */
export const PLAYGROUND_JS = String.raw`
'use strict';

const KEY_STORE = 'sd3.playground.key';
const HISTORY_STORE = 'sd3.playground.history';
const HISTORY_MAX = 50;
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const FIELDS = ['prompt', 'negative_prompt', 'model', 'aspect_ratio', 'width', 'height', 'steps',
  'guidance_scale', 'seed', 'n', 'output_format', 'image', 'strength'];
const LABELS = { prompt: 'Prompt', negative_prompt: 'Negative prompt', model: 'Model', aspect_ratio: 'Size',
  width: 'Width', height: 'Height', steps: 'Steps', guidance_scale: 'Guidance', seed: 'Seed', n: 'Images',
  output_format: 'Format', image: 'Initial image', strength: 'Strength', previews: 'Live previews' };
const TIMINGS = [['queue_ms', 'In queue'], ['model_load_ms', 'Model load'], ['encode_ms', 'Text encoding'],
  ['denoise_ms', 'Denoising'], ['decode_ms', 'Decoding'], ['upload_ms', 'Upload'], ['total_ms', 'Total']];

const $ = (id) => document.getElementById(id);
const form = $('gen-form');
const keyInput = $('f-key');
let models = [];
let initImage = null; // data: URL of the chosen file
let quoteTimer = 0;
let quoteSeq = 0;
let follow = null; // { id, abort: AbortController }
let current = null; // the job shown in the result panel

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'onclick') node.addEventListener('click', v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children || []) node.append(child);
  return node;
}

function storage(name) {
  try { return window.sessionStorage.getItem(name); } catch { return null; }
}
function store(name, value) {
  try {
    if (value === null) window.sessionStorage.removeItem(name);
    else window.sessionStorage.setItem(name, value);
  } catch { /* storage disabled: the page still works for this visit */ }
}

// ---- API access -------------------------------------------------------------------------------

function key() { return keyInput.value.trim(); }

/** Every answer as { ok, status, data } or { ok: false, problem } (problem+json, or one made up for network errors). */
async function api(method, path, body, signal) {
  const headers = { accept: 'application/json' };
  if (key()) headers.authorization = 'Bearer ' + key();
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    return { ok: false, status: 0, problem: { title: 'Network error', detail: 'The server could not be reached (' + (err && err.message ? err.message : err) + '). Check your connection and try again.' } };
  }
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (res.ok) return { ok: true, status: res.status, data, headers: res.headers };
  const problem = data && typeof data === 'object' && data.title ? data : {
    title: 'HTTP ' + res.status, detail: text.slice(0, 300) || res.statusText,
  };
  const retry = res.headers.get('retry-after');
  if (retry && !problem.retry_after) problem.retry_after = retry;
  return { ok: false, status: res.status, problem };
}

// ---- Errors -----------------------------------------------------------------------------------

function clearFieldErrors(keepKey) {
  for (const name of keepKey ? FIELDS : FIELDS.concat(['key'])) {
    const err = $('err-' + name);
    if (err) { err.hidden = true; err.textContent = ''; }
    const input = $('f-' + name);
    if (input) input.removeAttribute('aria-invalid');
  }
}

/** Field errors next to their fields; returns the ones with no field on the page. */
function showFieldErrors(errors) {
  const unplaced = [];
  for (const e of errors || []) {
    const name = String(e.field || '').split('.')[0];
    const err = $('err-' + name);
    const input = $('f-' + name);
    if (!err || !input) { unplaced.push(e); continue; }
    if (name === 'width' || name === 'height') showCustomSize(true);
    err.textContent = e.message;
    err.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  }
  return unplaced;
}

function problemNodes(problem) {
  const nodes = [el('h3', { text: problem.title || 'Error' })];
  if (problem.detail) nodes.push(el('p', { text: problem.detail }));
  if (problem.retry_after) nodes.push(el('p', { text: 'Try again in ' + problem.retry_after + ' s.' }));
  if (problem.request_id) nodes.push(el('p', { class: 'help', text: 'Request id: ' + problem.request_id }));
  return nodes;
}

function hideSummary() {
  const box = $('error-summary');
  box.hidden = true;
  box.replaceChildren();
}

/** A refused request: the problem's title and detail on top, each field error beside its field. */
function showProblem(problem) {
  clearFieldErrors();
  const box = $('error-summary');
  const unplaced = showFieldErrors(problem.errors);
  const nodes = problemNodes(problem);
  if (problem.errors && problem.errors.length) {
    const list = el('ul');
    for (const e of problem.errors) {
      const name = String(e.field || '').split('.')[0];
      const label = (LABELS[name] || e.field) + ': ' + e.message;
      const input = $('f-' + name);
      list.append(el('li', {}, [input && !unplaced.includes(e)
        ? el('a', { href: '#f-' + name, text: label })
        : document.createTextNode(label)]));
    }
    nodes.push(list);
  }
  box.replaceChildren(...nodes);
  box.hidden = false;
  if (problem.status === 401 || problem.code === 'unauthorized') {
    const err = $('err-key');
    err.textContent = problem.detail || problem.title;
    err.hidden = false;
    keyInput.setAttribute('aria-invalid', 'true');
  }
  box.focus();
}

// ---- Key and models ---------------------------------------------------------------------------

async function loadModels() {
  const status = $('key-status');
  $('err-key').hidden = true;
  keyInput.removeAttribute('aria-invalid');
  if (!key()) { status.textContent = 'No key yet.'; return; }
  status.textContent = 'Checking the key…';
  const res = await api('GET', '/v1/models');
  if (!res.ok) {
    status.textContent = '';
    const err = $('err-key');
    err.textContent = (res.problem.title || 'Error') + (res.problem.detail ? ': ' + res.problem.detail : '');
    err.hidden = false;
    keyInput.setAttribute('aria-invalid', 'true');
    return;
  }
  models = res.data.data || [];
  const select = $('f-model');
  const previous = select.value;
  select.replaceChildren(...models.map((m) => el('option', { value: m.id, text: m.id + (m.price ? '' : ' (free)') })));
  const chosen = models.find((m) => m.id === previous) || models.find((m) => m.default) || models[0];
  if (chosen) select.value = chosen.id;
  applyModel();
  status.textContent = 'Key accepted: ' + models.length + ' model' + (models.length === 1 ? '' : 's') + ' available.';
  scheduleQuote();
}

function model() { return models.find((m) => m.id === $('f-model').value); }

function applyModel() {
  const m = model();
  const help = $('help-model');
  if (!m) return;
  help.textContent = m.description.replace(/[^.]$/, '$&.') + ' Native size ' + m.native_size + ' px, at most ' + m.max_steps +
    ' steps and ' + m.max_megapixels + ' MP.';
  $('f-steps').placeholder = String(m.default_steps);
  $('f-steps').max = String(m.max_steps);
  $('f-guidance_scale').placeholder = String(m.default_guidance_scale);
  $('f-width').placeholder = String(m.native_size);
  $('f-height').placeholder = String(m.native_size);
  for (const option of $('f-output_format').options) option.disabled = !m.output_formats.includes(option.value);
}

// ---- The form ---------------------------------------------------------------------------------

function showCustomSize(on) {
  if (on) $('f-aspect_ratio').value = 'custom';
  $('custom-size').hidden = $('f-aspect_ratio').value !== 'custom';
}

function numberField(name, errors) {
  const input = $('f-' + name);
  if (input.validity && input.validity.badInput) { errors.push({ field: name, message: 'must be a number' }); return undefined; }
  const text = input.value.trim();
  return text === '' ? undefined : Number(text);
}

/** The request body from the form, or the field errors found before asking the API. */
function readForm() {
  const errors = [];
  const body = { prompt: $('f-prompt').value };
  const negative = $('f-negative_prompt').value;
  if (negative.trim()) body.negative_prompt = negative;
  if ($('f-model').value) body.model = $('f-model').value;
  const size = $('f-aspect_ratio').value;
  if (size === 'custom') {
    const width = numberField('width', errors);
    const height = numberField('height', errors);
    if (width !== undefined) body.width = width;
    if (height !== undefined) body.height = height;
  } else if (size) body.aspect_ratio = size;
  for (const name of ['steps', 'guidance_scale', 'seed', 'n']) {
    const value = numberField(name, errors);
    if (value !== undefined) body[name] = value;
  }
  body.output_format = $('f-output_format').value;
  if (initImage) {
    body.image = initImage;
    const strength = numberField('strength', errors);
    if (strength !== undefined) body.strength = strength;
  }
  if ($('f-previews').checked) body.previews = true;
  return { body, errors };
}

function setFormFrom(params, seed) {
  $('f-prompt').value = params.prompt;
  $('f-negative_prompt').value = params.negative_prompt || '';
  $('f-aspect_ratio').value = 'custom';
  showCustomSize(true);
  $('f-width').value = String(params.width);
  $('f-height').value = String(params.height);
  $('f-steps').value = String(params.steps);
  $('f-guidance_scale').value = String(params.guidance_scale);
  $('f-seed').value = String(seed);
  $('f-n').value = '1';
  $('f-output_format').value = params.output_format;
}

// ---- Quote ------------------------------------------------------------------------------------

function scheduleQuote() {
  window.clearTimeout(quoteTimer);
  quoteTimer = window.setTimeout(quote, 300);
}

async function quote() {
  const out = $('quote');
  const seq = ++quoteSeq;
  if (!key()) { out.textContent = 'Paste a key to see the price.'; return; }
  if (!$('f-prompt').value.trim()) { out.textContent = 'Write a prompt to see the price.'; return; }
  const { body, errors } = readForm();
  clearFieldErrors(true);
  if (errors.length) { showFieldErrors(errors); out.textContent = 'Fix the marked fields to see the price.'; return; }
  const res = await api('POST', '/v1/generations/quote', body);
  if (seq !== quoteSeq) return; // a newer quote is on its way
  if (!res.ok) {
    const unplaced = showFieldErrors(res.problem.errors);
    out.replaceChildren(el('span', { class: 'bad', text: res.problem.errors && res.problem.errors.length
      ? 'Fix the marked fields to see the price.' + (unplaced.length ? ' ' + unplaced.map((e) => e.field + ': ' + e.message).join('; ') : '')
      : (res.problem.title || 'Error') + (res.problem.detail ? ': ' + res.problem.detail : '') }));
    return;
  }
  const q = res.data;
  let text = 'Price: ' + q.quote + ' credits for ' + q.usage.images + ' image' + (q.usage.images === 1 ? '' : 's') +
    ' of ' + q.params.width + '×' + q.params.height + ', ' + q.usage.steps + ' steps.';
  if (typeof q.balance === 'string') text += ' Balance: ' + q.balance + ' credits.';
  if (typeof q.monthly_spend_left === 'string') text += ' Left this month: ' + q.monthly_spend_left + ' credits.';
  out.textContent = text;
  out.dataset.quote = q.quote;
}

// ---- Running ----------------------------------------------------------------------------------

async function submit(overrides) {
  window.clearTimeout(quoteTimer);
  quoteSeq++;
  hideSummary();
  clearFieldErrors();
  if (!key()) {
    showProblem({ title: 'An API key is needed', detail: 'Paste your API key first.', errors: [{ field: 'key', message: 'is required' }] });
    return;
  }
  const { body, errors } = readForm();
  Object.assign(body, overrides || {});
  if (errors.length) { showProblem({ title: 'Some fields need a fix', errors }); return; }
  const button = $('submit');
  const status = $('submit-status');
  button.disabled = true;
  status.textContent = 'Submitting…';
  try {
    const res = await api('POST', '/v1/generations', body);
    if (!res.ok) {
      status.textContent = 'Not started: the request was refused (see above).';
      showProblem(res.problem);
      return;
    }
    status.textContent = 'Submitted as ' + res.data.id + '.';
    remember(res.data);
    show(res.data);
    followJob(res.data);
    scheduleQuote(); // the price of the next run (the seed field may have changed)
  } finally {
    button.disabled = false;
  }
}

function stopFollowing() {
  if (follow) follow.abort.abort();
  follow = null;
}

function followJob(job) {
  stopFollowing();
  if (isTerminal(job.status)) return;
  const abort = new AbortController();
  follow = { id: job.id, abort };
  streamEvents(job.id, abort.signal).catch(() => undefined);
  watchQueue(job.id, abort.signal).catch(() => undefined);
}

function isTerminal(status) { return status === 'succeeded' || status === 'failed' || status === 'canceled'; }

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = window.setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { window.clearTimeout(t); resolve(); }, { once: true });
});

/** Queue position only changes while queued and is not an event: read it from the job every second. */
async function watchQueue(id, signal) {
  while (!signal.aborted && current && current.id === id && current.status === 'queued') {
    await sleep(1000, signal);
    if (signal.aborted || !current || current.status !== 'queued') return;
    const res = await api('GET', '/v1/generations/' + id, undefined, signal);
    if (res.ok && current && current.id === id && current.status === 'queued') show(res.data);
  }
}

/** Reads the SSE stream with fetch (so the key goes in a header), resuming with Last-Event-ID; polls if streaming fails. */
async function streamEvents(id, signal) {
  let lastId = null;
  let failures = 0;
  while (!signal.aborted && failures < 3) {
    const headers = { accept: 'text/event-stream', authorization: 'Bearer ' + key() };
    if (lastId) headers['last-event-id'] = lastId;
    let res;
    try {
      res = await fetch('/v1/generations/' + id + '/events', { headers, signal });
    } catch (err) {
      if (signal.aborted) return;
      failures++;
      await sleep(500 * failures, signal);
      continue;
    }
    if (!res.ok || !res.body) {
      failures++;
      if (res.status >= 400 && res.status < 500) break;
      await sleep(500 * failures, signal);
      continue;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let terminal = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
          const message = parseSse(block);
          if (!message) continue;
          if (message.id) lastId = message.id;
          failures = 0;
          if (await onEvent(id, message)) terminal = true;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      failures++;
    }
    if (terminal || signal.aborted) return;
  }
  if (!signal.aborted) await poll(id, signal);
}

function parseSse(block) {
  const message = { id: null, event: 'message', data: '' };
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') message.event = value;
    else if (field === 'id') message.id = value;
  }
  if (!data.length) return null;
  message.data = data.join('\n');
  return message;
}

/** Applies one event; true once the job is finished. */
async function onEvent(id, message) {
  let event;
  try { event = JSON.parse(message.data); } catch { return false; }
  if (!current || current.id !== id) return false;
  const data = event.data || {};
  const type = event.type || message.event;
  if (type === 'generation.started') show(Object.assign({}, current, { status: 'running', queue_position: null }));
  else if (type === 'generation.progress') {
    show(Object.assign({}, current, { status: 'running', queue_position: null,
      progress: { step: data.step, total_steps: data.total_steps } }));
  } else if (type === 'generation.preview') {
    const next = Object.assign({}, current, { status: 'running', queue_position: null,
      progress: { step: data.step, total_steps: data.total_steps } });
    if (typeof data.image === 'string') next.preview = data;
    show(next);
  } else if (isTerminal(String(type).replace('generation.', ''))) {
    await finish(id);
    return true;
  }
  return false;
}

async function poll(id, signal) {
  while (!signal.aborted) {
    const res = await api('GET', '/v1/generations/' + id, undefined, signal);
    if (res.ok) {
      if (isTerminal(res.data.status)) { await finish(id, res.data); return; }
      if (current && current.id === id) show(res.data);
    }
    await sleep(1000, signal);
  }
}

/** The finished job, read afresh so the output URLs are freshly signed. */
async function finish(id, job) {
  let done = job;
  if (!done) {
    const res = await api('GET', '/v1/generations/' + id);
    if (!res.ok) { showRunProblem(res.problem); return; }
    done = res.data;
  }
  remember(done);
  if (current && current.id === id) show(done);
  if (follow && follow.id === id) follow = null;
}

async function cancel() {
  if (!current) return;
  const res = await api('POST', '/v1/generations/' + current.id + '/cancel');
  if (!res.ok) { showRunProblem(res.problem); return; }
  show(res.data);
  remember(res.data);
  if (isTerminal(res.data.status)) { stopFollowing(); }
}

// ---- The result panel -------------------------------------------------------------------------

function showRunProblem(problem) {
  const box = $('run-error');
  box.replaceChildren(...problemNodes(problem));
  box.hidden = false;
}

function seconds(ms) { return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s'; }

function show(job) {
  const fresh = !current || current.id !== job.id;
  current = job;
  const status = $('run-status');
  const progress = job.progress;
  const wrap = $('progress-wrap');
  const bar = $('run-progress');
  if (fresh) {
    $('action-status').textContent = '';
    $('run-error').hidden = true;
    $('gallery').replaceChildren();
    $('run-details').hidden = true;
    $('preview-figure').hidden = true;
  }
  $('cancel').hidden = isTerminal(job.status);
  if (job.status === 'queued') {
    status.textContent = 'Queued' + (job.queue_position === null || job.queue_position === undefined ? '.'
      : job.queue_position === 0 ? ': next in line.' : ': ' + job.queue_position + ' job' + (job.queue_position === 1 ? '' : 's') + ' ahead.');
    wrap.hidden = false;
    bar.removeAttribute('value'); // indeterminate while waiting
    $('progress-text').textContent = 'Waiting for a GPU worker.';
  } else if (job.status === 'running') {
    wrap.hidden = false;
    if (progress && progress.total_steps) {
      bar.max = progress.total_steps;
      bar.value = progress.step;
      const pct = Math.round((100 * progress.step) / progress.total_steps);
      status.textContent = 'Running: step ' + progress.step + ' of ' + progress.total_steps + ' (' + pct + '%).';
      $('progress-text').textContent = pct + '% done';
    } else {
      bar.removeAttribute('value');
      status.textContent = 'Running: loading the model and encoding the prompt.';
      $('progress-text').textContent = 'Starting.';
    }
  } else {
    wrap.hidden = job.status !== 'succeeded';
    if (job.status === 'succeeded') {
      bar.max = 1;
      bar.value = 1;
      $('progress-text').textContent = '100% done';
    }
    const took = job.timings && job.timings.total_ms !== undefined ? ' in ' + seconds(job.timings.total_ms) : '';
    status.textContent = job.status === 'succeeded'
      ? 'Done' + took + ': ' + job.outputs.length + ' image' + (job.outputs.length === 1 ? '' : 's') + '.'
      : job.status === 'failed' ? 'Failed.' : 'Canceled.';
    if (job.status === 'failed' && job.error) {
      showRunProblem({ title: 'The generation failed (' + job.error.code + ')', detail: job.error.message });
    }
  }
  const preview = job.preview;
  if (preview && preview.image && job.status !== 'succeeded') {
    $('preview-image').src = preview.image;
    $('preview-caption').textContent = 'Live preview at step ' + preview.step + ' of ' + preview.total_steps + '.';
    $('preview-figure').hidden = false;
  } else if (job.status === 'succeeded') {
    $('preview-figure').hidden = true;
  }
  if (isTerminal(job.status)) renderResult(job);
}

function renderResult(job) {
  const gallery = $('gallery');
  gallery.replaceChildren(...job.outputs.map((o) => {
    const name = job.id + '-' + o.index + '.' + (o.format === 'jpeg' ? 'jpg' : o.format);
    const seedText = el('span', { text: 'Seed ' + o.seed });
    return el('li', {}, [el('figure', {}, [
      el('img', { src: o.url, width: o.width, height: o.height, alt: 'Image ' + (o.index + 1) + ' for "' + job.params.prompt.slice(0, 120) + '"' }),
      el('figcaption', {}, [
        seedText,
        document.createTextNode(' · ' + o.width + '×' + o.height + ' ' + o.format.toUpperCase() + ', ' + Math.round(o.bytes / 1024) + ' KB'),
        el('div', { class: 'actions' }, [
          el('button', { type: 'button', class: 'download', onclick: () => download(o.url, name),
            'aria-label': 'Download image ' + (o.index + 1), text: 'Download' }),
          el('button', { type: 'button', class: 'secondary', onclick: () => copySeed(o.seed),
            'aria-label': 'Copy seed ' + o.seed, text: 'Copy seed' }),
          el('button', { type: 'button', class: 'secondary rerun', onclick: () => rerun(job, o.seed),
            'aria-label': 'Run again with seed ' + o.seed, text: 'Re-run this seed' }),
        ]),
      ]),
    ])]);
  }));
  const rows = [['Generation', job.id], ['Model', job.model], ['Size', job.params.width + '×' + job.params.height],
    ['Steps', String(job.params.steps)], ['Guidance', String(job.params.guidance_scale)], ['Seed', String(job.params.seed)]];
  if (job.cost) {
    rows.push(['Quote', job.cost.quote + ' credits']);
    rows.push(['Charged', job.cost.charge === null ? 'settling…' : job.cost.charge + ' credits']);
  } else rows.push(['Charged', 'free model']);
  for (const [k, label] of TIMINGS) {
    if (job.timings && typeof job.timings[k] === 'number') rows.push([label, seconds(job.timings[k])]);
  }
  const details = $('run-details');
  details.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  details.hidden = false;
}

/** Fetched into a blob so the browser saves it under a good name (the bucket is another origin). */
async function download(url, name) {
  const status = $('action-status');
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const blob = await res.blob();
    const href = URL.createObjectURL(blob);
    const a = el('a', { href, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    window.setTimeout(() => URL.revokeObjectURL(href), 60000);
    status.textContent = 'Saved ' + name + '.';
  } catch (err) {
    // The link may have expired (re-open the job from the history) or CORS may block it: open it instead.
    status.textContent = 'Could not download directly (' + (err && err.message ? err.message : err) + '); opened the image in a new tab.';
    window.open(url, '_blank', 'noopener');
  }
}

async function copySeed(seed) {
  const status = $('action-status');
  try {
    await navigator.clipboard.writeText(String(seed));
    status.textContent = 'Seed ' + seed + ' copied.';
  } catch {
    $('f-seed').value = String(seed);
    $('f-seed').focus();
    status.textContent = 'Copying is not allowed here; the seed ' + seed + ' is in the Seed field.';
  }
}

function rerun(job, seed) {
  setFormFrom(job.params, seed);
  submit();
}

// ---- History ----------------------------------------------------------------------------------

function history() {
  try { return JSON.parse(storage(HISTORY_STORE) || '[]'); } catch { return []; }
}

function remember(job) {
  const entry = { id: job.id, prompt: job.params.prompt.slice(0, 200), status: job.status, created_at: job.created_at,
    size: job.params.width + '×' + job.params.height, seed: job.params.seed,
    charge: job.cost ? job.cost.charge : null };
  const list = history().filter((h) => h.id !== job.id);
  list.unshift(entry);
  store(HISTORY_STORE, JSON.stringify(list.slice(0, HISTORY_MAX)));
  renderHistory();
}

function renderHistory() {
  const list = history();
  $('history-empty').hidden = list.length > 0;
  $('clear-history').hidden = list.length === 0;
  $('history').replaceChildren(...list.map((h) => el('li', {}, [
    el('button', { type: 'button', class: 'link', onclick: () => openJob(h.id), text: h.prompt || h.id }),
    el('span', { class: 'meta', text: ' ' + h.status + ' · ' + h.size + ' · seed ' + h.seed +
      (h.charge ? ' · ' + h.charge + ' credits' : '') + ' · ' + new Date(h.created_at).toLocaleTimeString() }),
  ])));
}

async function openJob(id) {
  const res = await api('GET', '/v1/generations/' + id);
  if (!res.ok) { showRunProblem(res.problem); return; }
  stopFollowing();
  current = null;
  show(res.data);
  remember(res.data);
  followJob(res.data);
  $('run-heading').focus();
}

// ---- Wiring -----------------------------------------------------------------------------------

function readImage(file) {
  const err = $('err-image');
  err.hidden = true;
  $('f-image').removeAttribute('aria-invalid');
  if (!file) { clearImage(); return; }
  if (!['image/png', 'image/jpeg', 'image/webp'].includes(file.type)) {
    err.textContent = 'must be a PNG, JPEG or WebP image';
    err.hidden = false;
    $('f-image').setAttribute('aria-invalid', 'true');
    return;
  }
  if (file.size > MAX_IMAGE_BYTES) {
    err.textContent = 'must be at most 10 MB';
    err.hidden = false;
    $('f-image').setAttribute('aria-invalid', 'true');
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    initImage = String(reader.result);
    $('init-thumb').src = initImage;
    $('init-preview').hidden = false;
    $('f-strength').disabled = false;
    scheduleQuote();
  };
  reader.onerror = () => { err.textContent = 'could not be read'; err.hidden = false; };
  reader.readAsDataURL(file);
}

function clearImage() {
  initImage = null;
  $('f-image').value = '';
  $('init-preview').hidden = true;
  $('f-strength').disabled = true;
  scheduleQuote();
}

function init() {
  keyInput.value = storage(KEY_STORE) || '';
  keyInput.addEventListener('change', () => {
    store(KEY_STORE, key() || null);
    loadModels();
  });
  $('forget-key').addEventListener('click', () => {
    keyInput.value = '';
    store(KEY_STORE, null);
    models = [];
    $('f-model').replaceChildren();
    $('key-status').textContent = 'Key forgotten.';
    scheduleQuote();
    keyInput.focus();
  });
  $('f-model').addEventListener('change', applyModel);
  $('f-aspect_ratio').addEventListener('change', () => showCustomSize(false));
  $('f-image').addEventListener('change', (e) => readImage(e.target.files && e.target.files[0]));
  $('clear-image').addEventListener('click', clearImage);
  form.addEventListener('input', (e) => { if (e.target !== $('f-image')) scheduleQuote(); });
  form.addEventListener('change', scheduleQuote);
  form.addEventListener('submit', (e) => { e.preventDefault(); submit(); });
  $('f-prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
  });
  $('cancel').addEventListener('click', cancel);
  $('clear-history').addEventListener('click', () => { store(HISTORY_STORE, null); renderHistory(); });
  showCustomSize(false);
  renderHistory();
  if (key()) loadModels();
  document.documentElement.dataset.ready = 'true';
}

init();
`;
