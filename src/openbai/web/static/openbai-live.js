// The live views of all of a browser's open explorer pages, on one event stream.
//
// A browser opens at most six HTTP/1.1 connections to a host for all its tabs, and an event
// stream holds one as long as it is open: with a stream per page, the seventh open job page
// never loaded. So this script runs as a SharedWorker that every page of the explorer talks
// to; it holds one EventSource to /ui/live naming all the views the pages follow
// (openbai/web/shared_stream.py) and hands each page the events of its own views. Where
// SharedWorker is missing (Chrome on Android), the page runs the same Hub itself: one
// stream per page, as before.
//
// The views are in the stream's URL: when a page opens or closes one, the stream is opened
// again (after a short pause, so that several changes make one reconnection) with the byte
// offset each view reached, so no line is lost or shown twice. A connection lost is
// reopened the same way, later each time. A stream the server refuses (logged out) ends
// every view.
"use strict";

(() => {
  const RETRY_MS = [500, 1000, 2000, 5000, 10000];
  const BATCH_MS = 40;

  class Hub {
    constructor() {
      this.views = new Map(); // id -> {url, sub, at, deliver}
      this.next = 1;
      this.source = null;
      this.timer = null;
      this.failures = 0;
    }

    // sub: {rg, ws, exp, job, directory, path, metrics}; deliver(message) gets its events
    open(url, sub, deliver) {
      const id = this.next++;
      this.views.set(id, { url, sub, at: null, deliver });
      this.reconnect(BATCH_MS);
      return id;
    }

    close(id) {
      if (this.views.delete(id)) this.reconnect(BATCH_MS);
    }

    reconnect(delay) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.connect(), delay);
    }

    connect() {
      if (this.source) this.source.close();
      this.source = null;
      if (this.views.size === 0) return;
      const url = new URL(this.views.values().next().value.url, self.location.href);
      for (const [id, view] of this.views) {
        const s = view.sub;
        const fields = [id, view.at ?? "", s.metrics ? 1 : 0, s.rg, s.ws, s.exp, s.job, s.directory, s.path];
        url.searchParams.append("view", fields.map((f) => encodeURIComponent(String(f))).join(","));
      }
      const source = new EventSource(url);
      this.source = source;
      source.onopen = () => {
        this.failures = 0;
        this.tellAll({ kind: "open" });
      };
      source.onmessage = (e) => this.receive(JSON.parse(e.data));
      source.onerror = () => {
        if (this.source !== source) return;
        const refused = source.readyState === EventSource.CLOSED; // an answer other than a stream
        source.close();
        this.source = null;
        if (refused) {
          this.failAll("cannot follow this file (log in again?)");
        } else if (this.views.size) {
          this.tellAll({ kind: "reconnecting" });
          this.reconnect(RETRY_MS[Math.min(this.failures++, RETRY_MS.length - 1)]);
        }
      };
    }

    receive(message) {
      if (message.view === null) {
        this.failAll(message.data.message);
        return;
      }
      const view = this.views.get(message.view);
      if (!view) return;
      if (message.kind === "text") view.at = message.at;
      else if (message.kind === "skipped") view.at = message.data.bytes;
      else if (message.kind === "end" || message.kind === "failure") this.views.delete(message.view);
      view.deliver(message);
    }

    tellAll(message) {
      for (const view of this.views.values()) view.deliver(message);
    }

    failAll(text) {
      const views = Array.from(this.views.values());
      this.views.clear();
      for (const view of views) view.deliver({ kind: "failure", data: { message: text } });
    }
  }

  const inSharedWorker = typeof SharedWorkerGlobalScope !== "undefined" && self instanceof SharedWorkerGlobalScope;
  if (!inSharedWorker) {
    self.OpenbaiHub = Hub;
    return;
  }
  const hub = new Hub();
  // a page's messages: {op: "open", view, url, sub}, {op: "close", view}, {op: "bye"} (the
  // page goes away), {op: "alive", lock} (a Web Lock the page holds while it lives: granted
  // here, it means the page is gone, even one that crashed without saying bye)
  self.onconnect = (event) => {
    const port = event.ports[0];
    const mine = new Map(); // the page's number of a view -> the hub's
    const forget = () => {
      for (const id of mine.values()) hub.close(id);
      mine.clear();
    };
    port.onmessage = ({ data }) => {
      if (data.op === "open") {
        const deliver = (message) => port.postMessage({ ...message, view: data.view });
        mine.set(data.view, hub.open(data.url, data.sub, deliver));
      } else if (data.op === "close" && mine.has(data.view)) {
        hub.close(mine.get(data.view));
        mine.delete(data.view);
      } else if (data.op === "bye") {
        forget();
      } else if (data.op === "alive" && self.navigator.locks) {
        self.navigator.locks.request(data.lock, forget);
      }
    };
    port.start();
  };
})();
