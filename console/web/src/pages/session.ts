// The remote-desktop viewer (#/devices/<id>/session; ?control=1 to send
// input, &relay=1 to force the media through TURN, &monitor=N for one
// monitor, &ticket=DS-XXXX for the ticket the consent prompt names). StartDesktopSession stays open for the session's life: first
// Started (session id, ICE servers, relay-only), then the agent's offer and
// ICE candidates, finally Ended; aborting the call ends the session on the
// agent. The browser answers (SendDesktopSignal) and trickles its own
// candidates the same way. Video arrives on one track, shown muted (so it
// may autoplay); input goes back on the agent's "input" data channel, and
// only while the screen has keyboard focus (click it; Ctrl+Alt+Shift+Esc
// gives the keyboard back). Losing focus or hiding the page releases every
// key and button held on the device. The agent's "control" data channel
// carries its monitors (the picker), the remote cursor (drawn over the
// video) and, in control sessions, the clipboard both ways.
//
// Each attempt makes its own DTLS certificate first and names its
// fingerprint in the request and in the signed DesktopOperation (when this
// browser has a certified key): a device that pins the organisation key
// completes the session only with an answer carrying that fingerprint, so
// nobody but this page can take the session the technician signed for.
//
// Opened from a ticket (?ticket=DS-7K3Q, the ticket page's "Remote
// session"), the viewer keeps that ticket's chat with the requester below
// the screen (chat.ts), and the session is linked back with Link on the
// ticket page.

import { create } from "@bufbuild/protobuf";
import { checkSession, client, Code, ConnectError, explain, isCanceled } from "../api";
import { watchChat } from "../chat";
import {
  Keys, StatsMeter, WheelAxis, capText, controlMsg, cursorPlace, escapeHatch, inputMsg, isPasteKey, maxClipboardBytes, monitorLabel, parseControl, preview,
  remoteButton, round1, sdpFingerprint, stateForIce, statsLine, toScreen, type ControlMsg, type Monitor, type Stat, type StatsView, type ViewState,
} from "../desktop";
import { h, replace, setText, uid } from "../dom";
import { Role, type DesktopStarted } from "../gen/deskside/v1/console_pb";
import { DesktopPolicyMode, type DesktopSignal } from "../gen/deskside/v1/desktop_pb";
import { DesktopOperationSchema } from "../gen/deskside/v1/envelope_pb";
import { signingHint, type Page, type Session } from "../page";
import { envelopeHeaders } from "../signing";
import { normalizeCode } from "../ticketfmt";

/** lostAfterMs: a connection that stays down this long after a network blip is given up. */
export const lostAfterMs = 20_000;

type SignalBody = DesktopSignal["signal"];
type EndKind = "user" | "device" | "error" | "lost" | "left";

/** One attempt: a StartDesktopSession call and its peer connection. */
interface Attempt {
  ac: AbortController;
  ended: boolean;
  sessionId: string;
  /** cert is this attempt's DTLS certificate, whose fingerprint the request names. */
  cert?: RTCCertificate | undefined;
  pc?: RTCPeerConnection | undefined;
  dc?: RTCDataChannel | undefined;
  /** ctl is the agent's "control" channel (monitors, cursor, clipboard). */
  ctl?: RTCDataChannel | undefined;
  beenLive: boolean;
  /** waitingOffer: started, no offer yet (the user may be answering). */
  waitingOffer?: boolean;
  /** restarts counts the agent's ICE restarts (offers after the first). */
  restarts: number;
  remoteSet: boolean;
  answered: boolean;
  remoteCandidates: RTCIceCandidateInit[];
  localCandidates: string[];
  sends: Promise<void>;
  lostTimer?: ReturnType<typeof setTimeout> | undefined;
  statsTimer?: ReturnType<typeof setInterval> | undefined;
  meter: StatsMeter;
  busyRetries: number;
}

/**
 * A session this tab ends is gone from the relay and the agent a moment
 * later, not at once: starting another right away (Reconnect, or another
 * session page of the same device) can be refused as busy, by the relay
 * (ResourceExhausted, max sessions) or by the agent (another session
 * running). Such a refusal within busyWindowMs of our own session's end
 * is retried a few times (500 ms, 1 s, 1.5 s, 2 s apart); any other is
 * shown at once.
 */
const busyRe = /another remote session is already running/i;
const busyRetryMax = 4;
const busyRetryMs = 500;
const busyWindowMs = 5000;
/** lastEnded is when a session of each device ended in this tab (performance.now()). */
const lastEnded = new Map<string, number>();

