import assert from "node:assert/strict";
import { test } from "node:test";
import { installCommand, parseListing, shellQuote, type Listing } from "../src/installcmd";

const listing: Listing = {
  relay: "desk.example.org:7443",
  url: "https://desk.example.org:8443/download/",
  patterns: "",
  files: [],
};
const sum = "ab".repeat(32);

test("shellQuote", () => {
  assert.equal(shellQuote("deskside-agent_1.0+2.gabc_amd64.deb"), "deskside-agent_1.0+2.gabc_amd64.deb");
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("it's $(x)"), `'it'\\''s $(x)'`);
  assert.equal(shellQuote(""), "''");
});

test("installCommand deb", () => {
  const f = { name: "deskside-agent_1.0+2.gabc_amd64.deb", size: 1, sha256: sum, modified: "", kind: "deb" };
  assert.equal(installCommand(listing, f, "id.secret.pin"),
    "curl --fail --cacert deskside-ca.pem -o deskside-agent_1.0+2.gabc_amd64.deb https://desk.example.org:8443/download/deskside-agent_1.0%2B2.gabc_amd64.deb && \\\n" +
    `echo '${sum}  deskside-agent_1.0+2.gabc_amd64.deb' | sha256sum --check && \\\n` +
    "sudo DESKSIDE_RELAY=desk.example.org:7443 DESKSIDE_TOKEN=id.secret.pin dpkg -i deskside-agent_1.0+2.gabc_amd64.deb");
  // Without a token the placeholder shows where it goes.
  assert.match(installCommand(listing, f, ""), /DESKSIDE_TOKEN=TOKEN dpkg -i/);
});

test("installCommand rpm and msi", () => {
  const rpm = { name: "deskside-agent-1.0-1.x86_64.rpm", size: 1, sha256: sum, modified: "", kind: "rpm" };
  assert.match(installCommand(listing, rpm, "T"), /DESKSIDE_TOKEN=T rpm -i deskside-agent-1.0-1.x86_64.rpm$/);
  const msi = { name: "deskside-agent.msi", size: 1, sha256: sum, modified: "", kind: "msi" };
  const c = installCommand(listing, msi, "T");
  assert.match(c, /^Invoke-WebRequest -Uri 'https:\/\/desk.example.org:8443\/download\/deskside-agent.msi' -OutFile 'deskside-agent.msi'\n/);
  assert.ok(c.includes(`-ne '${sum.toUpperCase()}'`));
  assert.ok(c.endsWith("msiexec /i deskside-agent.msi RELAY=desk.example.org:7443 TOKEN=T /qn"));
  assert.equal(installCommand(listing, { ...msi, name: "SHA256SUMS", kind: "sums" }, "T"), "");
});

test("parseListing", () => {
  assert.throws(() => parseListing({ files: "x" }));
  assert.throws(() => parseListing(null));
  const l = parseListing({ relay: "r:1", url: "u/", files: [{ name: "a.deb", size: 2, sha256: "x", kind: "deb" }, { name: 3 }], patterns: "p" });
  assert.equal(l.files.length, 1);
});
