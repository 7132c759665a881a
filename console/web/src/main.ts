// Deskside technician console: the entry point. It asks the relay who is
// signed in (the session is an HttpOnly cookie), shows the sign-in page or
// the app shell, and routes on the URL hash:
//   #/fleet?…        the fleet (filters in the query)
//   #/devices/<id>   one device (?tab=diagnostics: its Diagnostics tab)
//   #/devices/<id>/session   a remote-desktop session (?control=1: with control)
//   #/profile        the technician's profile and two-factor sign-in
//   #/audit?…        the audit log (admins; filters and page in the query)
//   #/technicians    technician accounts (admins)
// A technician whose password an admin set sees only the password change
// until they have chosen their own.
//   #/kb…            the knowledge base (pages/kb.ts)
//   #/reports?from=…&to=…  the help-desk reports (pages/reports.ts; tier 3, admins)
//   #/tickets…       queues, one ticket, a new ticket (pages/tickets.ts)
//   #/releases       agent releases and their rollout with progress (admins; pages/releases.ts)
//   #/settings       email (SMTP), webhooks, mail templates, SLA targets (admins; pages/settings.ts)

import { client, explain, setUnauthenticatedHandler, Code, ConnectError } from "./api";
import { h, replace } from "./dom";
import { roleLabel, tsDate } from "./format";
import { Role, type Technician } from "./gen/deskside/v1/console_pb";
import { tickRelTimes } from "./live";
import { notice, type Page, type Session } from "./page";
import { auditPage } from "./pages/audit";
import { devicePage } from "./pages/device";
import { fleetPage } from "./pages/fleet";
import { kbPage } from "./pages/kb";
import { releasesPage } from "./pages/releases";
import { reportsPage } from "./pages/reports";
import { loginPage } from "./pages/login";
import { profilePage } from "./pages/profile";
import { passwordForm } from "./pages/password";
import { sessionPage } from "./pages/session";
import { settingsPage } from "./pages/settings";
import { techniciansPage } from "./pages/technicians";
import { prefetchQueue, ticketsPage } from "./pages/tickets";
import { setTechnician } from "./signing";

const root = document.getElementById("app") ?? document.body.appendChild(h("div", { id: "app" }));

let session: Session | undefined;
let current: Page | undefined;
let routed = false; // a page has been shown since the last sign-in
let shell: { main: HTMLElement; nav: HTMLElement; who: HTMLElement; status: HTMLElement } | undefined;

