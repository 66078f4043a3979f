// The desk's live page: long-polls /api/snapshot (answered when the server's data
// changes, or after WAIT_MS) and draws each answer.
"use strict";
const params = new URLSearchParams(location.search);
let exchange = params.get("exchange") || "binance";
let symbol = params.get("symbol") || "BTC-USDT";
// The longest the server holds a request for a change: the page redraws (the ages it
// shows, the stale flag) at least this often.
const WAIT_MS = Number(params.get("wait_ms") || 1000);
// Between two requests at least this long (a busy feed changes more often than needed),
// and after a failed one POLL_MS.
const GAP_MS = 100, POLL_MS = 1000;
// The page says its data is stale after this long without a new trade.
const STALE_S = Number(params.get("stale_s") || 10);

const LC = LightweightCharts;
const chartEl = document.getElementById("chart");
const chart = LC.createChart(chartEl, {
  autoSize: true,
  layout: { background: { color: "#0f1419" }, textColor: "#d8dee4" },
  grid: { vertLines: { color: "#1b2128" }, horzLines: { color: "#1b2128" } },
  timeScale: { timeVisible: true, secondsVisible: false },
});
const candles = chart.addSeries(LC.CandlestickSeries, {});
const volume = chart.addSeries(LC.HistogramSeries,
  { priceFormat: { type: "volume" }, color: "#3d6e9e" }, 1);
chart.panes()[1].setHeight(120);

// What a test or a curious user can read without looking at pixels.
const stats = document.body.dataset;
let shownBook = "", shownLast = null, lastBarKey = "", changes = [], lastTradeKey = "";

function ago(seconds) {
  if (seconds == null) return "never";
  if (seconds < 90) return seconds.toFixed(1) + " s ago";
  if (seconds < 5400) return (seconds / 60).toFixed(0) + " min ago";
  return (seconds / 3600).toFixed(1) + " h ago";
}

function hhmm(epoch) {
  return new Date(epoch * 1000).toISOString().slice(11, 16);
}

// Why what the page shows may be out of date: "server" (the dashboard does not answer),
// "trino" (the server cannot query Trino: its last good data is shown), "trades" (no new
// trade for STALE_S seconds), or "" (fresh). Shown in #stale, kept in its data-reason.
function showStale(reason, text) {
  const el = document.getElementById("stale");
  el.hidden = !reason;
  el.textContent = reason ? "STALE: " + text : "";
  el.dataset.reason = reason;
  stats.stale = reason;
}

function staleness(s) {
  const age = s.newest_trade == null ? null : s.server_time - s.newest_trade;
  if (s.trino && s.trino.error) {
    const since = s.server_time - s.trino.error_since;
    return ["trino", `Trino unreachable for ${ago(since).replace(" ago", "")}, showing data ` +
            `from ${ago(s.trino.ok_at == null ? null : s.server_time - s.trino.ok_at)} (` +
            s.trino.error.slice(0, 120) + ")"];
  }
  if (age == null) return ["trades", "no trade yet"];
  if (age > STALE_S) return ["trades", `no new trade for ${ago(age).replace(" ago", "")}`];
  return ["", ""];
}

function drawHeader(s) {
  const fresh = document.getElementById("freshness");
  const age = s.newest_trade == null ? null : s.server_time - s.newest_trade;
  fresh.textContent = ago(age);
  fresh.className = "pill " + (age == null ? "dead" : age < 5 ? "fresh" : age < 60 ? "stale" : "dead");
  fresh.dataset.ageS = age == null ? "" : age.toFixed(3);
  const b = s.boundaries.find(r => r.view_name === "bars_1m");
  const boundary = document.getElementById("boundary");
  boundary.textContent = b ? hhmm(b.boundary) + " UTC (" + ago(s.server_time - b.boundary) + ")"
                           : "none yet (all from the speed layer)";
  const select = document.getElementById("book");
  const books = s.board.map(r => r.exchange + ":" + r.symbol);
  if (select.options.length !== books.length) {
    select.innerHTML = "";
    for (const k of books) select.add(new Option(k.replace(":", " "), k, false,
                                                  k === exchange + ":" + symbol));
  }
}

function drawChart(s) {
  const bars = s.bars.map(r => ({ time: r.window_start, open: +r.open, high: +r.high,
                                  low: +r.low, close: +r.close }));
  const vols = s.bars.map(r => ({ time: r.window_start, value: +r.volume,
                                  color: +r.close >= +r.open ? "#26a69a80" : "#ef535080" }));
  const book = s.exchange + ":" + s.symbol;
  const known = Number(chartEl.dataset.bars || 0);
  // New and changed bars only (the last one, the current minute, moves as trades come)
  // when the bars drawn are still the start of the new ones; otherwise (another book,
  // old windows dropped, a window appearing between two drawn ones) all of them: the
  // chart refuses an update older than its last bar.
  if (book === shownBook && known && bars.length >= known &&
      bars[known - 1].time === shownLast) {
    for (let i = known - 1; i < bars.length; i++) {
      candles.update(bars[i]);
      volume.update(vols[i]);
    }
  } else {
    candles.setData(bars);
    volume.setData(vols);
    shownBook = book;
  }
  shownLast = bars.length ? bars[bars.length - 1].time : null;
  chartEl.dataset.bars = String(bars.length);
  if (bars.length && !stats.firstChartMs) {
    stats.firstChartMs = performance.now().toFixed(0);
  }
  const last = s.bars[s.bars.length - 1];
  const el = document.getElementById("current-bar");
  if (!last) { el.textContent = "current bar: no bars in the last 3 hours"; return; }
  el.textContent = `current bar ${hhmm(last.window_start)} UTC: open ${last.open} high ` +
    `${last.high} low ${last.low} close ${last.close}, volume ${last.volume}, ` +
    `${last.trade_count} trades, vwap ${last.vwap}`;
  Object.assign(el.dataset, { window: last.window_start, close: last.close,
                              count: last.trade_count });
  const key = last.window_start + "/" + last.trade_count + "/" + last.close;
  if (key !== lastBarKey) {
    if (lastBarKey) changes.push(performance.now());
    lastBarKey = key;
    stats.barChanges = String(changes.length);
    if (changes.length > 1) {
      stats.updateIntervalMs = ((changes[changes.length - 1] - changes[0]) /
                                (changes.length - 1)).toFixed(0);
    }
  }
}

