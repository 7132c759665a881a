// Live chat with a ticket's requester (a Get help ticket: the line reaches
// the user's tray page; relay/server/helpsvc.go pushes it). The panel shows
// the ticket's CHAT entries and sends with SendChat; its owner feeds it
// each timeline it loads (the ticket page, kept live by WatchTickets; or
// watchChat below, for the remote-session viewer). A new line from the
// requester while the panel is off-screen or the tab hidden counts as
// unread (a badge that scrolls to the chat) and, once the technician
// allowed it with a click, a desktop notification. Chat text is the
// requester's: only ever text (dom.ts).

import { checkSession, explain, isCanceled, ticketClient } from "./api";
import { h, replace, setText, uid } from "./dom";
import { fmtTime, tsDate } from "./format";
import { TicketEntryKind, TicketStatus, type Ticket, type TicketEntry } from "./gen/deskside/v1/tickets_pb";
import { watchTickets } from "./live";
import { notice } from "./page";
import { fromRequester, requesterLogin } from "./ticketfmt";

/** maxChatBytes is the relay's limit on one line (relay/tickets MaxChatBytes). */
export const maxChatBytes = 4 << 10;

/** shortTime is a chat line's time of day ("14:05"); the day when not today. */
function shortTime(d: Date | undefined): string {
  if (!d) return "";
  const s = fmtTime(d);
  return d.toDateString() === new Date().toDateString() ? s.slice(11, 16) : s.slice(0, 16);
}

/** chatKey identifies a chat line across reloads. */
function chatKey(e: TicketEntry): string {
  return `${e.time?.seconds ?? 0}.${e.time?.nanos ?? 0}|${e.author}|${e.body}`;
}

export interface ChatPanel {
  el: HTMLElement;
  /** update shows the ticket's chat lines (the timeline, oldest first);
   * mayWork false: the technician may not work the ticket (its tier). */
  update(t: Ticket, timeline: TicketEntry[], mayWork?: boolean): void;
  dispose(): void;
}