/** sessionPage builds the viewer of device id; query "control=1" asks for control. */
export function sessionPage(session: Session, id: string, query: string): Page {
  const life = new AbortController();
  const params = new URLSearchParams(query);
  const control = params.get("control") === "1";
  // relay=1 forces the media through the relay's TURN server; monitor=N
  // shows one monitor (default -1: the whole screen).
  const relayOnly = params.get("relay") === "1";
  const monitor = /^-?\d{1,2}$/.test(params.get("monitor") ?? "") ? Number(params.get("monitor")) : -1;
  // ticket names the ticket the session is for: the device's user sees it
  // in the consent prompt.
  const ticketCode = (params.get("ticket") ?? "").slice(0, 32);
  const mayControl = session.me.role >= Role.TIER2;
  // The ticket the session is for, when opened from one: its chat shows.
  const ticket = normalizeCode(params.get("ticket") ?? "") ?? "";
  const ticketQ = ticket ? `&ticket=${encodeURIComponent(ticket)}` : "";
  const chat = ticket ? watchChat(ticket, life.signal) : undefined;
  const deviceHref = `#/devices/${encodeURIComponent(id)}`;
  let cur: Attempt | undefined;
  let deviceName = id;
  // Whether the device asks its user first (attended, or its own policy
  // always asks): the wait for the offer is then the user's answer.
  let asksUser = false;
  const offerWait = (): string => asksUser
    ? "Waiting for the device's user to allow the session (no answer within 30 s denies)…"
    : "Waiting for the device to offer its screen…";

  // --- elements ---------------------------------------------------------------
  const title = h("h1", { class: "device-title clip" }, control ? "Remote control" : "Remote view");
  const crumb = h("a", { href: deviceHref }, "← Device");
  const pill = h("span", { class: "session-pill" });
  const stateMsg = h("span", { class: "session-msg" });
  const stateEl = h("div", { class: "session-state", role: "status", "aria-live": "polite", data: { testid: "session-state", state: "connecting" } }, pill, stateMsg);
  const help = h("div", { class: "session-help" });

  const scaleBtn = h("button", { type: "button", class: "btn btn-small", "aria-pressed": "false", data: { testid: "session-scale", scale: "fit" }, title: "Show the screen at its real size (scroll to see all of it)" }, "1:1");
  const statsBtn = h("button", { type: "button", class: "btn btn-small", "aria-pressed": "false", data: { testid: "session-stats-toggle" } }, "Stats");
  const fullBtn = h("button", { type: "button", class: "btn btn-small", data: { testid: "session-fullscreen" }, title: "Full screen (Esc leaves it)" }, "Full screen");
  const endBtn = h("button", { type: "button", class: "btn btn-danger btn-small", data: { testid: "session-end" } }, "End session");
  const reconnectBtn = h("button", { type: "button", class: "btn btn-primary btn-small", hidden: true, data: { testid: "session-reconnect" } }, "Reconnect");
  if (!document.fullscreenEnabled) fullBtn.hidden = true;
  const monitorSel = h("select", { class: "session-monitor", hidden: true, "aria-label": "Screen to show", title: "Screen to show", data: { testid: "session-monitor" } });
  const sendClipBtn = h("button", { type: "button", class: "btn btn-small", hidden: !control, disabled: true, data: { testid: "session-clipboard-send" }, title: "Put text from this computer's clipboard on the device's clipboard (Ctrl+V on the screen does it too)" }, "Send clipboard…");
  const copyClipBtn = h("button", { type: "button", class: "btn btn-small", hidden: true, data: { testid: "session-clipboard-copy" } }, "Copy remote clipboard");
  const clipText = h("span", { class: "session-clip-text", data: { testid: "session-clipboard-remote" } });
  const clipNote = h("span", { class: "session-clip-note", role: "status", "aria-live": "polite" });
  const clipBar = h("div", { class: "session-clip", hidden: true }, h("span", { class: "session-clip-label" }, "Device clipboard:"), clipText, copyClipBtn, clipNote);
  const cursorImg = h("img", { class: "session-cursor", alt: "", hidden: true, draggable: "false", "aria-hidden": "true", data: { testid: "session-cursor" } });

  const video = h("video", { class: "session-video", autoplay: true, muted: true, playsinline: true, disablepictureinpicture: true, data: { testid: "session-video" } });
  video.muted = true; // the attribute alone does not mute an element made by script; muted video may autoplay
  const waiting = h("p", { class: "session-waiting" }, "Waiting for the picture…");
  const statsLines = h("div", { class: "session-stats-lines" });
  const statsEl = h("div", { class: "session-stats", hidden: true, "aria-label": "Connection statistics", data: { testid: "session-stats", fps: "", bitrate: "", rtt: "", codec: "", path: "", restarts: "0" } }, statsLines);
  const captured = h("p", { class: "session-captured", "aria-hidden": "true" }, `Keyboard and mouse go to the device · ${escapeHatch} releases`);
  const stage = h("div", {
    class: "session-stage", data: { testid: "session-screen", scale: "fit" }, role: "application",
    "aria-roledescription": "remote screen",
    "aria-label": control ? `Remote screen: click or focus to control it; ${escapeHatch} gives the keyboard back` : "Remote screen, view only",
    tabindex: control ? "0" : undefined,
  }, h("div", { class: "session-scroll" }, video, cursorImg), waiting, statsEl, captured);
  if (control) stage.classList.add("is-control");

  const el = h("div", { class: "page page-session" },
    h("p", { class: "crumbs" }, crumb),
    h("div", { class: "page-head session-head" },
      h("div", { class: "session-title" }, title, h("span", { class: `session-mode ${control ? "mode-control" : "mode-view"}` }, control ? "Control" : "View only")),
      h("div", { class: "page-actions session-actions" }, monitorSel, sendClipBtn, scaleBtn, statsBtn, fullBtn, reconnectBtn, endBtn),
    ),
    stateEl,
    clipBar,
    stage,
    help,
    chat ? h("div", { class: "session-chat", data: { testid: "session-chat" } },
      h("p", { class: "muted" }, "For ticket ", h("a", { href: `#/tickets/${encodeURIComponent(ticket)}`, data: { testid: "session-ticket" } }, ticket), "."),
      chat.el) : null,
  );

  replace(help, control
    ? h("p", { class: "hint" }, "Click the screen to control the device: the mouse, the wheel and every key (browser shortcuts included) then go to it. ",
      h("kbd", null, escapeHatch), " gives the keyboard back to the browser; leaving the window or the page releases any key or button held on the device.")
    : h("p", { class: "hint" }, "View only: your mouse and keyboard are not sent to the device. ",
      mayControl ? h("a", { href: `${deviceHref}/session?control=1${relayOnly ? "&relay=1" : ""}${monitor >= 0 ? `&monitor=${monitor}` : ""}${ticketQ}` }, "Take control") : null, mayControl ? " starts a new session with control." : null));

  // --- state -----------------------------------------------------------------
  const pillText: Record<ViewState, string> = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", ended: "Ended" };
  function setState(st: ViewState, msg: string | Node, end?: EndKind): void {
    stateEl.dataset["state"] = st;
    if (end) stateEl.dataset["end"] = end;
    else delete stateEl.dataset["end"];
    stateEl.setAttribute("role", end === "error" || end === "lost" ? "alert" : "status");
    stateEl.className = `session-state state-${st}${end ? " end-" + end : ""}`;
    setText(pill, pillText[st]);
    replace(stateMsg, msg);
    endBtn.hidden = st === "ended";
    reconnectBtn.hidden = st !== "ended";
    setText(reconnectBtn, end === "lost" ? "Reconnect" : end === "error" ? "Try again" : "Start a new session");
    stage.classList.toggle("is-ended", st === "ended");
  }

  // --- signaling ---------------------------------------------------------------
  function send(a: Attempt, body: SignalBody): Promise<void> {
    // One at a time, in order: the agent must get the answer before candidates.
    const p = a.sends.then(async () => {
      if (a.ended) return;
      await client.sendDesktopSignal({ signal: { sessionId: a.sessionId, signal: body } }, { signal: a.ac.signal });
    });
    a.sends = p.catch(() => {});
    return p;
  }

  function sendCandidate(a: Attempt, json: string): void {
    send(a, { case: "candidate", value: json }).catch((err) => {
      // The session may have ended meanwhile (the stream says why);
      // a lost candidate alone is not fatal.
      if (!a.ended && !isCanceled(err)) checkSession(err);
    });
  }

  function onStarted(a: Attempt, st: DesktopStarted): void {
    a.sessionId = st.session?.sessionId ?? "";
    const iceServers: RTCIceServer[] = st.iceServers.map((s) => ({
      urls: [...s.urls], ...(s.username ? { username: s.username } : {}), ...(s.credential ? { credential: s.credential } : {}),
    }));
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: st.relayOnly ? "relay" : "all", certificates: a.cert ? [a.cert] : [] });
    a.pc = pc;
    pc.addEventListener("icecandidate", (e) => {
      if (!e.candidate || a.ended) return; // null: gathering is complete
      const json = JSON.stringify(e.candidate.toJSON());
      if (a.answered) sendCandidate(a, json);
      else a.localCandidates.push(json);
    });
    pc.addEventListener("track", (e) => {
      if (a.ended || e.track.kind !== "video") return;
      video.srcObject = e.streams[0] ?? new MediaStream([e.track]);
      video.play().catch(() => {}); // autoplay does it too; muted, so no policy stops it
    });
    pc.addEventListener("datachannel", (e) => {
      if (e.channel.label === "control") {
        onControlChannel(a, e.channel);
        return;
      }
      if (e.channel.label !== "input") return;
      a.dc = e.channel;
      e.channel.addEventListener("close", () => {
        if (a.dc === e.channel) a.dc = undefined;
      });
    });
    pc.addEventListener("iceconnectionstatechange", () => onIce(a));
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") onIce(a);
    });
    // Renegotiation from this side (restartIce) would need an offer from
    // the viewer, which the relay does not carry: nothing to do here.
    pc.addEventListener("negotiationneeded", () => {});
    a.statsTimer = setInterval(() => void readStats(a), 1000);
    a.waitingOffer = true;
    setState("connecting", offerWait());
  }

  async function onSignal(a: Attempt, sig: DesktopSignal): Promise<void> {
    const pc = a.pc;
    if (!pc) return;
    const s = sig.signal;
    if (s.case === "offer") {
      a.waitingOffer = false;
      // An offer after the first is the agent restarting ICE after a
      // network blip: the same session, answered the same way.
      if (a.remoteSet) a.restarts++;
      try {
        await pc.setRemoteDescription({ type: "offer", sdp: s.value });
        a.remoteSet = true;
        for (const c of a.remoteCandidates.splice(0)) await pc.addIceCandidate(c).catch(() => {});
        await pc.setLocalDescription(await pc.createAnswer());
      } catch (err) {
        finish(a, `This browser could not use the device's offer (${err instanceof Error ? err.message : String(err)}). Reload the page and try again, or use an up-to-date Chrome, Edge or Firefox.`, "error");
        return;
      }
      if (a.ended) return;
      setState(a.beenLive ? "reconnecting" : "connecting", "Connecting to the device…");
      try {
        await send(a, { case: "answer", value: pc.localDescription?.sdp ?? "" });
      } catch (err) {
        if (a.ended || isCanceled(err)) return;
        checkSession(err);
        finish(a, "Could not answer the device: " + explain(err), "error");
        return;
      }
      a.answered = true;
      for (const c of a.localCandidates.splice(0)) sendCandidate(a, c);
    } else if (s.case === "candidate") {
      let init: RTCIceCandidateInit;
      try {
        init = JSON.parse(s.value) as RTCIceCandidateInit;
      } catch {
        return; // not a candidate: ignore it
      }
      if (!init || typeof init !== "object") return;
      if (!a.remoteSet) a.remoteCandidates.push(init);
      else await pc.addIceCandidate(init).catch(() => {});
    }
  }

  function onIce(a: Attempt): void {
    const pc = a.pc;
    if (!pc || a.ended || cur !== a) return;
    const ice = pc.connectionState === "failed" ? "failed" : pc.iceConnectionState;
    const st = stateForIce(ice, a.beenLive);
    if (st === "live") {
      a.beenLive = true;
      clearTimeout(a.lostTimer);
      a.lostTimer = undefined;
      setState("live", control ? "Connected: click the screen to control it." : "Connected (view only).");
      return;
    }
    if (st === "reconnecting") {
      releaseInput();
      if (ice === "failed") {
        // An ICE restart needs the agent to renegotiate; if it cannot, the
        // timer below gives up.
        try {
          pc.restartIce();
        } catch {
          // not supported: the timer decides
        }
      }
      setState("reconnecting", ice === "failed" ? "The connection failed: trying to restore it…" : "The network connection was interrupted: reconnecting…");
      a.lostTimer ??= setTimeout(() => finish(a,
        `Connection lost: the network path to the device did not come back within ${lostAfterMs / 1000} s. Check this computer's network, then reconnect.`, "lost"), lostAfterMs);
    }
  }

  async function readStats(a: Attempt): Promise<void> {
    const pc = a.pc;
    if (!pc || a.ended) return;
    let report: RTCStatsReport;
    try {
      report = await pc.getStats();
    } catch {
      return;
    }
    if (a.ended) return;
    showStats({ ...a.meter.update(report.values() as IterableIterator<Stat>, performance.now()), restarts: a.restarts });
  }

  function showStats(v: StatsView): void {
    const d = statsEl.dataset;
    d["fps"] = v.fps === undefined ? "" : String(round1(v.fps));
    d["bitrate"] = v.bitrate === undefined ? "" : String(Math.round(v.bitrate));
    d["rtt"] = v.rtt === undefined ? "" : String(round1(v.rtt));
    d["codec"] = v.codec ?? "";
    d["path"] = v.path ?? "";
    d["restarts"] = String(v.restarts ?? 0);
    replace(statsLines, statsLine(v).map((l) => h("span", null, l)));
  }

  // --- the session ---------------------------------------------------------------
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  /** start starts a session; busyRetries counts the tries the device refused as busy. */
  function start(busyRetries = 0): void {
    clearTimeout(retryTimer);
    if (cur && !cur.ended) finish(cur, "", "left");
    const a: Attempt = {
      ac: new AbortController(), ended: false, sessionId: "", beenLive: false, restarts: 0, remoteSet: false, answered: false,
      remoteCandidates: [], localCandidates: [], sends: Promise.resolve(), meter: new StatsMeter(), busyRetries,
    };
    cur = a;
    video.srcObject = null;
    waiting.hidden = false;
    setText(waiting, "Waiting for the picture (the device’s user may be asked to allow the session first)…");
    showStats({});
    setState("connecting", "Asking the relay for a session…");
    void run(a);
  }

  async function run(a: Attempt): Promise<void> {
    const signal = AbortSignal.any([life.signal, a.ac.signal]);
    try {
      // The DTLS certificate first: its fingerprint is part of the request
      // and of what the technician signs.
      a.cert = await RTCPeerConnection.generateCertificate({ name: "ECDSA", namedCurve: "P-256" } as EcKeyGenParams);
      const viewerFingerprint = sdpFingerprint(a.cert.getFingerprints()) ?? "";
      const desktop = create(DesktopOperationSchema, { control, monitor: shownMonitor, viewerFingerprint, ticketCode });
      const headers = await envelopeHeaders({ case: "desktop", value: desktop }, [id]);
      if (a.ended || signal.aborted) return;
      for await (const ev of client.startDesktopSession({ deviceId: id, control, relayOnly, monitor: shownMonitor, viewerFingerprint, ticketCode }, { signal, headers })) {
        if (a.ended) return;
        switch (ev.event.case) {
          case "started":
            onStarted(a, ev.event.value);
            break;
          case "signal":
            await onSignal(a, ev.event.value);
            break;
          case "ended": {
            const why = ev.event.value.reason.trim();
            if (!a.beenLive && busyRe.test(why) && retryBusy(a)) return;
            finish(a, why ? h("span", null, `The device ended the session: ${why}.`, signingHint(why)) : "The device ended the session.", "device");
            return;
          }
        }
      }
      finish(a, "The relay closed the session.", "device");
    } catch (err) {
      if (a.ended || life.signal.aborted) return;
      checkSession(err);
      if (ConnectError.from(err).code === Code.ResourceExhausted && retryBusy(a)) return;
      finish(a, explainStart(err), "error");
    }
  }

  /** retryBusy starts attempt a again shortly if its busy refusal is likely our own previous session still closing. */
  function retryBusy(a: Attempt): boolean {
    const ended = lastEnded.get(id);
    const ours = a.busyRetries > 0 || (ended !== undefined && performance.now() - ended < busyWindowMs);
    if (!ours || a.busyRetries >= busyRetryMax) return false;
    finish(a, "", "left");
    setText(waiting, "Waiting for the picture…");
    setState("connecting", "The previous session is still closing: trying again…");
    retryTimer = setTimeout(() => start(a.busyRetries + 1), busyRetryMs * (a.busyRetries + 1));
    return true;
  }

  function explainStart(err: unknown): Node {
    const ce = ConnectError.from(err);
    if (ce.code === Code.Unavailable && /\bdevice\b/i.test(ce.rawMessage)) {
      // The relay is fine; the agent's link went away.
      return document.createTextNode(`The device went away: ${ce.rawMessage.trim()}. Check that it is online (its page shows it), then try again.`);
    }
    const msg = explain(err);
    const hint = signingHint(msg);
    if (hint) return h("span", null, msg, hint);
    // The relay refuses devices whose policy wants the user's consent; an
    // admin can change the policy on the device page.
    if (/consent/i.test(msg) && session.me.role === Role.ADMIN) {
      return h("span", null, msg, " ", h("a", { href: deviceHref }, "Open the device's remote access policy"), ".");
    }
    return document.createTextNode(msg);
  }

  /** finish ends attempt a: the call (the relay then ends the agent's side), the peer connection, the timers. */
  function finish(a: Attempt, msg: string | Node, kind: EndKind): void {
    if (a.ended) return;
    a.ended = true;
    a.waitingOffer = false;
    if (a.sessionId) lastEnded.set(id, performance.now());
    clearTimeout(a.lostTimer);
    clearInterval(a.statsTimer);
    if (cur === a) releaseInput();
    a.ac.abort();
    a.dc = undefined;
    a.ctl = undefined;
    if (cur === a) controlGone();
    a.pc?.close();
    if (cur !== a) return;
    video.srcObject = null;
    waiting.hidden = false;
    setText(waiting, "No picture: the session has ended.");
    if (stage.contains(document.activeElement)) stage.blur();
    if (kind !== "left") setState("ended", msg, kind);
  }

  endBtn.addEventListener("click", () => {
    clearTimeout(retryTimer);
    if (cur && !cur.ended) finish(cur, "You ended the session.", "user");
    else setState("ended", "You ended the session.", "user"); // between two tries
  });
  reconnectBtn.addEventListener("click", () => start());

  // --- view ------------------------------------------------------------------------
  scaleBtn.addEventListener("click", () => {
    const actual = stage.dataset["scale"] !== "1:1";
    stage.dataset["scale"] = actual ? "1:1" : "fit";
    scaleBtn.dataset["scale"] = stage.dataset["scale"];
    scaleBtn.setAttribute("aria-pressed", String(actual));
    setText(scaleBtn, actual ? "Fit" : "1:1");
    scaleBtn.title = actual ? "Scale the screen to fit the window" : "Show the screen at its real size (scroll to see all of it)";
    placeCursor();
  });
  statsBtn.addEventListener("click", () => {
    statsEl.hidden = !statsEl.hidden;
    statsBtn.setAttribute("aria-pressed", String(!statsEl.hidden));
  });
  fullBtn.addEventListener("click", () => {
    if (document.fullscreenElement) void document.exitFullscreen().catch(() => {});
    else void stage.requestFullscreen().then(() => control && stage.focus(), () => {});
  });
  const shown = () => {
    waiting.hidden = true;
  };
  video.addEventListener("loadeddata", shown);
  video.addEventListener("resize", shown);

  // --- control channel: monitors, remote cursor, clipboard --------------------------
  let shape: { w: number; h: number; hx: number; hy: number } | undefined;
  let pointerAt: { x: number; y: number; visible: boolean } | undefined;
  let remoteClip: string | undefined;
  let shownMonitor = monitor;

  function onControlChannel(a: Attempt, ch: RTCDataChannel): void {
    a.ctl = ch;
    const opened = () => {
      if (cur === a && !a.ended) sendClipBtn.disabled = false;
    };
    ch.addEventListener("open", opened);
    if (ch.readyState === "open") opened();
    ch.addEventListener("message", (e) => {
      if (a.ended || cur !== a) return;
      const m = parseControl(e.data);
      if (m) onControl(m);
    });
    ch.addEventListener("close", () => {
      if (a.ctl !== ch) return;
      a.ctl = undefined;
      if (cur === a) controlGone();
    });
  }

  /** controlGone resets what the control channel showed (the channel closed or the session ended). */
  function controlGone(): void {
    sendClipBtn.disabled = true;
    monitorSel.disabled = true;
    pointerAt = undefined;
    hideCursor();
  }

  function sendControl(m: string): boolean {
    const a = cur, ch = a?.ctl;
    if (!a || !ch || ch.readyState !== "open") return false;
    // The agent takes at most 2 MiB, the SCTP transport maxMessageSize.
    const max = Math.min(2 << 20, a.pc?.sctp?.maxMessageSize || Infinity);
    if (new TextEncoder().encode(m).length > max) return false;
    try {
      ch.send(m);
      return true;
    } catch {
      return false;
    }
  }

  function onControl(m: ControlMsg): void {
    switch (m.t) {
      case "monitors":
        showMonitors(m);
        return;
      case "cursor":
        pointerAt = m;
        placeCursor();
        return;
      case "cursorshape":
        shape = m;
        cursorImg.src = `data:image/png;base64,${m.png}`; // checked base64: a PNG or a broken image, never a URL of the agent's choosing
        cursorImg.style.width = `${m.w}px`;
        cursorImg.style.height = `${m.h}px`;
        placeCursor();
        return;
      case "clipboard":
        onRemoteClipboard(m.text);
        return;
    }
  }

  /** placeCursor draws the remote pointer over the picture, mapped like input is (fit or 1:1). */
  function placeCursor(): void {
    const c = pointerAt, sh = shape;
    if (!c || !sh || !c.visible || !cur || cur.ended) {
      hideCursor();
      return;
    }
    const p = cursorPlace(c.x, c.y, sh.hx, sh.hy, { left: 0, top: 0, width: video.clientWidth, height: video.clientHeight }, video.videoWidth, video.videoHeight);
    if (!p) {
      hideCursor();
      return;
    }
    cursorImg.style.transform = `translate(${video.offsetLeft + p.left}px, ${video.offsetTop + p.top}px) scale(${p.scale})`;
    cursorImg.hidden = false;
    // The technician's own pointer would hide the device's: only one shows.
    stage.classList.toggle("has-remote-cursor", control);
  }

  function hideCursor(): void {
    cursorImg.hidden = true;
    stage.classList.remove("has-remote-cursor");
  }

  const resized = new ResizeObserver(() => placeCursor());
  resized.observe(video);
  video.addEventListener("resize", placeCursor);

  function showMonitors(m: { list: Monitor[]; current: number }): void {
    replace(monitorSel, h("option", { value: "-1" }, "All screens"), m.list.map((mon) => h("option", { value: String(mon.id) }, monitorLabel(mon))));
    monitorSel.value = String(m.current);
    monitorSel.dataset["current"] = String(m.current);
    monitorSel.hidden = false;
    monitorSel.disabled = false;
    shownMonitor = m.current;
  }

  monitorSel.addEventListener("change", () => {
    const id = Number(monitorSel.value);
    if (!sendControl(controlMsg.monitor(id))) monitorSel.value = String(shownMonitor);
    // The agent answers with "monitors" and the new current one.
  });

  // Clipboard (control sessions; the agent sends its clipboard only then).
  const clipFlat = (t: string) => t.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]+/g, " ");

  function onRemoteClipboard(text: string): void {
    remoteClip = text;
    clipBar.hidden = false;
    setText(clipText, preview(clipFlat(text), 120));
    clipText.dataset["length"] = String(text.length);
    setText(clipNote, "");
    copyClipBtn.hidden = true;
    if (!document.hasFocus() || !navigator.clipboard?.writeText) {
      copyClipBtn.hidden = false;
      return;
    }
    navigator.clipboard.writeText(text).then(() => {
      if (remoteClip === text) setText(clipNote, "Copied to this computer's clipboard.");
    }, () => {
      if (remoteClip === text) copyClipBtn.hidden = false;
    });
  }

  copyClipBtn.addEventListener("click", () => {
    const text = remoteClip;
    if (text === undefined) return;
    const fallback = () => clipDialog("copy", text);
    if (!navigator.clipboard?.writeText) return fallback();
    navigator.clipboard.writeText(text).then(() => {
      copyClipBtn.hidden = true;
      setText(clipNote, "Copied to this computer's clipboard.");
    }, fallback);
  });

  /** sendClipboard puts text (cut to 1 MiB) on the device's clipboard. */
  function sendClipboard(text: string): boolean {
    if (!control) return false;
    const { text: t, cut } = capText(text);
    clipBar.hidden = false;
    if (!sendControl(controlMsg.clipboard(t))) {
      setText(clipNote, "Your clipboard was not sent: the session is not connected, or the text is too large for the connection.");
      return false;
    }
    setText(clipNote, cut ? `Sent the first ${maxClipboardBytes >> 20} MiB of your clipboard to the device.` : "Sent your clipboard to the device.");
    return true;
  }

  sendClipBtn.addEventListener("click", () => {
    if (!navigator.clipboard?.readText) return clipDialog("send");
    navigator.clipboard.readText().then((t) => {
      if (t) sendClipboard(t);
      else clipDialog("send");
    }, () => clipDialog("send"));
  });

  /** clipDialog: paste text to send when the browser does not let us read the clipboard, or select the device's text to copy it. */
  function clipDialog(kind: "send" | "copy", text = ""): void {
    const titleID = uid("clip-title");
    const area = h("textarea", { class: "session-clip-area", rows: "8", "aria-labelledby": titleID, readonly: kind === "copy", data: { testid: `session-clipboard-${kind}-text` } });
    area.value = text;
    const close = h("button", { type: "button", class: "btn" }, kind === "send" ? "Cancel" : "Close");
    const ok = kind === "send" ? h("button", { type: "submit", class: "btn btn-primary", data: { testid: "session-clipboard-send-submit" } }, "Send to the device") : null;
    const form = h("form", { class: "dialog-body", method: "dialog" },
      h("h2", { id: titleID }, kind === "send" ? "Send text to the device's clipboard" : "The device's clipboard"),
      h("p", { class: "hint" }, kind === "send"
        ? "The browser did not let the page read your clipboard: paste the text here (Ctrl+V)."
        : "The browser did not let the page write your clipboard: the text is selected, copy it (Ctrl+C)."),
      area,
      h("div", { class: "dialog-actions" }, close, ok),
    );
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleID, data: { testid: "session-clipboard-dialog" } }, form);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (kind === "send" && area.value) sendClipboard(area.value);
      dialog.close();
    });
    close.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => dialog.remove());
    life.signal.addEventListener("abort", () => dialog.open && dialog.close(), { once: true });
    document.body.append(dialog);
    dialog.showModal();
    area.focus();
    if (kind === "copy") area.select();
  }

  // --- input ---------------------------------------------------------------------
  const keys = new Keys();
  const wheelX = new WheelAxis(), wheelY = new WheelAxis();
  const buttons = new Set<number>();
  let pendingMove: { x: number; y: number } | undefined;
  let lastMove: { x: number; y: number } | undefined;
  let frame = 0;
  /** pasteTimer: Ctrl+V is down and waits for its paste event (the clipboard goes to the device before the key). */
  let pasteTimer: ReturnType<typeof setTimeout> | undefined;

  const focused = () => document.activeElement === stage;
  const sendInput = (m: string): boolean => {
    const dc = cur?.dc;
    if (!control || !dc || dc.readyState !== "open") return false;
    try {
      dc.send(m);
      return true;
    } catch {
      return false;
    }
  };
  const point = (e: MouseEvent) => toScreen(e.clientX, e.clientY, video.getBoundingClientRect(), video.videoWidth, video.videoHeight);
  const flushMove = () => {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    const p = pendingMove;
    pendingMove = undefined;
    if (!p || (lastMove && lastMove.x === p.x && lastMove.y === p.y)) return;
    if (sendInput(inputMsg.move(p.x, p.y))) lastMove = p;
  };

  /**
   * releaseInput lets go of every key and button held on the device. always:
   * tell the device even if nothing seems held (a key released while the
   * window was in the background never reached us).
   */
  function releaseInput(always = false): void {
    pendingMove = undefined;
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    wheelX.reset();
    wheelY.reset();
    clearTimeout(pasteTimer);
    pasteTimer = undefined;
    if (always || keys.size || buttons.size) sendInput(inputMsg.release());
    keys.clear();
    buttons.clear();
  }

  /** pasteKeyDown sends the V of a Ctrl+V held back for its paste event. */
  function pasteKeyDown(): void {
    if (pasteTimer === undefined) return;
    clearTimeout(pasteTimer);
    pasteTimer = undefined;
    sendInput(inputMsg.key("KeyV", true));
  }

  if (control) {
    stage.addEventListener("pointerdown", (e) => {
      if (!focused()) stage.focus({ preventScroll: true });
      const b = remoteButton(e.button);
      const p = point(e);
      if (!b || !p || !p.inside) return; // on the bars around the picture: focus only
      e.preventDefault();
      try {
        stage.setPointerCapture(e.pointerId); // a drag that leaves the screen still ends on it
      } catch {
        // the pointer is already gone
      }
      pendingMove = { x: p.x, y: p.y };
      flushMove();
      if (sendInput(inputMsg.button(b, true))) buttons.add(b);
    });
    stage.addEventListener("pointerup", (e) => {
      const b = remoteButton(e.button);
      if (!b || !buttons.has(b)) return;
      e.preventDefault();
      const p = point(e);
      if (p) pendingMove = { x: p.x, y: p.y };
      flushMove();
      buttons.delete(b);
      sendInput(inputMsg.button(b, false));
    });
    stage.addEventListener("pointermove", (e) => {
      if (!focused()) return;
      const p = point(e);
      if (!p) return;
      pendingMove = { x: p.x, y: p.y };
      frame ||= requestAnimationFrame(flushMove);
    });
    stage.addEventListener("wheel", (e) => {
      if (!focused()) return; // the page scrolls until the screen has focus
      e.preventDefault();
      const p = point(e);
      if (p) {
        pendingMove = { x: p.x, y: p.y };
        flushMove();
      }
      const dx = wheelX.push(e.deltaX, e.deltaMode, e.timeStamp);
      const dy = wheelY.push(e.deltaY, e.deltaMode, e.timeStamp);
      if (dx || dy) sendInput(inputMsg.wheel(dx, dy));
    }, { passive: false });
    stage.addEventListener("contextmenu", (e) => e.preventDefault());
    stage.addEventListener("keydown", (e) => {
      pasteKeyDown();
      switch (keys.down(e)) {
        case "release":
          e.preventDefault();
          stage.blur();
          return;
        case "send":
          e.stopPropagation();
          if (isPasteKey(e)) {
            // Let the browser paste: the paste event sends our clipboard
            // first, then the key (or the timer does, without a paste).
            clearTimeout(pasteTimer);
            pasteTimer = setTimeout(pasteKeyDown, 150);
            return;
          }
          e.preventDefault();
          sendInput(inputMsg.key(e.code, true));
          return;
        case "swallow":
          e.preventDefault();
          e.stopPropagation();
          return;
        case "pass":
          return;
      }
    });
    stage.addEventListener("paste", (e) => {
      if (!focused()) return;
      e.preventDefault();
      const t = e.clipboardData?.getData("text/plain");
      if (t) sendClipboard(t);
      pasteKeyDown();
    });
    stage.addEventListener("keyup", (e) => {
      pasteKeyDown(); // a Ctrl+V still waiting for its paste event goes first
      const v = keys.up(e);
      if (v === "pass") return;
      e.preventDefault();
      e.stopPropagation();
      if (v === "send") sendInput(inputMsg.key(e.code, false));
    });
    stage.addEventListener("blur", () => releaseInput(true));
  } else {
    stage.addEventListener("contextmenu", (e) => e.preventDefault());
  }
  const onVisibility = () => {
    if (document.visibilityState === "hidden" && control) releaseInput(true);
  };
  document.addEventListener("visibilitychange", onVisibility);

  life.signal.addEventListener("abort", () => {
    clearTimeout(retryTimer);
    document.removeEventListener("visibilitychange", onVisibility);
    resized.disconnect();
    if (document.fullscreenElement === stage) void document.exitFullscreen().catch(() => {});
    if (cur) finish(cur, "", "left");
  });

  // The device's name for the title (the session does not need it).
  client.getDevice({ id }, { signal: life.signal }).then((r) => {
    const d = r.device;
    if (!d) return;
    deviceName = d.hostname || d.id;
    setText(crumb, `← ${deviceName}`);
    setText(title, `${control ? "Remote control" : "Remote view"}: ${deviceName}`);
    title.title = deviceName.length > 30 ? deviceName : "";
    document.title = `${deviceName.slice(0, 60)} (remote) · Deskside`;
    const mode = d.desktopMode || (d.unattendedAllowed ? DesktopPolicyMode.UNATTENDED : DesktopPolicyMode.ATTENDED);
    asksUser = mode === DesktopPolicyMode.ATTENDED || !!d.endpointTrust?.alwaysAsk;
    if (cur?.waitingOffer) setState("connecting", offerWait());
  }, () => {});

  // The relay decides who may (tier 2 and up) and which devices allow it
  // (their policy): its refusal is shown as it says.
  start();

  return {
    el,
    title: "Remote session",
    dispose() {
      life.abort();
      chat?.dispose();
    },
  };
}
