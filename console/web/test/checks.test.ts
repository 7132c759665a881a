import assert from "node:assert/strict";
import { test } from "node:test";
import { countLine, sortResults, statusKey, statusLabel } from "../src/checks";
import { CheckStatus } from "../src/gen/deskside/v1/diag_pb";

test("statusKey and labels", () => {
  assert.equal(statusKey(CheckStatus.PASS), "pass");
  assert.equal(statusKey(CheckStatus.WARN), "warn");
  assert.equal(statusKey(CheckStatus.FAIL), "fail");
  assert.equal(statusKey(CheckStatus.UNAVAILABLE), "unavailable");
  assert.equal(statusKey(CheckStatus.UNSPECIFIED), "unavailable");
  assert.equal(statusKey(42 as CheckStatus), "unavailable");
  assert.equal(statusLabel[statusKey(CheckStatus.UNAVAILABLE)], "N/A");
});

test("sortResults puts problems first", () => {
  const r = (name: string, status: CheckStatus) => ({ name, status });
  const got = sortResults([
    r("time.sync", CheckStatus.PASS), r("disk.space", CheckStatus.WARN), r("network.dns", CheckStatus.FAIL),
    r("disk.smart", CheckStatus.UNAVAILABLE), r("cpu.load", CheckStatus.PASS), r("cpu.hogs", CheckStatus.FAIL),
  ]).map((x) => x.name);
  assert.deepEqual(got, ["cpu.hogs", "network.dns", "disk.space", "disk.smart", "cpu.load", "time.sync"]);
});

test("countLine", () => {
  const s = (...st: CheckStatus[]) => st.map((status) => ({ status }));
  assert.equal(countLine(s(CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.PASS, CheckStatus.UNAVAILABLE, CheckStatus.WARN, CheckStatus.FAIL)), "2 fail · 1 warn · 2 pass · 1 n/a");
  assert.equal(countLine(s(CheckStatus.PASS)), "1 pass");
  assert.equal(countLine([]), "");
});
