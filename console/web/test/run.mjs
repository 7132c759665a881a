// Runs the unit tests of the console's pure modules (formatting, CSV,
// filters, export columns, chart maths) under node's test runner: each
// test/*.test.ts is bundled by esbuild into a temporary directory first.
// `make web` runs it; so can `npm test`.

import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const tests = (await readdir(here)).filter((f) => f.endsWith(".test.ts")).sort();
const out = await mkdtemp(path.join(os.tmpdir(), "deskside-web-test-"));
let status = 1;
try {
  await esbuild.build({
    absWorkingDir: path.dirname(here),
    entryPoints: tests.map((f) => path.join("test", f)),
    outdir: out,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
  });
  const files = tests.map((f) => path.join(out, f.replace(/\.ts$/, ".mjs")));
  const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], { stdio: "inherit", env: { ...process.env, TZ: "UTC" } });
  status = r.status ?? 1;
} finally {
  await rm(out, { recursive: true, force: true });
}
process.exit(status);
