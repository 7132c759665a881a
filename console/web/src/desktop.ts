// Remote-desktop viewer logic that does not touch the DOM, so node's test
// runner covers it: where a pointer lands on the device's screen (the
// picture is letterboxed in fit mode), wheel deltas as wheel clicks,
// which keys go to the device, the input channel's messages, the session
// state that follows the ICE state, and the numbers of the stats overlay.
//
// The input channel ("input", opened by the agent) carries JSON:
//   {"t":"m","x":X,"y":Y}        pointer at screen pixel X,Y (the video's intrinsic size)
//   {"t":"b","b":1|2|3,"d":bool} button 1 left, 2 middle, 3 right; d: down
//   {"t":"w","dx":n,"dy":n}      wheel clicks; dy > 0 scrolls down, dx > 0 right
//   {"t":"k","c":code,"d":bool}  KeyboardEvent.code down/up
//   {"t":"r"}                    release every key and button held

/** Box is an element's box in client (CSS pixel) coordinates. */
export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * sdpFingerprint is a certificate's SHA-256 fingerprint as SDP writes it
 * ("sha-256 AB:CD:…", RFC 8122: upper-case hex, colons), the form the
 * viewer names in its request and the agent finds in the answer; undefined
 * when the browser gives none.
 */
export function sdpFingerprint(fps: ReadonlyArray<{ algorithm?: string | undefined; value?: string | undefined }>): string | undefined {
  const f = fps.find((x) => x.algorithm?.toLowerCase() === "sha-256" && /^[0-9a-f]{2}(:[0-9a-f]{2}){31}$/i.test(x.value ?? ""));
  return f ? `sha-256 ${f.value!.toUpperCase()}` : undefined;
}

/**
 * pictureBox is where a video of intrinsic size vw×vh is drawn inside an
 * element box with object-fit: contain: scaled to fit, aspect ratio kept,
 * centred (bars left and right, or above and below). At 1:1 the element
 * has the video's size and the picture is the whole box.
 */
export function pictureBox(box: Box, vw: number, vh: number): Box | undefined {
  if (!(vw > 0 && vh > 0 && box.width > 0 && box.height > 0)) return undefined;
  // The limiting side fills the box exactly (no rounding error at its edges).
  const wide = box.width * vh <= box.height * vw;
  const width = wide ? box.width : (vw * box.height) / vh;
  const height = wide ? (vh * box.width) / vw : box.height;
  return { left: box.left + (box.width - width) / 2, top: box.top + (box.height - height) / 2, width, height };
}

/** ScreenPoint is a pixel of the device's screen. */
export interface ScreenPoint {
  x: number;
  y: number;
  /** inside is false when the pointer is on the bars around the picture (x, y are then clamped to its edge). */
  inside: boolean;
}

/** toScreen maps a pointer at clientX, clientY over the video element box to a pixel of the vw×vh screen. */
export function toScreen(clientX: number, clientY: number, box: Box, vw: number, vh: number): ScreenPoint | undefined {
  const pic = pictureBox(box, vw, vh);
  if (!pic) return undefined;
  const fx = ((clientX - pic.left) * vw) / pic.width;
  const fy = ((clientY - pic.top) * vh) / pic.height;
  const inside = fx >= 0 && fy >= 0 && fx < vw && fy < vh;
  const x = Math.min(vw - 1, Math.max(0, Math.floor(fx)));
  const y = Math.min(vh - 1, Math.max(0, Math.floor(fy)));
  return { x, y, inside };
}

/** remoteButton maps PointerEvent.button (0 main, 1 middle, 2 secondary) to the device's button 1/2/3; others are not sent. */
export function remoteButton(domButton: number): 1 | 2 | 3 | undefined {
  return domButton === 0 ? 1 : domButton === 1 ? 2 : domButton === 2 ? 3 : undefined;
}

/** pixelsPerClick is how far a wheel scrolls a browser page per notch (about three lines), our unit of one click. */
export const pixelsPerClick = 100;
/** wheelIdleMs: a wheel event after this pause (or in the other direction) starts a new gesture. */
export const wheelIdleMs = 300;
/** firstClickPx: a gesture's first event scrolls at once if it moves this far (a mouse notch; not a touchpad's drift). */
export const firstClickPx = 20;
/** maxClicks caps the clicks one event sends (the agent clamps to ±10 too). */
export const maxClicks = 10;

