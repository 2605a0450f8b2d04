/**
 * The operator dashboard: polls the operator API once a second with the
 * credential the operator typed (kept in sessionStorage, so it lives as long
 * as the tab) and shows every event's figures, a chart of the selected
 * event's accept and issue rates, and its open/pause/resume/close buttons.
 *
 * Each tick is one GET /coupons (status, remaining, queued, in flight of the
 * newest events) plus one GET /coupons/:id/stats per live event (issued,
 * rejected by reason, the 60-s rates); a finished event's stats are read once,
 * since they no longer change.
 *
 * The chart's rates are differences between consecutive polls, not the stats'
 * 60-s averages: a 60-s window would lag a burst by a minute and smear a pause
 * into a slope. Requests admitted so far are what PostgreSQL decided (issued
 * and rejected) plus what Redis still holds (queued, in flight); a batch
 * between its commit and its acknowledgement counts in both for a moment, so
 * the total is kept from ever going down, which turns that blip into a short
 * early step instead of a spike and a negative rate.
 */

const POLL_MS = 1_000;
/** How much history the chart keeps and shows, in seconds. */
const HISTORY_S = 300;
/** The chart spans at least this much, so a fresh page does not stretch its first few seconds. */
const MIN_SPAN_S = 30;
const LIST_LIMIT = 25;
const STORAGE_KEY = 'coupon-dashboard-credential';
const FINISHED = new Set(['SOLD_OUT', 'CLOSED', 'ENDED']);

const $ = (id) => document.getElementById(id);

const state = {
  credential: null,
  /** Events by id: the list item, the latest stats, and the chart's samples. */
  events: new Map(),
  order: [],
  selected: null,
  timer: undefined,
  polling: false,
  /** An action asked for a poll while one was under way: poll again right after it. */
  again: false,
  polls: 0,
  chart: null,
  /** The chart's edges (seconds since the epoch): the latest poll, and the oldest sample or earlier. */
  chartStart: Date.now() / 1000 - MIN_SPAN_S,
  chartEnd: Date.now() / 1000,
};

class ApiError extends Error {
  constructor(status, problem) {
    const code = problem && typeof problem.code === 'string' ? problem.code : `HTTP ${status}`;
    const detail = problem && typeof problem.detail === 'string' ? problem.detail : '';
    super(detail ? `${detail} (${code})` : code);
    this.status = status;
    this.code = code;
  }
}

const refused = (err) => err instanceof ApiError && (err.status === 401 || err.status === 403);