/** chatPanel builds the chat of ticket code; sent() is called after a line was sent (reload). */
export function chatPanel(code: string, life: AbortSignal, sent: () => void): ChatPanel {
  const log = h("ol", { class: "chat-log", data: { testid: "chat-log" }, "aria-live": "polite", "aria-label": "Chat with the requester" });
  const inputID = uid("chat-text");
  const input = h("input", { id: inputID, type: "text", maxlength: maxChatBytes, autocomplete: "off", placeholder: "Type a line for the requester", data: { testid: "chat-text" } });
  const send = h("button", { type: "submit", class: "btn btn-primary btn-small", data: { testid: "chat-send" } }, "Send");
  const status = h("div", { class: "chat-status", data: { testid: "chat-status" } });
  const form = h("form", { class: "chat-form" }, h("label", { for: inputID, class: "visually-hidden" }, "Chat line"), input, send);
  const badge = h("button", { type: "button", class: "chat-badge", hidden: true, data: { testid: "chat-unread" }, title: "Show the chat" });
  const notifyBtn = h("button", { type: "button", class: "btn btn-quiet btn-small", data: { testid: "chat-notify" } }, "Notify me");
  const hasNotify = typeof Notification !== "undefined";
  const drawNotify = () => {
    notifyBtn.hidden = !hasNotify || Notification.permission !== "default";
    notifyBtn.title = "Show a desktop notification when the requester writes while this page is hidden";
  };
  drawNotify();
  // The permission is asked only on this click (a user gesture).
  notifyBtn.addEventListener("click", () => {
    if (!hasNotify) return;
    void Notification.requestPermission().then(drawNotify, drawNotify);
  });
  const el = h("section", { class: "card chat", data: { testid: "chat" }, "aria-labelledby": `${inputID}-title` },
    h("div", { class: "card-head" }, h("h2", { id: `${inputID}-title` }, "Chat"), notifyBtn),
    log, form, status, badge);

  let seen: Set<string> | undefined;
  let unread = 0;
  let visible = false;
  let title = code;
  let canChat = true;

  const drawBadge = () => {
    badge.hidden = unread === 0;
    setText(badge, unread === 1 ? "1 new chat line" : `${unread} new chat lines`);
    badge.dataset["count"] = String(unread);
  };
  const markRead = () => {
    if (visible && !document.hidden && unread) {
      unread = 0;
      drawBadge();
    }
  };
  const io = typeof IntersectionObserver !== "undefined"
    ? new IntersectionObserver((es) => {
      visible = es.some((e) => e.isIntersecting);
      markRead();
    })
    : undefined;
  io?.observe(log);
  const onVis = () => markRead();
  document.addEventListener("visibilitychange", onVis);
  badge.addEventListener("click", () => {
    log.scrollIntoView({ block: "nearest" });
    input.focus();
    unread = 0;
    drawBadge();
  });
  // The badge floats over the page (CSS) so it shows while the chat is off-screen.
  document.body.append(badge);

  const lineView = (e: TicketEntry): HTMLElement => {
    const req = fromRequester(e);
    const who = req ? requesterLogin(e.author) : e.author || "technician";
    return h("li", { class: `chat-line ${req ? "chat-requester" : "chat-tech"}`, data: { testid: "chat-line", from: req ? "requester" : "technician" } },
      h("div", { class: "chat-meta" }, h("strong", null, who), " ", h("span", { class: "chat-role" }, req ? "requester" : "technician"), " ",
        h("time", { class: "muted", title: fmtTime(tsDate(e.time)) }, shortTime(tsDate(e.time)))),
      h("p", { class: "chat-body" }, e.body));
  };

  const notify = (e: TicketEntry) => {
    if (!hasNotify || Notification.permission !== "granted") return;
    try {
      const n = new Notification(`${title}: ${requesterLogin(e.author)} wrote`, { body: e.body.slice(0, 200), tag: `deskside-chat-${code}` });
      n.onclick = () => {
        window.focus();
        log.scrollIntoView({ block: "nearest" });
        n.close();
      };
    } catch { /* a browser that only notifies from a service worker: the badge says it */ }
  };

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || !canChat) return;
    if (new TextEncoder().encode(text).length > maxChatBytes) {
      replace(status, notice("error", `A chat line is at most ${maxChatBytes} bytes: send a reply for longer text.`));
      return;
    }
    send.disabled = true;
    void ticketClient.sendChat({ code, text }, { signal: life }).then(() => {
      input.value = "";
      replace(status);
      sent();
    }, (err) => {
      if (isCanceled(err)) return;
      checkSession(err);
      replace(status, notice("error", explain(err)));
    }).finally(() => {
      send.disabled = !canChat;
      input.focus();
    });
  });

  return {
    el,
    update(t: Ticket, timeline: TicketEntry[], mayWork = true) {
      title = t.code;
      drawNotify();
      const lines = timeline.filter((e) => e.kind === TicketEntryKind.CHAT);
      const first = seen === undefined;
      const before = seen ?? new Set<string>();
      seen = new Set(lines.map(chatKey));
      const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
      replace(log, lines.length ? lines.map(lineView)
        : h("li", { class: "muted chat-empty", data: { testid: "chat-empty" } }, t.requester?.deviceId
          ? "No chat yet. A line sent here reaches the requester's Get help page on their device."
          : "No chat yet. Chat reaches requesters who filed from their device's Get help; others see it on the ticket."));
      if (atEnd || first) log.scrollTop = log.scrollHeight;
      if (!first) {
        for (const e of lines) {
          if (before.has(chatKey(e)) || !fromRequester(e)) continue;
          if (!visible || document.hidden) unread++;
          if (document.hidden || !visible) notify(e);
        }
        drawBadge();
      }
      const open = !t.mergedInto && t.status !== TicketStatus.RESOLVED && t.status !== TicketStatus.CLOSED; // the relay refuses others
      canChat = open && mayWork;
      input.disabled = send.disabled = !canChat;
      input.placeholder = canChat ? "Type a line for the requester" : !mayWork ? `Tier ${t.tier} ticket: you may read the chat` : "Reopen the ticket to chat";
    },
    dispose() {
      io?.disconnect();
      document.removeEventListener("visibilitychange", onVis);
      badge.remove();
    },
  };
}

/** watchChat keeps a chat panel of ticket code current on its own (GetTicket on each of its WatchTickets events). */
export function watchChat(code: string, life: AbortSignal): ChatPanel {
  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    try {
      const r = await ticketClient.getTicket({ code }, { signal: life });
      if (mine === seq && r.ticket) panel.update(r.ticket, r.timeline);
    } catch (e) {
      if (isCanceled(e) || mine !== seq) return;
      checkSession(e);
      replace(panel.el, h("h2", null, "Chat"), notice("error", `Could not load ticket ${code}: ${explain(e)}`));
    }
  };
  const panel = chatPanel(code, life, () => void load());
  panel.el.classList.add("chat-session");
  // The code as typed ("ds-7k3q") or as the relay spells it, once known.
  let canonical = code.toUpperCase();
  const update = panel.update;
  panel.update = (t, tl, mayWork) => {
    canonical = t.code;
    update(t, tl, mayWork);
  };
  watchTickets(life, {
    onTicket: (ev) => {
      if (ev.ticket?.code === canonical) void load();
    },
    onState: () => {},
    onResync: () => void load(),
  });
  void load();
  return panel;
}