/**
 * WheelAxis turns one axis of WheelEvent deltas into whole wheel clicks.
 * Deltas in lines count 3 to a click, in pages 8 clicks a page; pixel
 * deltas are summed and make a click every 100 px, so a touchpad's stream
 * of small deltas scrolls steadily rather than a click per event. The
 * first event of a gesture makes at least one click in its direction when
 * it moves 20 px or more, so a mouse whose notch is under 100 px still
 * scrolls at once while a touchpad's sideways drift does not.
 */
export class WheelAxis {
  private acc = 0;
  private dir = 0;
  private last = -Infinity;

  /** push adds a delta (WheelEvent.deltaMode 0 px, 1 lines, 2 pages) at time nowMs and returns the clicks to send. */
  push(delta: number, mode: number, nowMs: number): number {
    if (!Number.isFinite(delta) || delta === 0) return 0;
    const px = mode === 1 ? (delta * pixelsPerClick) / 3 : mode === 2 ? delta * pixelsPerClick * 8 : delta;
    const dir = Math.sign(px);
    const fresh = dir !== this.dir || nowMs - this.last > wheelIdleMs;
    this.last = nowMs;
    if (fresh) {
      this.acc = 0;
      this.dir = dir;
    }
    this.acc += px;
    let n = Math.trunc(this.acc / pixelsPerClick);
    if (n === 0 && fresh && Math.abs(px) >= firstClickPx) n = dir;
    this.acc -= n * pixelsPerClick;
    return Math.max(-maxClicks, Math.min(maxClicks, n));
  }

  reset(): void {
    this.acc = 0;
    this.dir = 0;
    this.last = -Infinity;
  }
}

/** KeyLike is what the keyboard decisions read of a KeyboardEvent. */
export interface KeyLike {
  code: string;
  ctrlKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
  metaKey?: boolean;
  repeat?: boolean;
  isComposing?: boolean;
}

/** escapeHatch names the keys that give the keyboard back to the browser. */
export const escapeHatch = "Ctrl+Alt+Shift+Esc";

/** isEscapeHatch: Ctrl+Alt+Shift+Escape releases the keyboard (never sent to the device). */
export function isEscapeHatch(e: KeyLike): boolean {
  return e.code === "Escape" && e.ctrlKey && e.altKey && e.shiftKey;
}

/**
 * KeyVerdict is what to do with a key event while the screen has focus:
 * "send" it to the device (and keep it from the browser), "swallow" it
 * (keep it from the browser, send nothing), "release" the keyboard (the
 * escape hatch), or "pass" it to the browser untouched.
 */
export type KeyVerdict = "send" | "swallow" | "release" | "pass";

const codeRe = /^[A-Za-z][A-Za-z0-9]{0,31}$/;

/**
 * Keys tracks the keys sent down, so that a key is sent down once (the
 * device repeats a held key itself; browser auto-repeat is swallowed) and
 * up only if it was sent down (a key pressed before the screen had focus
 * and released after is not sent).
 */
export class Keys {
  private held = new Set<string>();

  down(e: KeyLike): KeyVerdict {
    if (isEscapeHatch(e)) return "release";
    // An input method is composing, or the key has no physical code: not ours.
    if (e.isComposing || !codeRe.test(e.code) || e.code === "Unidentified") return "pass";
    if (this.held.has(e.code)) return "swallow";
    this.held.add(e.code);
    return "send";
  }

  up(e: KeyLike): KeyVerdict {
    if (e.isComposing || !codeRe.test(e.code) || e.code === "Unidentified") return "pass";
    return this.held.delete(e.code) ? "send" : "swallow";
  }

  /** clear forgets every key (after a release-all). */
  clear(): void {
    this.held.clear();
  }

  get size(): number {
    return this.held.size;
  }
}

/** Input messages, as sent on the data channel. */
export const inputMsg = {
  move: (x: number, y: number) => JSON.stringify({ t: "m", x, y }),
  button: (b: 1 | 2 | 3, down: boolean) => JSON.stringify({ t: "b", b, d: down }),
  wheel: (dx: number, dy: number) => JSON.stringify({ t: "w", dx, dy }),
  key: (code: string, down: boolean) => JSON.stringify({ t: "k", c: code, d: down }),
  release: () => JSON.stringify({ t: "r" }),
};

