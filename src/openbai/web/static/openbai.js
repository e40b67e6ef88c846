// openbai's own script for the explorer: the live log view, the metrics chart and the
// confirmation of destructive forms. Job data only ever reaches the page as text nodes
// (textContent / Text.data), never as markup.
"use strict";

(() => {
  // -- confirmation ---------------------------------------------------------------------------
  // A form with data-confirm submits only after the user agreed to its question.
  document.addEventListener(
    "submit",
    (e) => {
      const form = e.target;
      if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
        e.preventDefault();
      }
    },
    true,
  );

  // -- live views -----------------------------------------------------------------------------
  // A page's views come through the SharedWorker that all the explorer's pages share (one
  // event stream for the whole browser: see openbai-live.js), or through a Hub of the
  // page's own where there is no SharedWorker.
  const live = (() => {
    const script = document.querySelector("script[data-live-hub]");
    const handlers = new Map();
    let next = 1;
    let port = null;
    if (script && typeof SharedWorker !== "undefined") {
      try {
        port = new SharedWorker(script.src, { name: "openbai-live" }).port;
      } catch {
        port = null; // refused (a sandboxed frame): the page's own hub
      }
    }
    if (port) {
      port.onmessage = ({ data }) => handlers.get(data.view)?.(data);
      port.start();
      window.addEventListener("pagehide", () => port.postMessage({ op: "bye" }));
      if (navigator.locks) {
        const lock = `openbai-page-${Date.now()}-${Math.random()}`;
        navigator.locks.request(lock, () => {
          port.postMessage({ op: "alive", lock });
          return new Promise(() => {}); // held as long as the page lives
        });
      }
    }
    // a page shown again from the back-forward cache said bye: its views start afresh
    window.addEventListener("pageshow", (e) => {
      if (e.persisted && handlers.size) window.location.reload();
    });
    const hub = port ? null : new window.OpenbaiHub();
    return {
      open(url, sub, handler) {
        const view = next++;
        handlers.set(view, handler);
        let id = null;
        if (port) port.postMessage({ op: "open", view, url, sub });
        else id = hub.open(url, sub, handler);
        return {
          close() {
            handlers.delete(view);
            if (port) port.postMessage({ op: "close", view });
            else hub.close(id);
          },
        };
      },
    };
  })();

  // a job's state changed: its summary (times, exit code, buttons) is fetched again; a job
  // being deleted has no summary for long, so only its state is shown. A change that comes
  // while a summary is loading fetches it once more when that one is in: htmx would queue
  // the request on the element the first one replaces, and so lose it.
  const summaries = { latest: null, loading: false, again: false };
  const showSummary = () => {
    const summary = document.getElementById("summary");
    if (!summary || !summary.dataset.src) return;
    const state = summaries.latest;
    if (state === "deleting") {
      const pill = summary.querySelector(".state");
      pill.textContent = state;
      pill.className = `state state-${state}`;
      summary.dataset.state = state;
      summary.querySelector(".waiting")?.remove();
      return;
    }
    if (typeof htmx === "undefined") return;
    if (summaries.loading) {
      summaries.again = true;
      return;
    }
    summaries.loading = true;
    htmx.ajax("GET", summary.dataset.src, { target: "#summary", swap: "outerHTML" }).finally(() => {
      summaries.loading = false;
      if (summaries.again || summaries.latest === "deleting") {
        summaries.again = false;
        showSummary();
      }
    });
  };
  document.addEventListener("openbai:job-state", (e) => {
    const summary = document.getElementById("summary");
    const state = e.detail.state;
    if (!summary || !summary.dataset.src || summary.dataset.state === state) return;
    summary.dataset.state = state;
    summaries.latest = state;
    showSummary();
  });

  // -- live log -------------------------------------------------------------------------------
  // Text arrives as server-sent events of JSON strings; lines are what a terminal shows:
  // "\n" ends a line, "\r" makes the next text rewrite the current line (progress bars).
  const MAX_LINES = 20000;

  class LogView {
    constructor(root, chart) {
      this.root = root;
      this.chart = chart; // fed by the same stream's "metrics" events (one stream per page)
      this.box = root.querySelector(".log");
      this.status = root.querySelector(".log-status");
      this.tabs = Array.from(root.querySelectorAll("[data-path][role=tab]"));
      this.view = null;
      for (const tab of this.tabs) tab.addEventListener("click", () => this.select(tab));
      const first = this.tabs.find((t) => t.getAttribute("aria-selected") === "true") || this.tabs[0];
      if (first) this.select(first);
      else this.open(this.subOf(root), root.dataset.earlier);
    }

    select(tab) {
      for (const t of this.tabs) t.setAttribute("aria-selected", t === tab ? "true" : "false");
      this.open(this.subOf(tab), tab.dataset.earlier);
    }

    subOf(el) {
      const [rg, ws, exp, job] = JSON.parse(this.root.dataset.job);
      return { rg, ws, exp, job, directory: el.dataset.directory, path: el.dataset.path, metrics: "withMetrics" in el.dataset };
    }

    // A view opens at the last lines of a large file ("skipped" says how many bytes come
    // before them); the button loads earlier lines, a block at a time.
    setSkipped(bytes) {
      this.skipped = bytes;
      if (!this.earlierButton) {
        this.earlierButton = document.createElement("button");
        this.earlierButton.type = "button";
        this.earlierButton.className = "load-earlier";
        this.earlierButton.addEventListener("click", () => this.loadEarlier());
        this.root.insertBefore(this.earlierButton, this.box);
      }
      this.earlierButton.hidden = !(bytes > 0 && this.earlierUrl);
      this.earlierButton.disabled = false;
      this.earlierButton.textContent = `Load earlier lines (${bytes} bytes before these)`;
    }

    async loadEarlier() {
      const url = new URL(this.earlierUrl, window.location.href);
      url.searchParams.set("end", String(this.skipped));
      this.earlierButton.disabled = true;
      const response = await fetch(url, { headers: { Accept: "text/plain" } });
      if (!response.ok) {
        this.earlierButton.disabled = false;
        this.earlierButton.textContent = "Could not load earlier lines: try again";
        return;
      }
      this.prepend(await response.text());
      this.setSkipped(Number(response.headers.get("X-Start") || "0"));
    }

    prepend(text) {
      const lines = text.split("\n");
      if (lines.length && lines[lines.length - 1] === "") lines.pop();
      const height = this.box.scrollHeight;
      const fragment = document.createDocumentFragment();
      for (const line of lines) {
        const div = document.createElement("div");
        div.className = "line";
        const parts = line.split("\r").filter((p) => p !== "");
        div.append(document.createTextNode(parts.length ? parts[parts.length - 1] : ""));
        fragment.append(div);
      }
      this.box.insertBefore(fragment, this.box.firstChild);
      this.box.scrollTop += this.box.scrollHeight - height; // the lines read stay in place
    }

    reset() {
      this.box.replaceChildren();
      this.dropped = 0;
      this.bytes = 0;
      this.rewrite = false;
      this.line = this.newLine();
    }

    newLine() {
      const div = document.createElement("div");
      div.className = "line";
      const text = document.createTextNode("");
      div.append(text);
      this.box.append(div);
      return text;
    }

    // sub: the view's job, directory, path and whether the job's metrics come with it
    open(sub, earlier) {
      if (this.view) this.view.close();
      this.reset();
      this.earlierUrl = earlier;
      this.setSkipped(0);
      this.setStatus("connecting…", "connecting");
      this.view = live.open(this.root.dataset.live, sub, (m) => this.receive(m));
    }

    receive(m) {
      switch (m.kind) {
        case "open":
          this.setStatus(this.state === "queued" ? `queued: ${this.note}` : "following", "live");
          break;
        case "reconnecting":
          this.setStatus("reconnecting…", "connecting");
          break;
        case "text":
          this.write(m.data);
          break;
        case "skipped":
          this.setSkipped(m.data.bytes);
          break;
        case "metrics":
          if (this.chart) this.chart.add(m.data);
          break;
        case "state":
          this.state = m.data.state;
          this.note = m.data.note;
          if (!m.data.ended) this.setStatus(m.data.note ? `${m.data.state}: ${m.data.note}` : "following", "live");
          document.dispatchEvent(new CustomEvent("openbai:job-state", { detail: m.data }));
          break;
        case "end":
          this.setStatus(`complete: the job has ended (${m.data.bytes} bytes)`, "ended");
          break;
        case "failure":
          this.setStatus(`cannot read the file: ${m.data.message}`, "failed");
          break;
      }
    }

    setStatus(text, state) {
      if (!this.status) return;
      this.status.textContent = text;
      this.status.dataset.state = state;
    }

    write(text) {
      const follow = this.box.scrollTop + this.box.clientHeight >= this.box.scrollHeight - 4;
      let start = 0;
      while (start < text.length) {
        let end = start;
        while (end < text.length && text[end] !== "\n" && text[end] !== "\r") end++;
        if (end > start) this.append(text.slice(start, end));
        if (end === text.length) break;
        if (text[end] === "\n") {
          this.rewrite = false;
          this.line = this.newLine();
        } else {
          this.rewrite = true;
        }
        start = end + 1;
      }
      this.trim();
      if (follow) this.box.scrollTop = this.box.scrollHeight;
    }

    append(piece) {
      if (this.rewrite) {
        this.line.data = piece;
        this.rewrite = false;
      } else {
        this.line.appendData(piece);
      }
    }

    trim() {
      let extra = this.box.childElementCount - MAX_LINES;
      if (extra <= 0) return;
      while (extra-- > 0) this.box.firstElementChild.remove();
      if (!this.notice) {
        this.notice = document.createElement("p");
        this.notice.className = "log-notice";
        this.root.insertBefore(this.notice, this.box);
      }
      this.notice.textContent = `Only the last ${MAX_LINES} lines are shown; download the file for all of it.`;
    }
  }

  // -- metrics chart --------------------------------------------------------------------------
  // Points {x, line, values: {name: number}} arrive as server-sent events; one series per name.
  const HEIGHT = 280;
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];

  class MetricsChart {
    constructor(root) {
      this.root = root;
      this.chartBox = root.querySelector(".chart");
      this.status = root.querySelector(".metrics-status");
      this.latest = root.querySelector(".latest");
      this.points = new Map(); // x -> {name: value}
      this.names = [];
      this.last = new Map(); // name -> [value, x]
      this.usesSteps = true;
      this.own = new Set(); // names charted on an axis of their own (their scales differ)
      this.plot = null;
      this.pending = false;
      // the chart takes the width of its box, also when the window (or the box) is resized
      new ResizeObserver(() => {
        if (this.plot) this.plot.setSize({ width: this.width(), height: HEIGHT });
      }).observe(this.chartBox);
    }

    add(batch) {
      for (const p of batch) {
        const row = this.points.get(p.x) || {};
        for (const [name, value] of Object.entries(p.values)) {
          row[name] = value;
          this.last.set(name, [value, p.x]);
          if (!this.names.includes(name)) this.names.push(name);
        }
        this.points.set(p.x, row);
      }
      if (!this.pending) {
        this.pending = true;
        setTimeout(() => this.draw(), 200);
      }
    }

    draw() {
      this.pending = false;
      if (this.points.size === 0) return;
      if (this.status) this.status.hidden = true;
      this.showLatest();
      if (typeof uPlot === "undefined") return;
      const xs = Array.from(this.points.keys()).sort((a, b) => a - b);
      const data = [xs, ...this.names.map((n) => xs.map((x) => this.points.get(x)[n] ?? null))];
      const layout = this.names.map((n) => (this.own.has(n) ? `own:${n}` : "y")).join("\n");
      if (this.plot && this.layout === layout) {
        this.plot.setData(data);
        return;
      }
      if (this.plot) this.plot.destroy();
      this.layout = layout;
      // the metrics share the y axis on the left, but for those given one of their own (on
      // the right, in their colour): a loss of 0.01 and an accuracy of 95 both stay readable
      const scales = { x: { time: false } };
      const axes = [{ label: "step" }];
      if (this.names.some((n) => !this.own.has(n))) {
        scales.y = {};
        axes.push({ scale: "y" });
      }
      const series = [{ label: "step" }];
      this.names.forEach((name, i) => {
        const stroke = COLORS[i % COLORS.length];
        const scale = this.own.has(name) ? `own:${name}` : "y";
        if (scale !== "y") {
          scales[scale] = {};
          axes.push({ scale, label: name, side: 1, stroke, grid: { show: false } });
        }
        series.push({ label: name, scale, stroke, width: 2, spanGaps: true });
      });
      this.plot = new uPlot({ width: this.width(), height: HEIGHT, scales, axes, series }, data, this.chartBox);
    }

    setOwnAxis(name, own) {
      if (own) this.own.add(name);
      else this.own.delete(name);
      this.draw();
    }

    width() {
      return Math.max(320, this.chartBox.clientWidth || 800);
    }

    showLatest() {
      const body = this.latest.tBodies[0];
      const rows = [];
      for (const name of this.names) {
        const [value, x] = this.last.get(name);
        const tr = document.createElement("tr");
        tr.dataset.metric = name;
        for (const text of [name, String(value), String(x)]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        const own = document.createElement("input");
        own.type = "checkbox";
        own.checked = this.own.has(name);
        own.setAttribute("aria-label", `chart ${name} on its own axis`);
        own.addEventListener("change", () => this.setOwnAxis(name, own.checked));
        const td = document.createElement("td");
        td.append(own);
        tr.append(td);
        rows.push(tr);
      }
      body.replaceChildren(...rows);
      this.latest.hidden = false;
    }
  }

  // -- start ----------------------------------------------------------------------------------
  function start(root) {
    for (const el of root.querySelectorAll("[data-metrics]")) {
      if (!el.metricsChart) el.metricsChart = new MetricsChart(el);
    }
    const chart = document.querySelector("[data-metrics]");
    for (const el of root.querySelectorAll("[data-log-view]")) {
      if (!el.logView) el.logView = new LogView(el, chart ? chart.metricsChart : null);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => start(document));
  else start(document);
})();
