// The terminal pane's pure logic, no DOM (test/term.test.ts runs it under
// node): stripping terminal escapes from command output that arrives in
// chunks, keeping only the tail of a huge output, and the sentence that
// ends a command.

/** Stream of a command's output. */
export type OutStream = "stdout" | "stderr";

const enum St {
  Text,
  Esc, // after ESC
  EscInter, // ESC and intermediate bytes, waiting for the final byte
  Csi, // in a control sequence's parameters
  Str, // in an OSC/DCS/SOS/PM/APC string, waiting for BEL or ST
  StrEsc, // in a string, after ESC (ESC \ is ST)
}

/** Longest escape string (OSC, DCS…) swallowed before it is given up on. */
const maxStringSeq = 4096;

function isBidiControl(c: number): boolean {
  return c === 0x061c || c === 0x200e || c === 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/**
 * AnsiStripper removes terminal escape sequences (CSI, OSC/DCS/SOS/PM/APC
 * strings ended by BEL or ST, other ESC sequences, in their 7-bit and C1
 * forms) and control characters from text that arrives in pieces: a
 * sequence split across two chunks is still removed whole. Tab and line
 * feed are kept; CR LF and a lone CR become a line feed; bidirectional
 * overrides are dropped so output cannot reorder what is shown. An
 * unterminated string sequence ends after 4096 characters, so that a stray
 * ESC ] in binary output cannot hide everything after it.
 */
export class AnsiStripper {
  private st = St.Text;
  private strLen = 0;
  private cr = false;

  /** push returns what of chunk is printable text. */
  push(chunk: string): string {
    let out = "";
    let start = -1; // start of the current run of plain text in chunk
    const flushRun = (end: number) => {
      if (start >= 0) {
        out += chunk.slice(start, end);
        start = -1;
      }
    };
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      switch (this.st) {
        case St.Text:
          if (c >= 0x20 && c !== 0x7f && !(c >= 0x80 && c <= 0x9f) && !isBidiControl(c)) {
            this.cr = false;
            if (start < 0) start = i;
            continue;
          }
          flushRun(i);
          if (c === 0x0a) {
            if (!this.cr) out += "\n";
            this.cr = false;
            continue;
          }
          this.cr = false;
          if (c === 0x0d) {
            out += "\n";
            this.cr = true;
          } else if (c === 0x09) {
            out += "\t";
          } else if (c === 0x1b) {
            this.st = St.Esc;
          } else if (c === 0x9b) {
            this.st = St.Csi;
          } else if (c === 0x90 || c === 0x98 || c === 0x9d || c === 0x9e || c === 0x9f) {
            this.st = St.Str;
            this.strLen = 0;
          }
          // Any other control character (or bidi override) is dropped.
          continue;
        case St.Esc:
          if (c === 0x5b) this.st = St.Csi;
          else if (c === 0x50 || c === 0x58 || c === 0x5d || c === 0x5e || c === 0x5f) {
            this.st = St.Str;
            this.strLen = 0;
          } else if (c >= 0x20 && c <= 0x2f) this.st = St.EscInter;
          else if (c >= 0x30 && c <= 0x7e) this.st = St.Text;
          else if (c !== 0x1b) {
            // A lone ESC: drop it and read c as text.
            this.st = St.Text;
            i--;
          }
          continue;
        case St.EscInter:
          if (c >= 0x20 && c <= 0x2f) continue;
          this.st = St.Text;
          if (!(c >= 0x30 && c <= 0x7e)) i--;
          continue;
        case St.Csi:
          if (c >= 0x20 && c <= 0x3f) continue;
          this.st = St.Text;
          if (!(c >= 0x40 && c <= 0x7e)) i--; // malformed: the sequence ends here
          continue;
        case St.Str:
          if (c === 0x07 || c === 0x9c) this.st = St.Text;
          else if (c === 0x1b) this.st = St.StrEsc;
          else if (++this.strLen > maxStringSeq) this.st = St.Text;
          continue;
        case St.StrEsc:
          if (c === 0x5c) this.st = St.Text;
          else if (c !== 0x1b) {
            this.st = St.Str;
            i--;
          }
          continue;
      }
    }
    flushRun(chunk.length);
    return out;
  }
}

/** stripAnsi strips a whole string (see AnsiStripper). */
export function stripAnsi(s: string): string {
  return new AnsiStripper().push(s);
}

/** A place output segments are written to (the DOM in the page, strings in tests). */
export interface OutputSink<S> {
  /** create starts a new segment of stream with text. */
  create(stream: OutStream, text: string): S;
  /** append adds text at the end of seg. */
  append(seg: S, text: string): void;
  /** cutFront removes the first n characters of seg. */
  cutFront(seg: S, n: number): void;
  /** remove drops seg. */
  remove(seg: S): void;
}

interface Seg<S> {
  stream: OutStream;
  seg: S;
  len: number;
}

/**
 * CappedOutput writes output to a sink in segments of one stream each, in
 * order, and keeps only the last cap characters: older segments are
 * removed (the oldest one kept is cut at the front), so a command that
 * prints gigabytes cannot grow the page without bound. Segments are at
 * most segMax characters so removing old output is cheap.
 */
export class CappedOutput<S> {
  private segs: Array<Seg<S>> = [];
  private head = 0; // segs before head have been removed
  /** kept is the number of characters in the sink. */
  kept = 0;
  /** dropped is the number of characters removed to respect the cap. */
  dropped = 0;

  constructor(private readonly sink: OutputSink<S>, readonly cap: number, private readonly segMax = 64 * 1024) {}

