// Live rows from `GET /api/v2/connectionlog/watch?q=` (Server-Sent Events). Each
// `connection_log` event carries one API row and its position in the log as the event id;
// a row may come twice (created, then completed), so the page upserts by row id. Stopping
// remembers the last position, and starting again asks for what came after it
// (`?after=`), so a pause misses nothing. The browser's own reconnects send
// `Last-Event-ID` by themselves.

export const WATCH_PATH = "/api/v2/connectionlog/watch";

/** How long to wait before reopening a stream the server ended. */
const REOPEN_MS = 1000;

export class LiveFeed {
  /**
   * `onRow(row)` for each row; `onState(state, detail)` with "connecting", "live",
   * "reconnecting", "paused" or "unavailable".
   */
  constructor({ onRow, onState }) {
    this.onRow = onRow;
    this.onState = onState;
    this.source = null;
    this.position = null;
    this.q = "";
    this.timer = null;
  }

  /** Opens the stream for `q`; `fromPosition` continues after the last row seen. */
  start(q, { fromPosition = false } = {}) {
    this.close();
    if (!fromPosition) this.position = null;
    this.q = q;
    const params = new URLSearchParams({ q });
    if (this.position !== null) params.set("after", this.position);
    const source = new EventSource(`${WATCH_PATH}?${params}`);
    this.source = source;
    this.onState("connecting");
    source.addEventListener("open", () => this.onState("live"));
    source.addEventListener("connection_log", (e) => {
      if (e.lastEventId) this.position = e.lastEventId;
      let row;
      try {
        row = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      this.onRow(row);
    });
    source.addEventListener("disconnect", (e) => {
      // The server ended the stream (shutdown, a slow reader): reopen after the position.
      try {
        const { position, reason } = JSON.parse(e.data);
        if (position !== undefined && position !== null) this.position = String(position);
        this.onState("reconnecting", reason || "");
      } catch (_) {
        this.onState("reconnecting", "");
      }
      this.close();
      this.timer = setTimeout(() => this.start(this.q, { fromPosition: true }), REOPEN_MS);
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // An HTTP error (no such route, signed out): EventSource does not retry those.
        this.onState("unavailable");
      } else {
        this.onState("reconnecting", "");
      }
    });
  }

  /** Stops without forgetting the position. */
  close() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }
}