async function api(method, path, credential = state.credential) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${credential}`, accept: 'application/json' },
      cache: 'no-store',
    });
  } catch {
    throw new Error('the service did not answer');
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // No JSON: the status says enough.
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// ---- signing in and out ----

function showSignIn(message) {
  stopPolling();
  state.credential = null;
  $('board').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('updated').textContent = '';
  const error = $('sign-in-error');
  error.textContent = message ?? '';
  error.hidden = !message;
  $('credential').focus();
}

async function signIn(credential) {
  try {
    // Any operator read tells whether the credential is an operator's.
    await api('GET', '/coupons?limit=1', credential);
  } catch (err) {
    sessionStorage.removeItem(STORAGE_KEY);
    showSignIn(
      refused(err)
        ? `The service refused this credential: ${err.message}`
        : `Could not sign in: ${err.message}`,
    );
    return;
  }
  sessionStorage.setItem(STORAGE_KEY, credential);
  state.credential = credential;
  $('credential').value = '';
  $('sign-in').hidden = true;
  $('board').hidden = false;
  $('sign-out').hidden = false;
  ensureChart();
  refreshNow();
}

function signOut() {
  sessionStorage.removeItem(STORAGE_KEY);
  showSignIn();
}

// ---- polling ----

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = undefined;
}

/** Polls at once (after an action), or right after the poll under way. */
function refreshNow() {
  stopPolling();
  if (state.polling) {
    state.again = true;
    return;
  }
  void poll();
}

const isLive = (item) => item.queued !== null || !FINISHED.has(item.status);

async function poll() {
  if (state.credential === null) return;
  state.polling = true;
  try {
    const page = await api('GET', `/coupons?limit=${LIST_LIMIT}`);
    // A finished event is read once more after it went quiet: the read before may
    // have come before its last batch was recorded.
    const wanted = page.items.filter((item) => {
      const known = state.events.get(item.id);
      return isLive(item) || !known?.stats || known.statsLive || known.stats.status !== item.status;
    });
    const stats = await Promise.allSettled(
      wanted.map((item) => api('GET', `/coupons/${item.id}/stats`)),
    );
    const failed = stats.find((s) => s.status === 'rejected');
    if (failed && refused(failed.reason)) throw failed.reason;
    const at = Date.now() / 1000;
    absorb(page.items, wanted, stats, at);
    state.polls += 1;
    const updated = $('updated');
    updated.dataset.polls = String(state.polls);
    updated.textContent = `Updated ${new Date(at * 1000).toLocaleTimeString('en-GB')}`;
    render(at);
    if (failed) showNotice(`Some figures could not be read: ${failed.reason.message}`, 'poll');
    else clearPollNotice();
  } catch (err) {
    if (refused(err)) {
      sessionStorage.removeItem(STORAGE_KEY);
      showSignIn(`The service refused the credential: ${err.message}`);
      state.polling = false;
      return;
    }
    showNotice(`Could not refresh (showing the last figures): ${err.message}`, 'poll');
  }
  state.polling = false;
  if (state.credential === null) return;
  if (state.again) {
    state.again = false;
    void poll();
    return;
  }
  state.timer = setTimeout(poll, POLL_MS);
}

function absorb(items, wanted, stats, at) {
  state.order = items.map((item) => item.id);
  for (const item of items) {
    const event = state.events.get(item.id) ?? { samples: [], admitted: 0 };
    event.item = item;
    state.events.set(item.id, event);
  }
  wanted.forEach((item, i) => {
    const result = stats[i];
    if (result.status !== 'fulfilled') return;
    const event = state.events.get(item.id);
    event.stats = result.value;
    event.statsLive = isLive(item);
    record(event, result.value, at);
  });
  for (const id of state.events.keys()) if (!state.order.includes(id)) state.events.delete(id);
  if (!state.events.has(state.selected)) {
    const live = items.find((item) => item.status === 'OPEN' || item.status === 'PAUSED');
    state.selected = (live ?? items[0])?.id ?? null;
  }
}

/** Appends a sample to the event's ring of the last HISTORY_S seconds. */
function record(event, stats, at) {
  const r = stats.rejected;
  const decided = stats.issued + r.SOLD_OUT + r.ALREADY_ISSUED + r.EVENT_CLOSED;
  event.admitted = Math.max(event.admitted, decided + stats.queued + stats.inFlight);
  event.samples.push({ at, issued: stats.issued, admitted: event.admitted });
  while (event.samples.length > 0 && event.samples[0].at < at - HISTORY_S) event.samples.shift();
}

// ---- rendering ----

const number = new Intl.NumberFormat('en-US');
const perSecond = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const fmt = (n) => (n === null || n === undefined ? '–' : number.format(n));

function render(at) {
  const tbody = $('events').tBodies[0];
  const rows = new Map([...tbody.rows].map((row) => [Number(row.dataset.couponId), row]));
  state.order.forEach((id, index) => {
    const row = rows.get(id) ?? createRow(id);
    rows.delete(id);
    fillRow(row, state.events.get(id));
    if (tbody.rows[index] !== row) tbody.insertBefore(row, tbody.rows[index] ?? null);
  });
  for (const stale of rows.values()) stale.remove();
  $('empty').hidden = state.order.length > 0;
  drawChart(at);
}

const CELLS = [
  'event',
  'status',
  'remaining',
  'queued',
  'inFlight',
  'issued',
  'rejected',
  'acceptRate',
  'issueRate',
];
const NUMERIC = new Set(CELLS.slice(2, 9));
const ACTIONS = ['open', 'pause', 'resume', 'close'];

function createRow(id) {
  const row = document.createElement('tr');
  row.dataset.couponId = String(id);
  for (const field of CELLS) {
    const cell = row.insertCell();
    cell.dataset.field = field;
    if (NUMERIC.has(field)) cell.className = 'num';
  }
  const actions = row.insertCell();
  actions.dataset.field = 'actions';
  const box = document.createElement('div');
  box.className = 'actions';
  for (const action of ACTIONS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.action = action;
    button.textContent = action[0].toUpperCase() + action.slice(1);
    if (action === 'close') button.className = 'danger';
    else button.className = 'quiet';
    button.addEventListener('click', (e) => {
      e.stopPropagation();
      void act(id, action);
    });
    box.append(button);
  }
  actions.append(box);
  // A row picks the event the chart shows, by click or by keyboard.
  const select = () => {
    state.selected = id;
    render(state.chartEnd);
  };
  row.tabIndex = 0;
  row.addEventListener('click', select);
  row.addEventListener('keydown', (e) => {
    if (e.target === row && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      select();
    }
  });
  return row;
}

function fillRow(row, event) {
  const { item, stats } = event;
  const cell = (field) => row.querySelector(`[data-field="${field}"]`);
  row.classList.toggle('selected', item.id === state.selected);

  const name = cell('event');
  if (name.dataset.name !== item.name) {
    name.replaceChildren();
    const id = document.createElement('span');
    id.className = 'id';
    id.textContent = `#${item.id}`;
    const label = document.createElement('span');
    label.className = 'name';
    label.textContent = item.name;
    name.append(id, label);
    name.dataset.name = item.name;
  }
  const status = cell('status');
  status.replaceChildren();
  const badge = document.createElement('span');
  badge.className = `status status-${item.status}`;
  badge.textContent = item.status.replace('_', ' ');
  status.append(badge);
  status.dataset.value = item.status;

  const set = (field, value, text = fmt(value)) => {
    const c = cell(field);
    c.textContent = text;
    c.dataset.value = value === null || value === undefined ? '' : String(value);
  };
  set('remaining', item.remaining, `${fmt(item.remaining)} / ${fmt(item.totalQuantity)}`);
  set('queued', item.queued);
  set('inFlight', item.inFlight);
  set('issued', stats ? stats.issued : item.issuedCount);
  if (stats) {
    const r = stats.rejected;
    set(
      'rejected',
      r.SOLD_OUT + r.ALREADY_ISSUED + r.EVENT_CLOSED,
      `${fmt(r.SOLD_OUT)} · ${fmt(r.ALREADY_ISSUED)} · ${fmt(r.EVENT_CLOSED)}`,
    );
    const seconds = stats.rates.windowSeconds;
    const accepted = stats.rates.accepted / seconds;
    const issued = stats.rates.issued / seconds;
    set('acceptRate', accepted, perSecond.format(accepted));
    set('issueRate', issued, perSecond.format(issued));
  } else {
    for (const field of ['rejected', 'acceptRate', 'issueRate']) set(field, null);
  }

  const finished = FINISHED.has(item.status);
  const paused = item.pausedAt !== null;
  const enabled = {
    open: item.status === 'SCHEDULED',
    pause: !finished && !paused,
    resume: !finished && paused,
    close: !finished,
  };
  for (const button of row.querySelectorAll('button[data-action]')) {
    if (!button.dataset.busy) button.disabled = !enabled[button.dataset.action];
  }
}