function drawTables(s) {
  // The shown book's last trade on the board (its time and price): counted as it changes.
  const mine = s.board.find(r => r.exchange === s.exchange && r.symbol === s.symbol);
  const tradeKey = mine ? mine.ts + "/" + mine.price : "";
  if (tradeKey !== lastTradeKey) {
    if (lastTradeKey) stats.priceChanges = String(Number(stats.priceChanges || 0) + 1);
    lastTradeKey = tradeKey;
  }
  const board = document.querySelector("#board tbody");
  board.innerHTML = s.board.map(r =>
    `<tr><td>${r.exchange} ${r.symbol}</td><td>${r.price}</td>` +
    `<td>${ago(s.server_time - r.ts)}</td></tr>`).join("");
  document.getElementById("spread-symbol").textContent = s.symbol;
  const spread = document.querySelector("#spread tbody");
  spread.innerHTML = s.spread.slice(-15).reverse().map(r =>
    `<tr><td>${hhmm(r.window_start)}</td><td>${r.spread}</td><td>${r.exchanges}</td></tr>`
  ).join("");
}

// The ops strip: what Prometheus sees (GET /api/ops), every OPS_MS. Its data-* attributes
// (state, down, alerts, firing) are for tests and curious users.
const OPS_MS = Number(params.get("ops_ms") || 5000);

function esc(text) {
  return String(text).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
                                                 '"': "&quot;" })[c]);
}

function drawOps(o) {
  const el = document.getElementById("ops");
  if (!o.enabled) {
    el.innerHTML = "<span>ops: monitoring is off (CONCORD_MONITORING=0)</span>";
    Object.assign(el.dataset, { state: "off", down: "", alerts: "0", firing: "" });
    return;
  }
  const prom = `<a href="${esc(o.prometheus)}/alerts" target="_blank">Prometheus</a>`;
  if (o.error) {
    el.innerHTML = `<span class="down">ops: ${prom} unreachable</span>`;
    el.title = o.error;
    Object.assign(el.dataset, { state: "unreachable", down: "", alerts: "", firing: "" });
    return;
  }
  const parts = [`<span>ops (${prom}):</span>`];
  const down = Object.entries(o.components).filter(([, up]) => !up).map(([n]) => n);
  for (const [name, up] of Object.entries(o.components)) {
    parts.push(`<span class="${up ? "up" : "down"}">${esc(name)} ${up ? "up" : "DOWN"}</span>`);
  }
  for (const f of o.figures) {
    const v = f.value == null ? "–" : f.unit === "s" ? f.value.toFixed(1) + " s"
                                                      : Math.round(f.value).toLocaleString();
    parts.push(`<span>${esc(f.label)} ${v}${f.unit === "msgs" && f.value != null ? " msgs" : ""}</span>`);
  }
  if (!o.alerts.length) parts.push('<span class="pill fresh">no alerts</span>');
  for (const a of o.alerts) {
    parts.push(`<span class="pill ${a.state}" title="${esc(a.summary)}">` +
               `${a.state.toUpperCase()} ${esc(a.name)}</span>`);
  }
  el.innerHTML = parts.join("");
  el.title = "";
  Object.assign(el.dataset, {
    state: "ok", down: down.join(","), alerts: String(o.alerts.length),
    firing: o.alerts.filter(a => a.state === "firing").map(a => a.name).join(","),
  });
}

async function pollOps() {
  try {
    const resp = await fetch("/api/ops");
    drawOps(await resp.json());
  } catch (err) {
    const el = document.getElementById("ops");
    el.innerHTML = "<span class=\"down\">ops: the dashboard server does not answer</span>";
    el.dataset.state = "server";
  }
  setTimeout(pollOps, OPS_MS);
}
pollOps();

let generation = 0;  // a book change starts a new polling loop; the old one stops

async function poll(mine = generation, after = "") {
  if (mine !== generation) return;
  let next = POLL_MS;
  try {
    const resp = await fetch(`/api/snapshot?exchange=${encodeURIComponent(exchange)}` +
                             `&symbol=${encodeURIComponent(symbol)}` +
                             (after ? `&after=${after}&wait_ms=${WAIT_MS}` : ""));
    const s = await resp.json();
    if (!resp.ok) throw new Error(s.error || resp.statusText);
    if (mine !== generation) return;  // an answer for the book shown before
    drawHeader(s); drawChart(s); drawTables(s);
    showStale(...staleness(s));
    stats.polls = String(Number(stats.polls || 0) + 1);
    after = s.version;
    next = GAP_MS;
  } catch (err) {
    showStale("server", "the dashboard server does not answer (" + err.message + ")");
    after = "";
  }
  if (mine === generation) setTimeout(() => poll(mine, after), next);
}

document.getElementById("book").addEventListener("change", ev => {
  [exchange, symbol] = ev.target.value.split(":");
  history.replaceState(null, "", `?exchange=${exchange}&symbol=${symbol}`);
  lastBarKey = ""; changes = []; lastTradeKey = "";
  generation += 1;
  poll(generation);
});
poll();
