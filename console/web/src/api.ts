// The ConsoleService, OrgService, TechnicianService, KnowledgeService, TicketService, ReportService, NotificationService and UpdateService clients. The console talks to the relay that served it
// (same origin) with the Connect protocol; the session is an HttpOnly
// cookie the relay sets at Login, which same-origin fetch sends by itself.
// Nothing about the session is kept in script-visible storage.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ConsoleService } from "./gen/deskside/v1/console_pb";
import { OrgService } from "./gen/deskside/v1/envelope_pb";
import { TechnicianService } from "./gen/deskside/v1/technicians_pb";
import { KnowledgeService } from "./gen/deskside/v1/kb_pb";
import { ReportService } from "./gen/deskside/v1/reports_pb";
import { TicketService } from "./gen/deskside/v1/tickets_pb";
import { NotificationService } from "./gen/deskside/v1/notify_pb";
import { UpdateService } from "./gen/deskside/v1/release_pb";

let onUnauthenticated: (reason: string) => void = () => {};

/** setUnauthenticatedHandler registers what to do when the session is gone (show the sign-in page). */
export function setUnauthenticatedHandler(fn: (reason: string) => void): void {
  onUnauthenticated = fn;
}

const loginPath = "/" + ConsoleService.typeName + "/" + ConsoleService.method.login.name;

// Any call but Login that the relay refuses as unauthenticated means the
// session ended (expired, signed out elsewhere, relay data reset).
const sessionWatch: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (err) {
    if (!req.url.endsWith(loginPath)) checkSession(err);
    throw err;
  }
};

/** checkSession calls the sign-in handler if err says the session is gone. */
export function checkSession(err: unknown): void {
  const ce = ConnectError.from(err);
  if (ce.code === Code.Unauthenticated) onUnauthenticated(sessionReason(ce.rawMessage));
}

function sessionReason(msg: string): string {
  // The relay's messages are written for the CLI ("…: run `deskside login`").
  const reason = msg.split(": run `deskside login`")[0]!.trim();
  return reason ? capitalize(reason) + "." : "";
}

export const transport = createConnectTransport({
  baseUrl: location.origin,
  interceptors: [sessionWatch],
  // Browsers never follow redirects for API calls (connect-web's default),
  // and the cookie only goes to the same origin.
  fetch: (input, init) => globalThis.fetch(input, { ...init, credentials: "same-origin" }),
});

export const client = createClient(ConsoleService, transport);

/** orgClient calls OrgService: the technician's signing keys and certificates, the revocation list. */
export const orgClient = createClient(OrgService, transport);

/** techClient calls TechnicianService: the admin's technician accounts, everyone's own password. */
export const techClient = createClient(TechnicianService, transport);
/** kbClient calls KnowledgeService: the knowledge base. */
export const kbClient = createClient(KnowledgeService, transport);
/**
 * ticketClient calls TicketService: tickets, their queues and live events.
 * In the binary Protobuf encoding: a queue page of 100 tickets decodes
 * several times faster than from JSON (the Tickets page benchmark,
 * docs/BENCHMARKS.md).
 */
export const ticketClient = createClient(TicketService, createConnectTransport({
  baseUrl: location.origin,
  interceptors: [sessionWatch],
  useBinaryFormat: true,
  fetch: (input, init) => globalThis.fetch(input, { ...init, credentials: "same-origin" }),
}));

/** reportClient calls ReportService: the help-desk reports (tier 3, admins). */
export const reportClient = createClient(ReportService, transport);

/** notifyClient calls NotificationService: SMTP, webhooks, mail templates, technicians' email (admins). */
export const notifyClient = createClient(NotificationService, transport);

/** updateClient calls UpdateService: agent releases and their rollout (admins; uploads are CLI-only). */
export const updateClient = createClient(UpdateService, transport);

/** capitalize upper-cases the first letter. */
export function capitalize(s: string): string {
  return s ? s[0]!.toUpperCase() + s.slice(1) : s;
}

/** isCanceled reports an error caused by our own abort (page left, request superseded). */
export function isCanceled(err: unknown): boolean {
  if (err instanceof DOMException && err.name === "AbortError") return true;
  return err instanceof ConnectError && err.code === Code.Canceled;
}

/**
 * explain turns an error from the relay into a sentence that says what went
 * wrong and what to do. The relay's own message is shown as text.
 */
export function explain(err: unknown): string {
  const ce = ConnectError.from(err);
  const msg = ce.rawMessage.trim();
  switch (ce.code) {
    case Code.Unauthenticated:
      return "You are signed out: " + (sessionReason(msg) || "sign in again.");
    case Code.PermissionDenied:
      return "Permission denied: " + (msg || "your role does not allow this.");
    case Code.Unavailable:
      if (/fetch|network|load failed/i.test(msg) || msg === "") {
        return "Cannot reach the relay. Check your network connection and that the relay is running, then try again.";
      }
      return `The relay is unavailable (${msg}). Try again shortly.`;
    case Code.DeadlineExceeded:
      return "The relay did not answer in time. Try again.";
    case Code.Unimplemented:
      return `The relay does not support this call (${msg}). Reload the page to get the console that matches the relay's version.`;
    case Code.ResourceExhausted:
      return capitalize(msg) || "Too many requests. Wait a moment and try again.";
    case Code.Unknown:
      if (err instanceof TypeError || /fetch|network/i.test(msg)) {
        return "Cannot reach the relay. Check your network connection and that the relay is running, then try again.";
      }
      return `Unexpected error: ${msg}. Reload the page and try again.`;
    case Code.NotFound:
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.Aborted:
    case Code.AlreadyExists:
    case Code.OutOfRange:
      // The relay's messages for these already say what to do.
      return capitalize(msg);
    default:
      return `Relay error (${Code[ce.code] ?? ce.code}): ${msg}`;
  }
}

export { Code, ConnectError };
