// Switchboard's dashboard: live charts and tables, a few helpers. No library, no CDN.
"use strict";

const Dashboard = (() => {
  const REFRESH_MS = 5000;
  const WINDOW_MS = 3600 * 1000;
  const MIN_SPAN_MS = 60 * 1000;
  // Rates are taken over at least this long: counts reach Redis once a second.
  const MIN_RATE_MS = 5000;
  const COLORS = ["#2457d6", "#c0262d", "#1a7f4b", "#b25e00", "#7a3fc2", "#0f8a9c"];
  const DEPTHS = ["inbound", "bot_turns", "deliveries", "retries", "dead_letters"];
  const RATES = {
    inbound: "messages in",
    turnMessages: "messages handled",
    delivered: "delivered",
    failedAttempts: "failed attempts",
    dead: "dead-lettered",
  };
  let samples = [];
  let latest = null;
  let timer = null;

  function findDelivery(form) {
    const id = form.elements.id.value.trim();
    if (id) window.location.href = `${form.action}/${encodeURIComponent(id)}`;
    return false;
  }

  function selectAll(box) {
    box.closest("table").querySelectorAll("tbody input[type=checkbox]").forEach((each) => {
      each.checked = box.checked;
    });
  }

  // --- the session: once it has ended, the page says so and stops asking ------------------

  // Whether the answer says the session has ended (logged out elsewhere, token revoked):
  // 401, or a redirect to the login form.
  function signedOut(answer) {
    const login = document.body.dataset.login || "/dashboard/login";
    return answer.status === 401 || (answer.redirected && new URL(answer.url).pathname === login);
  }

  function stopAsSignedOut() {
    window.clearInterval(timer);
    if (document.getElementById("signed-out")) return;
    const login = new URL(document.body.dataset.login || "/dashboard/login", window.location.href);
    login.searchParams.set("next", window.location.pathname + window.location.search);
    const notice = document.createElement("p");
    notice.id = "signed-out";
    notice.className = "notice error";
    notice.setAttribute("role", "alert");
    const link = document.createElement("a");
    link.href = login.pathname + login.search;
    link.textContent = "sign in again";
    notice.append("Signed out: this page no longer updates; ", link, ".");
    const main = document.querySelector("main") || document.body;
    main.prepend(notice);
  }

  // The answer to a live request, or null (after saying so) when the session has ended.
  async function live(url) {
    const answer = await fetch(url, { credentials: "same-origin" });
    if (signedOut(answer)) {
      stopAsSignedOut();
      return null;
    }
    return answer.ok && !answer.redirected ? answer : null;
  }

  // --- live regions: server-rendered parts of the page, fetched again and swapped ---------

  function busy(element) {
    return (
      element.contains(document.activeElement) ||
      element.querySelector("input[type=checkbox]:checked") !== null
    );
  }

  async function refreshRegions() {
    const regions = [...document.querySelectorAll("[data-live][id]")];
    if (!regions.length || document.hidden) return;
    const answer = await live(window.location.href);
    if (!answer) return;
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
    for (const region of regions) {
      const replacement = fresh.getElementById(region.id);
      if (replacement && !busy(region)) region.replaceWith(document.importNode(replacement, true));
    }
  }

  // --- charts ------------------------------------------------------------------------------

  function svg(name, attributes) {
    const element = document.createElementNS("http://www.w3.org/2000/svg", name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    return element;
  }

  function draw(chartId, legendId, series, unit) {
    const chart = document.getElementById(chartId);
    const legend = document.getElementById(legendId);
    if (!chart || !legend) return;
    // The last hour, or less while there is less to show: from the first point, at least
    // a minute.
    const end = Date.now();
    let first = end;
    for (const line of series) if (line.points.length) first = Math.min(first, line.points[0][0]);
    const start = Math.max(end - WINDOW_MS, Math.min(first, end - MIN_SPAN_MS));
    const span = end - start;
    let top = 1;
    for (const line of series) for (const [, y] of line.points) top = Math.max(top, y);
    top *= 1.1;
    chart.replaceChildren();
    for (const fraction of [0, 0.5, 1]) {
      const y = 200 - fraction * 200;
      chart.append(svg("line", { class: "grid", x1: 0, x2: 600, y1: y, y2: y }));
    }
    legend.replaceChildren();
    series.forEach((line, i) => {
      const color = COLORS[i % COLORS.length];
      const points = line.points
        .filter(([t]) => t >= start)
        .map(([t, y]) => `${(((t - start) / span) * 600).toFixed(1)},${(200 - (y / top) * 200).toFixed(1)}`);
      if (points.length) {
        chart.append(svg("polyline", { class: "line", stroke: color, points: points.join(" ") }));
      }
      const last = line.points.length ? line.points[line.points.length - 1][1] : 0;
      const item = document.createElement("li");
      const swatch = document.createElement("i");
      swatch.style.background = color;
      item.append(swatch, `${line.label}: ${unit === "/s" ? last.toFixed(1) + "/s" : last}`);
      legend.append(item);
    });
    const scale = document.createElement("li");
    scale.className = "muted";
    const minutes = Math.max(Math.round(span / 60000), 1);
    const height = unit === "/s" ? `${top.toFixed(1)}/s` : Math.round(top);
    scale.textContent = `last ${minutes} min; top of chart: ${height}`;
    legend.append(scale);
  }

  // A counter's rate per second between points at least MIN_RATE_MS apart.
  function rates(points, name) {
    const found = [];
    let before = points[0];
    for (const point of points.slice(1)) {
      const ms = point.at - before.at;
      if (ms < MIN_RATE_MS) continue;
      const delta = (point.counters[name] || 0) - (before.counters[name] || 0);
      found.push([point.at, Math.max(delta, 0) / (ms / 1000)]);
      before = point;
    }
    return found;
  }

  function redraw() {
    const points = latest ? [...samples, latest] : samples;
    draw(
      "chart-depths",
      "legend-depths",
      DEPTHS.map((name) => ({
        label: name.replace("_", " "),
        points: points.map((p) => [p.at, p.queues[name] || 0]),
      })),
      "",
    );
    draw(
      "chart-rates",
      "legend-rates",
      Object.entries(RATES).map(([name, label]) => ({ label, points: rates(points, name) })),
      "/s",
    );
  }

  function updateTiles(overview) {
    for (const [name, depth] of Object.entries(overview.queues)) {
      const value = document.querySelector(`[data-queue="${name}"]`);
      if (value) value.textContent = depth;
    }
  }

  async function refreshCharts() {
    if (!document.getElementById("chart-depths") || document.hidden) return;
    const since = samples.length ? samples[samples.length - 1].at : 0;
    const answer = await live(`${document.body.dataset.live || "/dashboard/live"}?since=${since}`);
    if (!answer) return;
    const data = await answer.json();
    samples = samples.concat(data.series).filter((p) => p.at >= Date.now() - WINDOW_MS);
    latest = data.now;
    updateTiles(data.overview);
    redraw();
  }

  async function tick() {
    try {
      await Promise.all([refreshCharts(), refreshRegions()]);
    } catch (error) {
      // The next tick tries again: a restart of the web process must not stop the page.
      console.warn("dashboard refresh failed", error);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    timer = window.setInterval(tick, REFRESH_MS);
    tick();
  });

  return { findDelivery, selectAll };
})();