/** ViewState is what the session page shows. */
export type ViewState = "connecting" | "live" | "reconnecting" | "ended";

/**
 * stateForIce maps RTCPeerConnection.iceConnectionState to the page's
 * state; beenLive says whether the session was connected before (checking
 * again then means reconnecting). "closed" maps to ended.
 */
export function stateForIce(ice: string, beenLive: boolean): ViewState {
  switch (ice) {
    case "connected":
    case "completed":
      return "live";
    case "disconnected":
    case "failed":
      return "reconnecting";
    case "closed":
      return "ended";
    default: // new, checking
      return beenLive ? "reconnecting" : "connecting";
  }
}

/** Stat is one RTCStats entry, loosely typed (browsers differ in what they fill). */
export type Stat = { id: string; type: string } & Record<string, unknown>;

/** StatsView is the overlay's numbers; a field is undefined when the browser does not report it yet. */
export interface StatsView {
  fps?: number | undefined;
  /** bitrate of the received media, bits per second */
  bitrate?: number | undefined;
  /** round-trip time of the selected candidate pair, milliseconds */
  rtt?: number | undefined;
  /** codec of the video, e.g. "video/VP8" */
  codec?: string | undefined;
  /** direct: peer to peer; relay: through a TURN server (either side's selected candidate is a relay candidate) */
  path?: "direct" | "relay" | undefined;
  width?: number | undefined;
  height?: number | undefined;
  /** ICE restarts this session came through (network blips survived) */
  restarts?: number | undefined;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/**
 * StatsMeter reads getStats() once a second: frame rate (framesPerSecond,
 * else the framesDecoded delta), bitrate (bytesReceived delta), round-trip
 * time and relayed or direct path (the selected candidate pair), codec.
 */
export class StatsMeter {
  private prev: { t: number; bytes: number | undefined; frames: number | undefined } | undefined;

