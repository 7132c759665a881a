// The Add devices dialog (fleet page): an enrollment token (admins), the
// agent packages this relay serves at /download/ with their size and
// SHA-256, and for each a command that fetches, checks and installs it
// enrolled with the token (docs/adr/0034-agent-downloads.md). The listing
// is the relay's own GET /download/ as JSON: the same list curl and
// scripts read, which needs no session and no RPC.

import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { checkSession, client, explain } from "../api";
import { h, replace, uid } from "../dom";
import { formatBytes, fmtCount } from "../format";
import { Role } from "../gen/deskside/v1/console_pb";
import { CAFile, installCommand, installable, parseListing, type Listing } from "../installcmd";
import { code, notice, type Session } from "../page";

const kindLabel: Record<string, string> = { deb: "Debian, Ubuntu (.deb)", rpm: "Fedora, RHEL, SUSE (.rpm)", msi: "Windows (.msi)" };

/** fetchListing reads GET /download/ as JSON. */
export async function fetchListing(signal: AbortSignal): Promise<Listing> {
  const r = await fetch("/download/", { headers: { Accept: "application/json" }, credentials: "same-origin", signal });
  if (!r.ok) throw new Error(`the relay answered ${r.status} ${r.statusText} for /download/`);
  return parseListing(await r.json());
}

/** copyButton copies text to the clipboard and says so. */
function copyButton(text: () => string, what: string): HTMLButtonElement {
  const b = h("button", { type: "button", class: "btn btn-small", data: { testid: "copy" }, "aria-label": `Copy ${what}` }, "Copy");
  b.addEventListener("click", () => {
    navigator.clipboard.writeText(text()).then(() => {
      replace(b, "Copied");
      setTimeout(() => replace(b, "Copy"), 2000);
    }, () => replace(b, "Select and copy"));
  });
  return b;
}