  /** push adds text of stream at the end. */
  push(stream: OutStream, text: string): void {
    if (text === "") return;
    if (text.length > this.cap) {
      this.dropped += text.length - this.cap;
      text = text.slice(text.length - this.cap);
    }
    let i = 0;
    while (i < text.length) {
      const last = this.segs.length > this.head ? this.segs[this.segs.length - 1]! : undefined;
      if (last && last.stream === stream && last.len < this.segMax) {
        const part = text.slice(i, i + (this.segMax - last.len));
        this.sink.append(last.seg, part);
        last.len += part.length;
        i += part.length;
      } else {
        const part = text.slice(i, i + this.segMax);
        this.segs.push({ stream, seg: this.sink.create(stream, part), len: part.length });
        i += part.length;
      }
    }
    this.kept += text.length;
    this.trim();
  }

  private trim(): void {
    while (this.kept > this.cap) {
      const first = this.segs[this.head]!;
      const over = this.kept - this.cap;
      if (first.len <= over) {
        this.sink.remove(first.seg);
        this.head++;
        this.kept -= first.len;
        this.dropped += first.len;
      } else {
        this.sink.cutFront(first.seg, over);
        first.len -= over;
        this.kept -= over;
        this.dropped += over;
      }
    }
    if (this.head > 1024 && this.head * 2 > this.segs.length) {
      this.segs = this.segs.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * PendingOutput collects output between two screen updates, keeping at
 * most cap characters (the newest): when the tab is hidden and nothing is
 * drawn, a long-running command cannot pile up memory either.
 */
export class PendingOutput {
  parts: Array<{ stream: OutStream; text: string }> = [];
  len = 0;
  dropped = 0;

  constructor(readonly cap: number) {}

  push(stream: OutStream, text: string): void {
    if (text === "") return;
    const last = this.parts[this.parts.length - 1];
    if (last && last.stream === stream && last.text.length < 64 * 1024) last.text += text;
    else this.parts.push({ stream, text });
    this.len += text.length;
    // Trim only once well over the cap, so trimming stays rare.
    if (this.len > 2 * this.cap) this.trimTo(this.cap);
  }

  /** take returns the collected parts (at most cap characters) and empties the buffer. */
  take(): Array<{ stream: OutStream; text: string }> {
    this.trimTo(this.cap);
    const p = this.parts;
    this.parts = [];
    this.len = 0;
    return p;
  }

  private trimTo(cap: number): void {
    let i = 0;
    while (this.len > cap) {
      const p = this.parts[i]!;
      const over = this.len - cap;
      if (p.text.length <= over) {
        this.len -= p.text.length;
        this.dropped += p.text.length;
        i++;
      } else {
        p.text = p.text.slice(over);
        this.len -= over;
        this.dropped += over;
      }
    }
    if (i) this.parts = this.parts.slice(i);
  }
}

/**
 * fmtDuration renders a duration for people: "350 ms", "1.2 s", "12 s",
 * "2 min 5 s", "1 h 2 min".
 */
export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) {
    const s = (Math.round(ms / 100) / 10).toFixed(1);
    return s === "10.0" ? "10 s" : `${s} s`;
  }
  const totalS = Math.round(ms / 1000);
  if (totalS < 60) return `${totalS} s`;
  if (totalS < 3600) {
    const m = Math.floor(totalS / 60), s = totalS % 60;
    return s ? `${m} min ${s} s` : `${m} min`;
  }
  const totalM = Math.round(totalS / 60);
  const hh = Math.floor(totalM / 60), mm = totalM % 60;
  return mm ? `${hh} h ${mm} min` : `${hh} h`;
}

/** durationMs converts a protobuf Duration (or nothing) to milliseconds. */
export function durationMs(d: { seconds: bigint; nanos: number } | undefined): number {
  if (!d) return 0;
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}

/** What a command's exit record says, as the pane shows it. */
export interface ExitInfo {
  exitCode: number;
  timedOut: boolean;
  canceled: boolean;
  truncated: boolean;
  /** outputBytes is what the agent counts as produced. */
  outputBytes: bigint | number;
  durationMs: number;
  error: string;
}

/** ExitKind classifies how a command ended (data-state on the exit line). */
export type ExitKind = "ok" | "failed" | "timeout" | "cancelled" | "error";

/**
 * exitLine is the sentence at the end of a command's output: "exit 0 in
 * 1.2 s", "exit 2 in 3.4 s", "timed out after 30 s", "cancelled after 4 s",
 * "could not run: …", with "; output truncated by the agent at N bytes"
 * when the agent dropped output (received: the bytes that did arrive).
 */
export function exitLine(e: ExitInfo, received: number, fmtBytes: (n: number) => string): { kind: ExitKind; text: string } {
  const d = fmtDuration(e.durationMs);
  let kind: ExitKind;
  let text: string;
  if (e.canceled) {
    kind = "cancelled";
    text = `cancelled after ${d}`;
  } else if (e.timedOut) {
    kind = "timeout";
    text = `timed out after ${d}`;
  } else if (e.error && e.exitCode === -1) {
    kind = "error";
    text = `could not run: ${e.error}`;
  } else {
    kind = e.exitCode === 0 && !e.error ? "ok" : "failed";
    text = `exit ${e.exitCode} in ${d}`;
    if (e.error) text += ` (${e.error})`;
  }
  if (e.truncated) {
    const total = Number(e.outputBytes);
    text += `; output truncated by the agent at ${fmtBytes(received)}` + (total > received ? ` (of ${fmtBytes(total)} produced)` : "");
  }
  return { kind, text };
}

/** timeoutChoices are the timeout select's options, in seconds (0: the agent's default). */
export const timeoutChoices: ReadonlyArray<[number, string]> = [
  [0, "Agent default"], [10, "10 s"], [30, "30 s"], [60, "1 min"], [300, "5 min"], [1800, "30 min"], [3600, "1 h"],
];
