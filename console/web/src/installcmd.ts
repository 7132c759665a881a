// Install commands for the agent packages a relay serves at /download/
// (relay/downloads, docs/adr/0034-agent-downloads.md): what the Add devices
// dialog shows for each package, with the relay's agent address and a
// token filled in.

/** DownloadFile is one file of GET /download/ (Accept: application/json). */
export interface DownloadFile {
  name: string;
  size: number;
  sha256: string;
  modified: string;
  kind: string;
}

/** Listing is GET /download/ as JSON. */
export interface Listing {
  relay: string;
  url: string;
  files: DownloadFile[];
  patterns: string;
}

/** parseListing checks the relay's answer; anything else is an error. */
export function parseListing(v: unknown): Listing {
  const o = v as Partial<Listing> | null;
  if (!o || typeof o.relay !== "string" || typeof o.url !== "string" || !Array.isArray(o.files)) {
    throw new Error("the relay's /download/ listing is not the JSON this console knows");
  }
  const files = o.files.filter((f): f is DownloadFile =>
    !!f && typeof f.name === "string" && typeof f.size === "number" && typeof f.sha256 === "string" && typeof f.kind === "string");
  return { relay: o.relay, url: o.url, files, patterns: typeof o.patterns === "string" ? o.patterns : "" };
}

/** CAFile is what the commands call the relay's CA certificate. */
export const CAFile = "deskside-ca.pem";

/** shellQuote quotes s for a POSIX shell unless it is plainly safe. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:+=@%,-]+$/.test(s) ? s : "'" + s.replace(/'/g, `'\\''`) + "'";
}

/** Installable are the kinds of file a command installs. */
export const installable = ["deb", "rpm", "msi"] as const;

/**
 * installCommand is the command that fetches file from the relay, checks
 * its SHA-256 and installs it, enrolling with relay and token
 * (placeholders when empty). Linux: curl with the relay's CA, sha256sum,
 * then dpkg or rpm with the enrollment in the environment (the package's
 * postinst reads it). Windows: PowerShell, then msiexec with the RELAY and
 * TOKEN properties.
 */
export function installCommand(l: Listing, f: DownloadFile, token: string): string {
  const url = l.url + encodeURIComponent(f.name);
  const relay = l.relay || "RELAY:7443";
  const tok = token || "TOKEN";
  const name = shellQuote(f.name);
  switch (f.kind) {
    case "deb":
    case "rpm": {
      const install = f.kind === "deb" ? `dpkg -i ${name}` : `rpm -i ${name}`;
      return `curl --fail --cacert ${CAFile} -o ${name} ${shellQuote(url)} && \\\n` +
        `echo ${shellQuote(`${f.sha256}  ${f.name}`)} | sha256sum --check && \\\n` +
        `sudo DESKSIDE_RELAY=${shellQuote(relay)} DESKSIDE_TOKEN=${shellQuote(tok)} ${install}`;
    }
    case "msi": {
      const ps = (s: string) => "'" + s.replace(/'/g, "''") + "'";
      return `Invoke-WebRequest -Uri ${ps(url)} -OutFile ${ps(f.name)}\n` +
        `if ((Get-FileHash ${ps(f.name)} -Algorithm SHA256).Hash -ne ${ps(f.sha256.toUpperCase())}) { throw 'SHA-256 mismatch' }\n` +
        `msiexec /i ${f.name} RELAY=${relay} TOKEN=${tok} /qn`;
    }
  }
  return "";
}
