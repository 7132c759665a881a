// Live updates: WatchDevices and WatchTickets streams that reconnect with
// backoff, and a ticker that keeps relative times ("3m ago") current.

import { checkSession, client, Code, ConnectError, explain, isCanceled, ticketClient } from "./api";
import { ago, fmtTime } from "./format";
import type { Device } from "./gen/deskside/v1/console_pb";
import type { WatchTicketsResponse } from "./gen/deskside/v1/tickets_pb";

export type LiveState = "connecting" | "live" | "reconnecting" | "stopped";

export interface WatchHandlers {
  /** onDevice gets each changed device. */
  onDevice(d: Device): void;
  /** onState reports the stream's state, with a sentence when it stopped or dropped. */
  onState(state: LiveState, detail?: string): void;
  /**
   * onResync is called after a reconnect: changes made while the stream
   * was down were missed, so the caller should reload what it shows.
   */
  onResync(): void;
}

const backoffStart = 1000;
const backoffMax = 30_000;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/**
 * watchDevices keeps a WatchDevices stream open until signal aborts. A
 * dropped stream is reopened after 1 s, doubling up to 30 s (±20 %
 * jitter); a stream that delivered something resets the delay. It stops for
 * good when the session is gone (the sign-in page takes over) or the role
 * does not allow watching.
 */
export function watchDevices(signal: AbortSignal, h: WatchHandlers): void {
  keepWatching(signal, (onHeader) => client.watchDevices({}, { signal, onHeader }), (ev) => {
    if (ev.device) h.onDevice(ev.device);
  }, h);
}

/** TicketWatchHandlers hear a WatchTickets stream (see WatchHandlers). */
export interface TicketWatchHandlers {
  /** onTicket gets each event (the empty first message is skipped). */
  onTicket(ev: WatchTicketsResponse): void;
  onState(state: LiveState, detail?: string): void;
  onResync(): void;
}

/** watchTickets keeps a WatchTickets stream open until signal aborts, as watchDevices does. */
export function watchTickets(signal: AbortSignal, h: TicketWatchHandlers): void {
  keepWatching(signal, (onHeader) => ticketClient.watchTickets({}, { signal, onHeader }), (ev) => {
    if (ev.ticket) h.onTicket(ev);
  }, h);
}

/** keepWatching runs one stream after another with the backoff described at watchDevices. */
function keepWatching<T>(signal: AbortSignal, openStream: (onHeader: () => void) => AsyncIterable<T>, onItem: (v: T) => void,
  h: { onState(state: LiveState, detail?: string): void; onResync(): void }): void {
  void (async () => {
    let delay = backoffStart;
    let first = true;
    while (!signal.aborted) {
      if (first) h.onState("connecting");
      let got = false;
      let dropped: string | undefined;
      // The stream counts as open when its headers arrive, or when it has
      // stayed up for a second (a relay may send headers with the first
      // change only). After a reconnect, the caller then reloads.
      let opened = false;
      const resync = !first;
      const open = () => {
        if (opened || signal.aborted) return;
        opened = true;
        h.onState("live");
        if (resync) h.onResync();
      };
      const openTimer = setTimeout(open, 1000);
      try {
        for await (const ev of openStream(open)) {
          open();
          got = true;
          onItem(ev);
        }
        // The relay ended the stream (restart, or this watcher fell behind).
      } catch (err) {
        if (signal.aborted || isCanceled(err)) return;
        const ce = ConnectError.from(err);
        if (ce.code === Code.Unauthenticated) {
          checkSession(err);
          h.onState("stopped", explain(err));
          return;
        }
        if (ce.code === Code.PermissionDenied || ce.code === Code.Unimplemented) {
          h.onState("stopped", explain(err));
          return;
        }
        dropped = explain(err);
      } finally {
        clearTimeout(openTimer);
      }
      first = false;
      if (got) delay = backoffStart;
      if (signal.aborted) return;
      h.onState("reconnecting", dropped);
      await sleep(delay * (0.8 + Math.random() * 0.4), signal);
      delay = Math.min(delay * 2, backoffMax);
    }
  })();
}

/** relTime is a <time> whose text the ticker keeps current ("3m ago"). */
export function setRelTime(el: HTMLTimeElement, t: Date | undefined): void {
  const ms = t && t.getTime() > 0 ? t.getTime() : 0;
  el.classList.add("rel");
  el.dataset["t"] = String(ms);
  if (ms) {
    el.dateTime = t!.toISOString();
    el.title = fmtTime(t);
  } else {
    el.removeAttribute("datetime");
    el.title = "";
  }
  const s = ago(Date.now(), ms ? t : undefined);
  if (el.textContent !== s) el.textContent = s;
}

/** tickRelTimes refreshes every relative time in the document. */
export function tickRelTimes(): void {
  const now = Date.now();
  for (const el of document.querySelectorAll<HTMLTimeElement>("time.rel")) {
    const ms = Number(el.dataset["t"] ?? 0);
    const s = ago(now, ms ? new Date(ms) : undefined);
    if (el.textContent !== s) el.textContent = s;
  }
}