/** Shows an action's result (`done`, `failed`) or a poll's trouble (`poll`) above the table. */
function showNotice(message, kind) {
  const notice = $('notice');
  notice.hidden = false;
  notice.textContent = message;
  notice.dataset.kind = kind;
  notice.classList.toggle('failed', kind !== 'done');
}

/** A good poll ends the trouble a poll reported, and leaves an action's result in place. */
function clearPollNotice() {
  const notice = $('notice');
  if (notice.dataset.kind !== 'poll') return;
  notice.hidden = true;
  notice.textContent = '';
  delete notice.dataset.kind;
}

// ---- actions ----

const DONE = { open: 'Opened', pause: 'Paused', resume: 'Resumed', close: 'Closed' };

async function act(id, action) {
  const event = state.events.get(id);
  const label = `event #${id}${event ? ` “${event.item.name}”` : ''}`;
  if (
    action === 'close' &&
    !window.confirm(
      `Close ${label}? Nothing more is accepted and waiting requests end EVENT_CLOSED. This cannot be undone.`,
    )
  ) {
    return;
  }
  const button = document.querySelector(
    `tr[data-coupon-id="${id}"] button[data-action="${action}"]`,
  );
  if (button) {
    button.dataset.busy = '1';
    button.disabled = true;
  }
  try {
    const coupon = await api('POST', `/coupons/${id}/${action}`);
    showNotice(`${DONE[action]} ${label}: now ${coupon.status}.`, 'done');
  } catch (err) {
    if (refused(err)) {
      sessionStorage.removeItem(STORAGE_KEY);
      showSignIn(`The service refused the credential: ${err.message}`);
      return;
    }
    showNotice(`Could not ${action} ${label}: ${err.message}`, 'failed');
  } finally {
    if (button) delete button.dataset.busy;
  }
  refreshNow();
}