  update(stats: Iterable<Stat>, nowMs: number): StatsView {
    const byId = new Map<string, Stat>();
    for (const s of stats) byId.set(s.id, s);
    let inbound: Stat | undefined, pair: Stat | undefined;
    for (const s of byId.values()) {
      if (s.type === "inbound-rtp" && (s["kind"] ?? s["mediaType"]) === "video") inbound ??= s;
      if (s.type === "transport" && typeof s["selectedCandidatePairId"] === "string") pair ??= byId.get(s["selectedCandidatePairId"]);
    }
    if (!pair) {
      // Firefox marks the pair itself; else the nominated pair that works.
      for (const s of byId.values()) {
        if (s.type !== "candidate-pair") continue;
        if (s["selected"] === true) {
          pair = s;
          break;
        }
        if (s["nominated"] === true && s["state"] === "succeeded") pair ??= s;
      }
    }
    const v: StatsView = {};
    if (pair) {
      const rtt = num(pair["currentRoundTripTime"]);
      if (rtt !== undefined) v.rtt = rtt * 1000;
      const local = byId.get(str(pair["localCandidateId"]) ?? "");
      const remote = byId.get(str(pair["remoteCandidateId"]) ?? "");
      if (local || remote) v.path = local?.["candidateType"] === "relay" || remote?.["candidateType"] === "relay" ? "relay" : "direct";
    }
    const bytes = num(inbound?.["bytesReceived"]);
    const frames = num(inbound?.["framesDecoded"]);
    if (inbound) {
      v.codec = str(byId.get(str(inbound["codecId"]) ?? "")?.["mimeType"]);
      v.width = num(inbound["frameWidth"]);
      v.height = num(inbound["frameHeight"]);
      v.fps = num(inbound["framesPerSecond"]);
      const p = this.prev;
      const dt = p ? (nowMs - p.t) / 1000 : 0;
      if (p && dt > 0) {
        if (bytes !== undefined && p.bytes !== undefined && bytes >= p.bytes) v.bitrate = ((bytes - p.bytes) * 8) / dt;
        if (v.fps === undefined && frames !== undefined && p.frames !== undefined && frames >= p.frames) v.fps = (frames - p.frames) / dt;
      }
    }
    this.prev = inbound ? { t: nowMs, bytes, frames } : undefined;
    return v;
  }
}

/** fmtBitrate writes bits per second in kbit/s or Mbit/s. */
export function fmtBitrate(bps: number | undefined): string {
  if (bps === undefined) return "–";
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(bps >= 1e7 ? 0 : 1)} Mbit/s`;
  return `${Math.round(bps / 1e3)} kbit/s`;
}

/** statsLine is the overlay's text. */
export function statsLine(v: StatsView): string[] {
  return [
    `${v.codec ? v.codec.replace(/^video\//i, "") : "–"}${v.width && v.height ? ` ${v.width}×${v.height}` : ""}`,
    `${v.fps === undefined ? "–" : v.fps.toFixed(v.fps < 10 ? 1 : 0)} fps`,
    fmtBitrate(v.bitrate),
    `RTT ${v.rtt === undefined ? "–" : v.rtt < 10 ? v.rtt.toFixed(1) : v.rtt.toFixed(0)} ms`,
    v.path === "relay" ? "relayed (TURN)" : v.path === "direct" ? "direct" : "path –",
    ...(v.restarts ? [`reconnected ${v.restarts}×`] : []),
  ];
}

/** round1 rounds to one decimal (data attributes). */
export function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

// --- the control channel ----------------------------------------------------------
//
// The control channel ("control", opened by the agent) carries JSON text:
//   agent → viewer
//     {"t":"monitors","list":[{"id":0,"name":"DP-1","x":0,"y":0,"w":1920,"h":1080,"primary":true}],"current":-1}
//     {"t":"cursor","x":X,"y":Y,"visible":true}      pointer relative to the captured area
//     {"t":"cursorshape","w":W,"h":H,"hx":HX,"hy":HY,"png":"<base64 PNG>"}
//     {"t":"clipboard","text":"…"}                   the device's clipboard changed
//   viewer → agent
//     {"t":"clipboard","text":"…"}                   put text on the device's clipboard (control sessions)
//     {"t":"monitor","id":N}                         show monitor N, -1 all
// Everything from the agent is checked here; anything malformed or over a
// cap is dropped whole.

/** maxClipboardBytes is the longest clipboard text either way, in UTF-8 bytes (the agent's cap too). */
export const maxClipboardBytes = 1 << 20;
/** maxControlMessage is the longest control message accepted from the agent, in UTF-16 units (clipboard text and its JSON escaping). */
export const maxControlMessage = 8 << 20;
/** maxMonitors caps the list of monitors; maxMonitorName a name (characters). */
export const maxMonitors = 32;
export const maxMonitorName = 64;
/** maxCursorSize is the largest cursor image side (the agent sends at most 256). */
export const maxCursorSize = 256;
/** maxCursorPNG caps the base64 of a cursor image. */
export const maxCursorPNG = 512 << 10;
/** maxCoord bounds screen coordinates and sizes. */
export const maxCoord = 1 << 16;

export interface Monitor {
  id: number;
  name: string;
  x: number;
  y: number;
  w: number;
  h: number;
  primary: boolean;
}

export type ControlMsg =
  | { t: "monitors"; list: Monitor[]; current: number }
  | { t: "cursor"; x: number; y: number; visible: boolean }
  | { t: "cursorshape"; w: number; h: number; hx: number; hy: number; png: string }
  | { t: "clipboard"; text: string };

const isInt = (v: unknown, min: number, max: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
const base64Re = /^[A-Za-z0-9+/]+={0,2}$/;

/** utf8Length is the length of s in UTF-8 bytes (lone surrogates count 3, as TextEncoder writes U+FFFD). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** capText cuts s to at most max UTF-8 bytes at a character boundary; cut says whether it did. */
export function capText(s: string, max = maxClipboardBytes): { text: string; cut: boolean } {
  if (s.length <= max / 3 || utf8Length(s) <= max) return { text: s, cut: false };
  let n = 0, i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    const w = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
    if (n + w > max) break;
    n += w;
    if (pair) i++;
  }
  return { text: s.slice(0, i), cut: true };
}

/** preview is text for display: at most max characters (whole code points), "…" when cut. */
export function preview(s: string, max = 200): string {
  const head = s.slice(0, max * 2 + 2);
  const cps = Array.from(head);
  if (cps.length <= max && head.length === s.length) return s;
  return cps.slice(0, max).join("") + "…";
}

/** parseControl checks one message from the agent; undefined for anything malformed, oversized or unknown. */
export function parseControl(data: unknown): ControlMsg | undefined {
  if (typeof data !== "string" || data.length > maxControlMessage) return undefined;
  let m: unknown;
  try {
    m = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (!m || typeof m !== "object" || Array.isArray(m)) return undefined;
  const o = m as Record<string, unknown>;
  switch (o["t"]) {
    case "monitors": {
      const list = o["list"], current = o["current"];
      if (!Array.isArray(list) || list.length > maxMonitors || !isInt(current, -1, maxCoord)) return undefined;
      const out: Monitor[] = [];
      const ids = new Set<number>();
      for (const e of list as unknown[]) {
        if (!e || typeof e !== "object") return undefined;
        const r = e as Record<string, unknown>;
        const { id, name, x, y, w, h, primary } = r;
        if (!isInt(id, 0, maxCoord) || ids.has(id) || typeof name !== "string" || !isInt(x, -maxCoord, maxCoord) || !isInt(y, -maxCoord, maxCoord) ||
          !isInt(w, 1, maxCoord) || !isInt(h, 1, maxCoord) || (primary !== undefined && typeof primary !== "boolean")) return undefined;
        ids.add(id);
        out.push({ id, name: preview(name, maxMonitorName), x, y, w, h, primary: primary === true });
      }
      return { t: "monitors", list: out, current: current === -1 || ids.has(current) ? current : -1 };
    }
    case "cursor": {
      const { x, y, visible } = o;
      if (!isInt(x, -maxCoord, maxCoord) || !isInt(y, -maxCoord, maxCoord) || typeof visible !== "boolean") return undefined;
      return { t: "cursor", x, y, visible };
    }
    case "cursorshape": {
      const { w, h, hx, hy, png } = o;
      if (!isInt(w, 1, maxCursorSize) || !isInt(h, 1, maxCursorSize) || !isInt(hx, 0, w - 1) || !isInt(hy, 0, h - 1)) return undefined;
      if (typeof png !== "string" || png.length > maxCursorPNG || png.length % 4 !== 0 || !base64Re.test(png)) return undefined;
      return { t: "cursorshape", w, h, hx, hy, png };
    }
    case "clipboard": {
      const text = o["text"];
      if (typeof text !== "string" || utf8Length(text) > maxClipboardBytes) return undefined;
      return { t: "clipboard", text };
    }
  }
  return undefined;
}

/** Control messages, as sent on the control channel. clipboard cuts the text to maxClipboardBytes. */
export const controlMsg = {
  clipboard: (text: string) => JSON.stringify({ t: "clipboard", text: capText(text).text }),
  monitor: (id: number) => JSON.stringify({ t: "monitor", id }),
};

/** monitorLabel is a monitor's entry in the picker, e.g. "DP-1 (1920×1080, primary)". */
export function monitorLabel(m: Monitor): string {
  return `${m.name || `Monitor ${m.id + 1}`} (${m.w}×${m.h}${m.primary ? ", primary" : ""})`;
}

/** CursorPlace is where the cursor image goes: its top-left corner in the element box's coordinates, and its scale. */
export interface CursorPlace {
  left: number;
  top: number;
  scale: number;
}

/**
 * cursorPlace is the inverse of toScreen for the remote cursor: pixel x,y
 * of the captured area (aw×ah device pixels, shown as the vw×vh video),
 * drawn in an element box (only its width and height count; the result is
 * relative to its top-left corner) with the image's hot spot hx,hy on that
 * pixel. The image is scaled like the picture. Undefined without a
 * picture, or when the pixel is off it.
 */
export function cursorPlace(x: number, y: number, hx: number, hy: number, box: Box, vw: number, vh: number, aw = vw, ah = vh): CursorPlace | undefined {
  const pic = pictureBox({ left: 0, top: 0, width: box.width, height: box.height }, vw, vh);
  if (!pic || !(aw > 0 && ah > 0) || x < 0 || y < 0 || x >= aw || y >= ah) return undefined;
  const sx = pic.width / aw, sy = pic.height / ah;
  return { left: pic.left + (x - hx) * sx, top: pic.top + (y - hy) * sy, scale: sx };
}

/** isPasteKey: the key that pastes (Ctrl+V, ⌘V), whose clipboard goes to the device before the key. */
export function isPasteKey(e: KeyLike): boolean {
  return e.code === "KeyV" && (e.ctrlKey || e.metaKey === true) && !e.altKey;
}