function parseHash(): { path: string; query: string } {
  const raw = location.hash.replace(/^#/, "");
  const q = raw.indexOf("?");
  return q < 0 ? { path: raw, query: "" } : { path: raw.slice(0, q), query: raw.slice(q + 1) };
}

function leavePage(): void {
  current?.dispose();
  current = undefined;
}

function newSession(me: Technician, expiresAt: Date | undefined): Session {
  setTechnician(me.name); // requests are signed with this technician's key
  const s: Session = {
    me,
    expiresAt,
    update(t: Technician) {
      s.me = t;
      drawWho();
    },
  };
  return s;
}

function drawWho(): void {
  if (!shell || !session) return;
  replace(shell.who,
    h("a", { href: "#/profile", class: "who-name", data: { testid: "profile-link" }, title: "Your profile" }, session.me.name),
    h("span", { class: "role-badge", title: "Your role" }, roleLabel(Role[session.me.role])),
  );
}

function buildShell(): void {
  const nav = h("nav", { class: "nav", "aria-label": "Main" },
    h("a", { href: "#/fleet", data: { route: "fleet" } }, "Fleet"),
    h("a", { href: "#/tickets", data: { route: "tickets", testid: "nav-tickets" } }, "Tickets"),
    h("a", { href: "#/kb", data: { route: "kb", testid: "nav-kb" } }, "Knowledge base"),
    h("a", { href: "#/profile", data: { route: "profile" } }, "Profile"),
  );
  // Reports are for tier 3 and admins (they rate technicians).
  if (session && session.me.role >= Role.TIER3) {
    nav.insertBefore(h("a", { href: "#/reports", data: { route: "reports", testid: "nav-reports" } }, "Reports"), nav.lastChild);
  }
  // The audit log and the technicians are for admins (the relay refuses
  // anyone else).
  if (session?.me.role === Role.ADMIN) {
    nav.insertBefore(h("a", { href: "#/audit", data: { route: "audit", testid: "nav-audit" } }, "Audit"), nav.lastChild);
    nav.insertBefore(h("a", { href: "#/technicians", data: { route: "technicians", testid: "nav-technicians" } }, "Technicians"), nav.lastChild);
    nav.insertBefore(h("a", { href: "#/releases", data: { route: "releases", testid: "nav-releases" } }, "Releases"), nav.lastChild);
    nav.insertBefore(h("a", { href: "#/settings", data: { route: "settings", testid: "nav-settings" } }, "Settings"), nav.lastChild);
  }
  const who = h("div", { class: "who" });
  const signout = h("button", { type: "button", class: "btn btn-quiet", data: { testid: "signout" } }, "Sign out");
  const status = h("div", { class: "shell-status" });
  signout.addEventListener("click", async () => {
    signout.disabled = true;
    try {
      await client.logout({});
    } catch (err) {
      const ce = ConnectError.from(err);
      if (ce.code !== Code.Unauthenticated) {
        signout.disabled = false;
        replace(status, notice("error", "Could not sign out: " + explain(err)));
        return;
      }
    }
    signedOut("You signed out.");
  });
  const main = h("main", { id: "main", class: "main", tabindex: "-1" });
  replace(root,
    h("a", { href: "#main", class: "skip-link", on: { click: (e) => { e.preventDefault(); main.focus(); } } }, "Skip to content"),
    h("header", { class: "topbar" },
      h("a", { href: "#/fleet", class: "brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), "Deskside"),
      nav,
      h("div", { class: "topbar-end" }, who, signout),
    ),
    status,
    main,
  );
  shell = { main, nav, who, status };
  drawWho();
}

/** mustChange shows only the password change until the technician chose their own. */
function mustChange(current?: string): void {
  leavePage();
  shell = undefined;
  routed = false;
  document.title = "Choose your password · Deskside";
  const signout = h("button", { type: "button", class: "btn btn-quiet", data: { testid: "signout" } }, "Sign out");
  signout.addEventListener("click", async () => {
    await client.logout({}).catch(() => {});
    signedOut("You signed out.");
  });
  const f = passwordForm({
    current: current === undefined ? undefined : () => current,
    submitLabel: "Set my password",
    done: () => {
      if (!session) return;
      session.me = { ...session.me, mustChangePassword: false };
      route();
    },
  });
  replace(root, h("main", { class: "login-page", id: "main" },
    h("div", { class: "login-brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), "Deskside"),
    h("div", { class: "login-form", data: { testid: "must-change" } },
      h("h1", null, "Choose your password"),
      h("p", { class: "muted" }, `${session?.me.name ?? ""}: an admin set your password. Choose your own before you go on.`),
      f.el, signout)));
  queueMicrotask(() => f.focus());
}

function route(): void {
  if (!session) return;
  if (session.me.mustChangePassword) return mustChange();
  const { path, query } = parseHash();
  if (path === "" || path === "/") {
    history.replaceState(null, "", "#/fleet");
    return route();
  }
  leavePage();
  if (!shell) buildShell();
  replace(shell!.status);
  let page: Page;
  let section = "";
  const remote = /^\/devices\/([^/]+)\/session$/.exec(path);
  const dev = /^\/devices\/(.+)$/.exec(path);
  const idOf = (raw: string) => {
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw; // keep it as typed
    }
  };
  if (path === "/fleet") {
    section = "fleet";
    page = fleetPage(session, query);
  } else if (remote) {
    section = "fleet";
    page = sessionPage(session, idOf(remote[1]!), query);
  } else if (dev) {
    section = "fleet";
    page = devicePage(session, idOf(dev[1]!), query);
  } else if (path === "/audit") {
    section = "audit";
    page = auditPage(session, query);
  } else if (path === "/technicians") {
    section = "technicians";
    page = techniciansPage(session);
  } else if (path === "/tickets" || path.startsWith("/tickets/")) {
    section = "tickets";
    page = ticketsPage(session, path.slice(8), query);
  } else if (path === "/kb" || path.startsWith("/kb/")) {
    section = "kb";
    page = kbPage(session, path.slice(3), query);
  } else if (path === "/reports") {
    section = "reports";
    page = reportsPage(query);
  } else if (path === "/releases") {
    section = "releases";
    page = releasesPage();
  } else if (path === "/settings") {
    section = "settings";
    page = settingsPage();
  } else if (path === "/profile") {
    section = "profile";
    page = profilePage(session);
  } else {
    page = {
      title: "Not found",
      el: h("div", { class: "page" }, h("h1", null, "Page not found"),
        h("p", null, "There is nothing at this address. ", h("a", { href: "#/fleet" }, "Go to the fleet"), ".")),
      dispose() {},
    };
  }
  current = page;
  for (const a of shell!.nav.querySelectorAll<HTMLAnchorElement>("a[data-route]")) {
    if (a.dataset["route"] === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  replace(shell!.main, page.el);
  document.title = `${page.title} · Deskside`;
  // A new page starts at its top, with keyboard focus at its start
  // (the link that led here is gone).
  if (routed) {
    window.scrollTo(0, 0);
    shell!.main.focus({ preventScroll: true });
  }
  routed = true;
}

function showLogin(reason: string): void {
  shell = undefined;
  routed = false;
  document.title = "Sign in · Deskside";
  replace(root, loginPage(reason, (me, expiresAt, password) => {
    session = newSession(me, expiresAt);
    if (me.mustChangePassword) return mustChange(password);
    route();
  }));
}

/** signedOut drops everything and shows the sign-in page. */
function signedOut(reason: string): void {
  if (!session && !shell) return; // already there
  session = undefined;
  setTechnician("");
  leavePage();
  showLogin(reason);
}

async function boot(): Promise<void> {
  replace(root, h("p", { class: "boot", role: "status" }, "Loading Deskside…"));
  const start = parseHash();
  if (start.path === "/tickets") prefetchQueue(start.query);
  try {
    const who = await client.whoAmI({});
    if (!who.technician) throw new Error("the relay answered without a technician");
    session = newSession(who.technician, tsDate(who.sessionExpiresAt));
    route();
  } catch (err) {
    const ce = ConnectError.from(err);
    if (ce.code === Code.Unauthenticated) {
      showLogin("");
      return;
    }
    const retry = h("button", { type: "button", class: "btn btn-primary", on: { click: () => void boot() } }, "Try again");
    replace(root, h("main", { class: "login-page", id: "main" },
      h("div", { class: "login-form" }, h("h1", null, "Deskside"), notice("error", explain(err)), retry)));
  }
}

setUnauthenticatedHandler((reason) => signedOut(reason || "Your session has ended. Sign in again."));
window.addEventListener("hashchange", () => route());
setInterval(tickRelTimes, 5000);
void boot();