// ---- the chart ----

function chartWidth() {
  return Math.max(320, $('chart').clientWidth);
}

function ensureChart() {
  if (state.chart || typeof uPlot !== 'function') return;
  const rate = (_u, value) =>
    value === null || value === undefined ? '–' : perSecond.format(value);
  state.chart = new uPlot(
    {
      width: chartWidth(),
      height: 260,
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => [state.chartStart, state.chartEnd] },
        y: { range: (_u, _min, max) => [0, Math.max(10, Math.ceil((max ?? 0) * 1.15))] },
      },
      series: [
        {},
        {
          label: 'Accepted/s',
          stroke: '#2563eb',
          fill: 'rgba(37, 99, 235, 0.08)',
          width: 2,
          value: rate,
        },
        {
          label: 'Issued/s',
          stroke: '#15803d',
          fill: 'rgba(21, 128, 61, 0.08)',
          width: 2,
          value: rate,
        },
      ],
      axes: [{}, { label: 'per second', size: 60 }],
    },
    [[], [], []],
    $('chart'),
  );
  new ResizeObserver(() => {
    state.chart?.setSize({ width: chartWidth(), height: 260 });
  }).observe($('chart'));
}

/** Per-second rates between consecutive samples, at the later sample's time. */
function rates(samples) {
  const xs = [];
  const accepted = [];
  const issued = [];
  for (let i = 1; i < samples.length; i += 1) {
    const before = samples[i - 1];
    const after = samples[i];
    const seconds = after.at - before.at;
    if (seconds <= 0) continue;
    xs.push(after.at);
    accepted.push((after.admitted - before.admitted) / seconds);
    issued.push(Math.max(0, after.issued - before.issued) / seconds);
  }
  return [xs, accepted, issued];
}

function drawChart(at) {
  ensureChart();
  const event = state.events.get(state.selected);
  $('chart-title').textContent = event
    ? `#${event.item.id} “${event.item.name}”: requests accepted and coupons issued per second`
    : 'Requests accepted and coupons issued per second';
  const data = rates(event?.samples ?? []);
  const chart = $('chart');
  chart.dataset.couponId = event ? String(event.item.id) : '';
  chart.dataset.samples = String(data[0].length);
  chart.dataset.peakAccepted = String(Math.max(0, ...data[1]));
  chart.dataset.peakIssued = String(Math.max(0, ...data[2]));
  if (!state.chart) return;
  const oldest = data[0][0] ?? at;
  state.chartEnd = at;
  state.chartStart = Math.max(at - HISTORY_S, Math.min(oldest, at - MIN_SPAN_S));
  state.chart.setData(data);
}

// ---- start ----

$('sign-in-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const credential = $('credential').value.trim();
  if (credential) void signIn(credential);
});
$('sign-out').addEventListener('click', signOut);

const saved = sessionStorage.getItem(STORAGE_KEY);
if (saved) void signIn(saved);
else showSignIn();
