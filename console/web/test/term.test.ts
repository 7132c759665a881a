import assert from "node:assert/strict";
import { test } from "node:test";
import { AnsiStripper, CappedOutput, exitLine, fmtDuration, PendingOutput, stripAnsi, type OutputSink, type OutStream } from "../src/term";
import { formatBytes } from "../src/format";

test("stripAnsi", () => {
  const cases: Array<[string, string]> = [
    ["plain text", "plain text"],
    ["\x1b[31mred\x1b[0m", "red"],
    ["\x1b[1;32;40mbold\x1b[K", "bold"],
    ["\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"],
    ["\x1b]0;window title\x07text", "text"],
    ["\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"],
    ["\u009b31mc1 csi", "c1 csi"],
    ["\u009d0;title\u009cafter", "after"],
    ["\x1bPdcs\x1b\\x", "x"],
    ["\x1b(Bcharset", "charset"],
    ["\x1bcreset", "reset"],
    ["\x1b=keypad", "keypad"],
    ["tab\tkept\nlf kept", "tab\tkept\nlf kept"],
    ["crlf\r\nline", "crlf\nline"],
    ["progress 1\rprogress 2", "progress 1\nprogress 2"],
    ["nul\x00del\x7fbell\x07bs\x08", "nuldelbellbs"],
    ["admin\u202egnp.exe", "admingnp.exe"],
    ["lone ESC \x1b\x01x", "lone ESC x"],
    ["\x1b[31", ""],
    ["<script>alert(1)</script>", "<script>alert(1)</script>"],
    ["ünïcødé 日本 🙂", "ünïcødé 日本 🙂"],
  ];
  for (const [i, want] of cases) assert.equal(stripAnsi(i), want, `stripAnsi(${JSON.stringify(i)})`);
});

test("AnsiStripper across chunks", () => {
  const input = "a\x1b[1;31mred\x1b[0m b\x1b]0;title\x1b\\c\r\nd\x1b(Be\u009b2Jf\rg";
  const want = stripAnsi(input);
  assert.equal(want, "ared bc\ndef\ng");
  // Every split point, and one character at a time.
  for (let cut = 0; cut <= input.length; cut++) {
    const s = new AnsiStripper();
    assert.equal(s.push(input.slice(0, cut)) + s.push(input.slice(cut)), want, `cut at ${cut}`);
  }
  const s = new AnsiStripper();
  assert.equal([...input].map((c) => s.push(c)).join(""), want);
});

test("an unterminated escape string gives up", () => {
  const s = new AnsiStripper();
  const out = s.push("before\x1b]" + "x".repeat(5000) + "after");
  assert.ok(out.startsWith("before"));
  assert.ok(out.endsWith("after"));
  assert.ok(out.length < 1000, `kept ${out.length} characters of the escape string`);
});

// A sink on strings: what the DOM would show.
function stringSink(): { sink: OutputSink<{ stream: OutStream; text: string; removed: boolean }>; shown(): string; segs: Array<{ stream: OutStream; text: string; removed: boolean }> } {
  const segs: Array<{ stream: OutStream; text: string; removed: boolean }> = [];
  return {
    segs,
    sink: {
      create(stream, text) {
        const s = { stream, text, removed: false };
        segs.push(s);
        return s;
      },
      append(seg, text) {
        seg.text += text;
      },
      cutFront(seg, n) {
        seg.text = seg.text.slice(n);
      },
      remove(seg) {
        seg.removed = true;
      },
    },
    shown: () => segs.filter((s) => !s.removed).map((s) => s.text).join(""),
  };
}

test("CappedOutput keeps order, streams and the tail", () => {
  const { sink, shown, segs } = stringSink();
  const out = new CappedOutput(sink, 10, 4);
  out.push("stdout", "abc");
  out.push("stderr", "DE");
  out.push("stdout", "fgh");
  assert.equal(shown(), "abcDEfgh");
  assert.equal(out.kept, 8);
  assert.equal(out.dropped, 0);
  // Same-stream text joins the last segment up to segMax.
  out.push("stdout", "ij");
  assert.deepEqual(segs.filter((s) => !s.removed).map((s) => [s.stream, s.text]), [["stdout", "abc"], ["stderr", "DE"], ["stdout", "fghi"], ["stdout", "j"]]);
  // Over the cap: the oldest characters go.
  out.push("stderr", "KLM");
  assert.equal(shown(), "DEfghijKLM");
  assert.equal(out.kept, 10);
  assert.equal(out.dropped, 3);
  // A push larger than the cap keeps its tail only.
  out.push("stdout", "0123456789ABCDEF");
  assert.equal(shown(), "6789ABCDEF");
  assert.equal(out.kept, 10);
  assert.equal(out.dropped, 3 + 10 + 6);
  for (let i = 0; i < 5000; i++) out.push(i % 2 ? "stdout" : "stderr", String(i % 10));
  assert.equal(shown().length, 10);
  assert.equal(out.kept + out.dropped, 13 + 16 + 5000);
});

test("PendingOutput keeps the newest cap characters", () => {
  const p = new PendingOutput(5);
  p.push("stdout", "abc");
  p.push("stdout", "de");
  p.push("stderr", "F");
  assert.deepEqual(p.take(), [{ stream: "stdout", text: "bcde" }, { stream: "stderr", text: "F" }]);
  assert.equal(p.dropped, 1);
  assert.deepEqual(p.take(), []);
  for (let i = 0; i < 100; i++) p.push("stdout", "x");
  assert.ok(p.len <= 10);
  assert.deepEqual(p.take(), [{ stream: "stdout", text: "xxxxx" }]);
  assert.equal(p.dropped, 96);
});

test("fmtDuration", () => {
  const cases: Array<[number, string]> = [
    [0, "0 ms"], [350, "350 ms"], [999.6, "1000 ms"], [1000, "1.0 s"], [1234, "1.2 s"], [9960, "10 s"], [12_400, "12 s"],
    [59_600, "1 min"], [60_000, "1 min"], [125_000, "2 min 5 s"], [3_600_000, "1 h"], [3_725_000, "1 h 2 min"], [-5, "0 ms"], [NaN, "0 ms"],
  ];
  for (const [ms, want] of cases) assert.equal(fmtDuration(ms), want, `fmtDuration(${ms})`);
});

test("exitLine", () => {
  const base = { exitCode: 0, timedOut: false, canceled: false, truncated: false, outputBytes: 12n, durationMs: 1200, error: "" };
  const line = (e: Partial<typeof base>, received = 12) => exitLine({ ...base, ...e }, received, formatBytes);
  assert.deepEqual(line({}), { kind: "ok", text: "exit 0 in 1.2 s" });
  assert.deepEqual(line({ exitCode: 2, durationMs: 34 }), { kind: "failed", text: "exit 2 in 34 ms" });
  assert.deepEqual(line({ exitCode: -1, timedOut: true, durationMs: 30_000 }), { kind: "timeout", text: "timed out after 30 s" });
  assert.deepEqual(line({ exitCode: -1, canceled: true, durationMs: 4000 }), { kind: "cancelled", text: "cancelled after 4.0 s" });
  assert.deepEqual(line({ exitCode: -1, error: "exec: not found" }), { kind: "error", text: "could not run: exec: not found" });
  assert.deepEqual(line({ truncated: true, outputBytes: 50n << 20n }, 10 << 20),
    { kind: "ok", text: "exit 0 in 1.2 s; output truncated by the agent at 10 MiB (of 50 MiB produced)" });
});
