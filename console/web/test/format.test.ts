import assert from "node:assert/strict";
import { test } from "node:test";
import { clean, csvCell, csvLine, csvQuote } from "../src/csv";
import { ago, ceilPct, dfFreePct, dfUsePct, fileStamp, fmtPct, formatBytes, pct, roleLabel } from "../src/format";

// The same cases as console/cli/format_test.go: both consoles must agree.
test("formatBytes", () => {
  const cases: Array<[bigint | number, string]> = [
    [0, "0 B"], [512, "512 B"], [1024, "1 KiB"], [1536, "1.5 KiB"], [16n << 30n, "16 GiB"],
    [8369352704, "7.8 GiB"], [512 << 20, "512 MiB"], [500n << 30n, "500 GiB"], [3n << 40n, "3 TiB"],
    [25232932864n, "23.5 GiB"],
  ];
  for (const [n, want] of cases) assert.equal(formatBytes(n), want, `formatBytes(${n})`);
});

test("ago", () => {
  const now = Date.UTC(2026, 10, 23, 12, 0, 0);
  const s = 1000, m = 60 * s, h = 60 * m;
  const cases: Array<[number, string]> = [
    [0, "just now"], [5 * s, "just now"], [45 * s, "45s ago"], [3 * m, "3m ago"],
    [5 * h, "5h ago"], [30 * h, "30h ago"], [72 * h, "3d ago"], [-5 * m, "in 5m (clock skew?)"],
  ];
  for (const [d, want] of cases) assert.equal(ago(now, new Date(now - d)), want, `ago(-${d})`);
  assert.equal(ago(now, undefined), "never");
});

test("clean", () => {
  const cases: Array<[string, string]> = [
    ["plain host", "plain host"],
    ["\x1b[31mred\x1b[0m", "red"],
    ["\x1b[1;32;40mbold\x1b[K", "bold"],
    ["\x1b]0;window title\x07text", "text"],
    ["\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"],
    ["\u009b31mc1 csi", "c1 csi"],
    ["\u009d0;title\u009cafter", "after"],
    ["\x1bPdcs\x1b\\x", "x"],
    ["\x1b(Bcharset", "charset"],
    ["\x1bcreset", "reset"],
    ["tab\there\nnew\rline", "tab here new line"],
    ["nul\x00del\x7fbell\x07", "nuldelbell"],
    ["admin\u202egnp.exe", "admingnp.exe"],
    ["trailing ESC \x1b", "trailing ESC "],
    ["=cmd|' /C calc'!A0", "=cmd|' /C calc'!A0"],
    ["<img src=x onerror=\"window.__pwned=1\">", "<img src=x onerror=\"window.__pwned=1\">"],
  ];
  for (const [i, want] of cases) assert.equal(clean(i), want, `clean(${JSON.stringify(i)})`);
});

test("csvCell neutralises formulas", () => {
  const cases: Array<[string, string]> = [
    ["host-1", "host-1"],
    ["=1+1", "'=1+1"],
    ["+1", "'+1"],
    ["-1", "'-1"],
    ["@SUM(A1)", "'@SUM(A1)"],
    ["\t=1", "' =1"],
    ["\r=1", "' =1"],
    ["  =1", "'  =1"],
    ["  -1", "'  -1"],
    ["\x1b[31m=1", "'=1"],
    ["a=b", "a=b"],
    ["", ""],
  ];
  for (const [i, want] of cases) assert.equal(csvCell(i), want, `csvCell(${JSON.stringify(i)})`);
});

test("csvLine quotes as RFC 4180 asks", () => {
  assert.equal(csvQuote('say "hi"'), '"say ""hi"""');
  assert.equal(csvLine(["a", "b,c", 'q"', "=cmd", " x", "multi\nline"]), `a,"b,c","q""",'=cmd," x",multi line\r\n`);
  // Every cell a spreadsheet would evaluate starts with a quote, quoted or not.
  for (const cell of csvLine(["=A", "+A", "-A", "@A", "\tA", "\rA", " =A", "=A,B"]).trimEnd().split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
    const v = cell.startsWith('"') ? cell.slice(1, -1).replaceAll('""', '"') : cell;
    assert.ok(v.startsWith("'"), `cell ${JSON.stringify(cell)} is not neutralised`);
  }
});

test("misc", () => {
  assert.equal(fileStamp(new Date(2026, 0, 5, 9, 7)), "20260105-0907");
  assert.equal(fmtPct(pct(25n, 100n)), "25 %");
  assert.equal(fmtPct(pct(1n, 0n)), "–");
  assert.equal(roleLabel("TIER2"), "Tier 2");
  assert.equal(roleLabel("ROLE_ADMIN"), "Admin");
});

// The same cases as console/cli/format_test.go TestDFPercent.
test("dfUsePct and ceilPct match df", () => {
  const cases: Array<[bigint, bigint, number | undefined]> = [
    [0n, 0n, undefined], [0n, 100n, 0], [100n, 0n, 100], [17n, 83n, 17], [170n, 829n, 18],
    [16n << 30n, 77n << 30n, 18], [(1n << 63n) + 5n, 1n << 63n, 51],
  ];
  for (const [used, avail, want] of cases) assert.equal(dfUsePct(used, avail), want, `dfUsePct(${used}, ${avail})`);
  const ceil: Array<[number, number | undefined]> = [[0, 0], [16.3, 17], [17, 17], [99.01, 100], [100, 100], [-1, undefined], [NaN, undefined]];
  for (const [p, want] of ceil) assert.equal(ceilPct(p), want, `ceilPct(${p})`);
});

test("dfFreePct and dfUsePct add up to 100, reserved blocks in neither", () => {
  // 252 GiB volume, 18.6 GiB used, 72.4 GiB available (the rest reserved
  // or thin): df says 21 % used, so the fleet says 79 % free.
  const used = 19971597107n, avail = 77738926489n;
  assert.equal(dfUsePct(used, avail), 21);
  assert.equal(dfFreePct(used, avail), 79);
  assert.equal(dfFreePct(0n, 0n), undefined);
});
