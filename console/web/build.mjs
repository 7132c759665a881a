// Builds the console into dist/ (embedded in the relay by web.go):
//   dist/app.js     src/main.ts and its imports, one minified ES2022 bundle
//   dist/app.css    src/app.css, minified
//   dist/index.html src/index.html, its two references versioned by content
// The output is byte-identical for identical sources and lockfile: no
// source maps, no timestamps, no absolute paths. `make web` runs this after
// `npm ci` and the type check.

import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, "src");
const dist = path.join(here, "dist");

const common = {
  absWorkingDir: here,
  bundle: true,
  minify: true,
  sourcemap: false,
  target: "es2022",
  charset: "ascii",
  legalComments: "eof",
  logLevel: "warning",
  write: false,
  metafile: true,
};

const js = await esbuild.build({
  ...common,
  entryPoints: ["src/main.ts"],
  outfile: "dist/app.js",
  format: "iife",
  platform: "browser",
  // No eval, no Function(): the relay's Content-Security-Policy has no
  // 'unsafe-eval'. esbuild never adds them; this keeps dead code out too.
  define: { "process.env.NODE_ENV": '"production"' },
  drop: ["debugger"],
});
const css = await esbuild.build({
  ...common,
  entryPoints: ["src/app.css"],
  outfile: "dist/app.css",
  loader: { ".css": "css" },
});

// Name the bundled packages and their licences at the top of app.js.
async function bundled(metafile) {
  const pkgs = new Map();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (!m || pkgs.has(m[1])) continue;
    const pj = JSON.parse(await readFile(path.join(here, "node_modules", m[1], "package.json"), "utf8"));
    pkgs.set(m[1], `${pj.name} ${pj.version} [${String(pj.license).replace(/^\((.*)\)$/, "$1")}]`);
  }
  return [...pkgs.keys()].sort().map((k) => pkgs.get(k));
}

const one = (result) => {
  if (result.outputFiles.length !== 1) throw new Error(`expected one output, got ${result.outputFiles.map((f) => f.path)}`);
  return result.outputFiles[0].contents;
};
const banner = `/*! Deskside technician console. Bundled: ${(await bundled(js.metafile)).join(", ")}. */\n`;
const appJS = Buffer.concat([Buffer.from(banner, "ascii"), Buffer.from(one(js))]);
const appCSS = Buffer.from(one(css));

// sourceHash covers everything the build reads, the .proto files that
// src/gen comes from included, so web_test.go can tell a dist/ that was not
// rebuilt after a change (it computes the same hash over the same list).
async function sourceHash() {
  const files = [
    "build.mjs", "package.json", "package-lock.json", "tsconfig.json",
    "../../proto/buf.gen.web.yaml", "../../proto/deskside/v1/console.proto", "../../proto/deskside/v1/inventory.proto", "../../proto/deskside/v1/diag.proto", "../../proto/deskside/v1/desktop.proto", "../../proto/deskside/v1/envelope.proto", "../../proto/deskside/v1/kb.proto", "../../proto/deskside/v1/reports.proto", "../../proto/deskside/v1/technicians.proto", "../../proto/deskside/v1/tickets.proto", "../../proto/deskside/v1/notify.proto", "../../proto/deskside/v1/release.proto",
  ];
  for (const e of await readdir(src, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) files.push(path.relative(here, path.join(e.parentPath ?? e.path, e.name)).split(path.sep).join("/"));
  }
  files.sort();
  const h = createHash("sha256");
  for (const f of files) {
    const text = (await readFile(path.join(here, f), "utf8")).replaceAll("\r\n", "\n");
    h.update(f + "\0" + text + "\0");
  }
  return h.digest("hex");
}

// Version the two references by content so a new relay never serves a
// stale cached bundle.
const v = (b) => createHash("sha256").update(b).digest("hex").slice(0, 12);
let html = await readFile(path.join(src, "index.html"), "utf8");
const refs = [
  ['src="/app.js"', `src="/app.js?v=${v(appJS)}"`],
  ['href="/app.css"', `href="/app.css?v=${v(appCSS)}"`],
];
for (const [from, to] of refs) {
  if (!html.includes(from)) throw new Error(`src/index.html must contain ${from}`);
  html = html.replace(from, to);
}

const marker = "<title>";
if (!html.includes(marker)) throw new Error("src/index.html must have a <title>");
html = html.replace(marker, `<meta name="deskside-source" content="sha256:${await sourceHash()}">\n${marker}`);

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await writeFile(path.join(dist, "app.js"), appJS);
await writeFile(path.join(dist, "app.css"), appCSS);
await writeFile(path.join(dist, "index.html"), html);

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`dist/app.js ${kib(appJS.length)}, dist/app.css ${kib(appCSS.length)}, dist/index.html ${kib(Buffer.byteLength(html))}`);