/** openAddDevices shows the dialog; focus returns to opener when it closes. */
export function openAddDevices(session: Session, opener: HTMLElement): void {
  const titleID = uid("add-title");
  const life = new AbortController();
  let token = "";
  let listing: Listing | undefined;

  // --- token ---------------------------------------------------------------
  const tokenSlot = h("div", { data: { testid: "add-token" } });
  const ttlID = uid("add-ttl"), usesID = uid("add-uses");
  const ttl = h("select", { id: ttlID, data: { testid: "add-token-ttl" } },
    h("option", { value: String(3600_000) }, "1 hour"),
    h("option", { value: String(24 * 3600_000) }, "1 day"),
    h("option", { value: String(7 * 24 * 3600_000) }, "7 days"),
    h("option", { value: String(30 * 24 * 3600_000) }, "30 days"),
  );
  const uses = h("input", { id: usesID, type: "number", min: 1, max: 100000, value: "1", class: "num-input", data: { testid: "add-token-uses" } });
  const create = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "add-token-create" } }, "Create token");
  const tokenForm = h("form", { class: "add-token-form" },
    h("div", { class: "form-row" }, h("label", { for: ttlID }, "Valid for"), ttl),
    h("div", { class: "form-row" }, h("label", { for: usesID }, "Devices"), uses),
    create,
  );
  tokenForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    create.disabled = true;
    try {
      const n = Math.max(1, Math.min(100000, Number(uses.value) || 1));
      const r = await client.createEnrollmentToken({ ttl: durationFromMs(Number(ttl.value)), uses: n }, { signal: life.signal });
      token = r.token;
      const exp = r.expiresAt ? new Date(Number(r.expiresAt.seconds) * 1000) : undefined;
      replace(tokenSlot,
        h("div", { class: "add-secret" }, h("code", { data: { testid: "add-token-value" } }, token), copyButton(() => token, "the token")),
        h("p", { class: "hint" }, `Enrolls ${fmtCount(r.uses)} ${r.uses === 1 ? "device" : "devices"}`,
          exp ? `, until ${exp.toLocaleString()}` : "", ". It is shown once: the commands below now hold it."));
      drawPackages();
    } catch (err) {
      checkSession(err);
      replace(tokenSlot, tokenForm, notice("error", "Could not create a token. ", explain(err)));
    } finally {
      create.disabled = false;
    }
  });
  if (session.me.role === Role.ADMIN) {
    replace(tokenSlot, tokenForm);
  } else {
    replace(tokenSlot, h("p", { class: "muted" }, "An admin creates enrollment tokens (here, or with ", code("deskside token create"),
      "). The commands below show TOKEN where it goes."));
  }

  // --- packages ------------------------------------------------------------
  const pkgSlot = h("div", { data: { testid: "add-packages" } }, h("p", { class: "loading" }, "Loading the packages this relay serves…"));
  function drawPackages(): void {
    if (!listing) return;
    const files = listing.files;
    const pkgs = files.filter((f) => (installable as readonly string[]).includes(f.kind));
    if (pkgs.length === 0) {
      replace(pkgSlot, notice("info", h("span", { data: { testid: "add-packages-empty" } },
        "This relay serves no agent packages yet. Build them with ", code("make packages"), " (and ", code("make msi"),
        " for Windows), then copy them to the relay: ", code("deskside-relay downloads add dist/deskside-agent* dist/SHA256SUMS bin/deskside-agent.msi"),
        ". They appear here without a restart.")));
      return;
    }
    const rows = files.map((f) => h("tr", { data: { testid: "add-file", name: f.name } },
      h("td", null, h("a", { href: "/download/" + encodeURIComponent(f.name), download: f.name }, f.name)),
      h("td", { class: "num" }, formatBytes(f.size)),
      h("td", null, h("code", { class: "sha", data: { testid: "add-file-sha" } }, f.sha256)),
    ));
    const cmds = pkgs.map((f) => {
      const cmd = installCommand(listing!, f, token);
      return h("div", { class: "add-cmd", data: { testid: "add-cmd", kind: f.kind, name: f.name } },
        h("div", { class: "add-cmd-head" }, h("strong", null, kindLabel[f.kind] ?? f.kind), " ", h("span", { class: "muted" }, f.name),
          copyButton(() => cmd, `the ${f.kind} install command`)),
        h("pre", { class: "add-pre" }, h("code", null, cmd)));
    });
    replace(pkgSlot,
      h("div", { class: "table-wrap" }, h("table", { class: "grid add-files", "aria-label": "Agent packages" },
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "File"), h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, "SHA-256"))),
        h("tbody", null, rows))),
      notice("warn", "Compare each SHA-256 with the SHA256SUMS on the machine that built the packages before you roll them out: ",
        "a relay that was broken into could hand new installs a changed package. The commands check the file against the sum shown here."),
      h("h3", null, "Install commands"),
      h("p", { class: "hint" }, code(CAFile), " is the relay's CA certificate: ", code("ca.pem"), " in its data directory (",
        code("/var/lib/deskside-relay/ca.pem"), "). Add ", code("DESKSIDE_RELEASE_KEY=FINGERPRINT"), " (Windows: ", code("RELEASEKEY=FINGERPRINT"),
        ") to turn on signed auto-update, unless the packages were built with ", code("make packages RELEASE_KEY=…"), "."),
      ...cmds,
    );
  }
  fetchListing(life.signal).then((l) => {
    listing = l;
    drawPackages();
  }).catch((err: unknown) => {
    if (life.signal.aborted) return;
    replace(pkgSlot, notice("error", "Could not list the packages: ", explain(err)));
  });

  // --- dialog --------------------------------------------------------------
  const close = h("button", { type: "button", class: "btn btn-quiet", data: { testid: "add-close" } }, "Close");
  const dialog = h("dialog", { class: "dialog dialog-wide", "aria-labelledby": titleID, data: { testid: "add-dialog" } },
    h("div", { class: "dialog-body" },
      h("h2", { id: titleID }, "Add devices"),
      h("p", { class: "muted" }, "Install the agent on a device with a token: it enrolls with this relay and appears in the fleet as soon as it connects."),
      h("h3", null, "1. Enrollment token"),
      tokenSlot,
      h("h3", null, "2. Agent packages"),
      pkgSlot,
      h("div", { class: "dialog-actions" }, close),
    ),
  );
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    life.abort();
    dialog.remove();
    opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
}
