// The live dashboard: follows GET /dashboard/events (server-sent events, read through fetch so
// that the admin token can travel in the Authorization header, never in the URL) and draws
// each snapshot. No framework and no build step; every figure comes from the server's feed.
'use strict';

const tokenKey = 'seckill-admin-token';
const reconnectDelayMaxMs = 10_000;
const chartPoints = 120;

const state = {
  // Kept for this tab only, so a reload does not ask again; never written into a URL.
  token: sessionStorage.getItem(tokenKey) ?? '',
  controller: null,
  reconnectDelayMs: 500,
  orderRates: [],
};

const $ = (selector) => document.querySelector(selector);
const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const fraction = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const milliseconds = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 });

function setStatus(stateName, text) {
  const status = $('#status');
  status.dataset.state = stateName;
  status.textContent = text;
}

async function follow() {
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  const headers = state.token === '' ? {} : { authorization: `Bearer ${state.token}` };
  try {
    const response = await fetch('/dashboard/events', { headers, cache: 'no-store', signal: controller.signal });
    if (response.status === 401) {
      forgetToken('That admin token was refused; showing public figures only.');
      setTimeout(follow, 0);
      return;
    }
    if (!response.ok || response.body === null) throw new Error(`the feed answered ${response.status}`);
    state.reconnectDelayMs = 500;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the feed ended');
      buffered += value;
      let end;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        receive(buffered.slice(0, end));
        buffered = buffered.slice(end + 2);
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
    setStatus('reconnecting', `reconnecting… (${error.message})`);
    setTimeout(follow, state.reconnectDelayMs);
    state.reconnectDelayMs = Math.min(reconnectDelayMaxMs, state.reconnectDelayMs * 2);
  }
}

/** One server-sent event: `event:` and `data:` lines. */
function receive(event) {
  const data = event
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).trimStart())
    .join('\n');
  if (data === '') return;
  const snapshot = JSON.parse(data);
  drawItems(snapshot.items, snapshot.itemsTotal);
  drawOperations(snapshot.operations);
  setStatus('live', `live · ${new Date(snapshot.at).toLocaleTimeString()}`);
}

function drawItems(items, total) {
  const body = $('#items tbody');
  const seen = new Set();
  for (const item of items) {
    seen.add(item.id);
    let row = body.querySelector(`tr[data-item="${item.id}"]`);
    if (row === null) {
      row = newItemRow(item.id);
      body.append(row);
    }
    row.querySelector('.name').textContent = item.name;
    const status = row.querySelector('.status');
    status.dataset.status = item.status;
    status.textContent = item.status.replace('_', ' ');
    for (const field of ['sold', 'reserved', 'available', 'stock']) {
      row.querySelector(`[data-field="${field}"]`).textContent = whole.format(item[field]);
    }
    for (const part of ['sold', 'reserved', 'available']) {
      const share = item.stock === 0 ? 0 : (item[part] / item.stock) * 100;
      row.querySelector(`.bar .${part}`).style.width = `${share}%`;
    }
  }
  for (const row of body.querySelectorAll('tr')) if (!seen.has(row.dataset.item)) row.remove();
  $('#items-count').textContent = total > items.length ? `(the first ${items.length} of ${total})` : `(${total})`;
}

function newItemRow(id) {
  const row = document.createElement('tr');
  row.dataset.item = id;
  const cell = (...children) => {
    const td = document.createElement('td');
    td.append(...children);
    return td;
  };
  const element = (tag, className, text = '') => {
    const node = document.createElement(tag);
    if (className !== '') node.className = className;
    node.textContent = text;
    return node;
  };
  const figure = (field) => {
    const td = cell();
    td.dataset.field = field;
    return td;
  };
  const bar = element('div', 'bar');
  bar.append(element('span', 'sold'), element('span', 'reserved'), element('span', 'available'));
  row.append(
    cell(element('span', 'id', id), element('small', 'name')),
    cell(element('span', 'status')),
    cell(bar),
    figure('sold'),
    figure('reserved'),
    figure('available'),
    figure('stock'),
  );
  return row;
}

function drawOperations(operations) {
  const section = $('#operations');
  section.hidden = operations === undefined;
  if (operations === undefined) return;
  const figures = {
    ordersPerSecond: fraction.format(operations.ordersPerSecond),
    ackP50: milliseconds.format(operations.ackLatencyMs.p50),
    ackP90: milliseconds.format(operations.ackLatencyMs.p90),
    ackP99: milliseconds.format(operations.ackLatencyMs.p99),
    ackMax: milliseconds.format(operations.ackLatencyMs.max),
    flushesPerSecond: fraction.format(operations.flushesPerSecond),
    flushEventsP50: whole.format(operations.flushEvents.p50),
    flushEventsMax: whole.format(operations.flushEvents.max),
    flushP50: milliseconds.format(operations.flushDurationMs.p50),
    flushP99: milliseconds.format(operations.flushDurationMs.p99),
    flushMax: milliseconds.format(operations.flushDurationMs.max),
    openConnections: whole.format(operations.openConnections),
    dashboards: whole.format(operations.dashboards),
    requestsInFlight: whole.format(operations.requestsInFlight),
    journalBacklogEvents: whole.format(operations.journalBacklogEvents),
    projectionLag:
      operations.projectionLag === null
        ? 'not measured'
        : `${whole.format(operations.projectionLag.events)} events · ${whole.format(operations.projectionLag.ms)} ms`,
  };
  for (const [name, text] of Object.entries(figures)) $(`[data-figure="${name}"]`).textContent = text;
  $('[data-figure="projectionLag"]').classList.toggle('unmeasured', operations.projectionLag === null);
  state.orderRates.push(operations.ordersPerSecond);
  if (state.orderRates.length > chartPoints) state.orderRates.shift();
  const highest = Math.max(1, ...state.orderRates);
  const points = state.orderRates.map((rate, index) => `${index},${30 - (rate / highest) * 28}`).join(' ');
  $('#orders-chart polyline').setAttribute('points', points);
}

function forgetToken(message) {
  state.token = '';
  sessionStorage.removeItem(tokenKey);
  $('#admin-token').value = '';
  $('#admin-message').textContent = message;
}

$('#admin').addEventListener('submit', (event) => {
  event.preventDefault();
  state.token = $('#admin-token').value.trim();
  $('#admin-token').value = '';
  $('#admin-message').textContent = '';
  if (state.token === '') sessionStorage.removeItem(tokenKey);
  else sessionStorage.setItem(tokenKey, state.token);
  follow();
});

$('#forget-token').addEventListener('click', () => {
  forgetToken('');
  follow();
});

follow();
