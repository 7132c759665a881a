// CSV for exports that a spreadsheet will open. The rules are the deskside
// CLI's (console/cli/format.go csvCell and proto/wire CleanString): every
// cell is cleaned of control characters, terminal escapes and bidi
// overrides, a cell a spreadsheet would read as a formula gets a leading
// single quote, and quoting follows RFC 4180.

function isBidiControl(c: number): boolean {
  return c === 0x061c || c === 0x200e || c === 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

function isControl(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/**
 * stripEscapes removes terminal escape sequences whole (CSI, OSC/DCS/SOS/
 * PM/APC string sequences ended by BEL or ST, other ESC sequences) in their
 * 7-bit and C1 forms, as wire.stripEscapes does.
 */
function stripEscapes(rs: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i]!;
    const next = i + 1 < rs.length ? rs[i + 1]! : 0;
    if (r === 0x9b || (r === 0x1b && next === 0x5b)) {
      // CSI: parameters and intermediates, then a final byte.
      if (r === 0x1b) i++;
      while (i + 1 < rs.length && rs[i + 1]! >= 0x20 && rs[i + 1]! <= 0x3f) i++;
      if (i + 1 < rs.length && rs[i + 1]! >= 0x40 && rs[i + 1]! <= 0x7e) i++;
    } else if (r === 0x90 || r === 0x98 || r === 0x9d || r === 0x9e || r === 0x9f || (r === 0x1b && "PX]^_".includes(String.fromCodePoint(next)))) {
      // String sequence, ended by BEL, ST (C1) or ESC \.
      if (r === 0x1b) i++;
      while (i + 1 < rs.length) {
        i++;
        if (rs[i] === 0x07 || rs[i] === 0x9c) break;
        if (rs[i] === 0x1b && i + 1 < rs.length && rs[i + 1] === 0x5c) {
          i++;
          break;
        }
      }
    } else if (r === 0x1b) {
      while (i + 1 < rs.length && rs[i + 1]! >= 0x20 && rs[i + 1]! <= 0x2f) i++;
      if (i + 1 < rs.length && rs[i + 1]! >= 0x30 && rs[i + 1]! <= 0x7e) i++;
    } else {
      out.push(r);
    }
  }
  return out;
}

/**
 * clean returns s without terminal escape sequences, control characters
 * (tab, CR and LF become spaces) or bidirectional overrides; lone
 * surrogates become U+FFFD.
 */
export function clean(s: string): string {
  let ok = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isControl(c) || isBidiControl(c) || (c >= 0xd800 && c <= 0xdfff)) {
      ok = false;
      break;
    }
  }
  if (ok) return s;
  const cps: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    cps.push(c >= 0xd800 && c <= 0xdfff ? 0xfffd : c);
  }
  let out = "";
  for (let c of stripEscapes(cps)) {
    if (c === 0x09 || c === 0x0a || c === 0x0d) c = 0x20;
    else if (isControl(c) || isBidiControl(c)) continue;
    out += String.fromCodePoint(c);
  }
  return out;
}

const risky = (s: string) => s !== "" && "=+-@\t\r".includes(s[0]!);

/**
 * csvCell makes a value safe for a spreadsheet: cleaned, and a leading
 * single quote when it would start a formula (=, +, -, @, tab or carriage
 * return, also after leading spaces).
 */
export function csvCell(s: string): string {
  const c = clean(s);
  if (risky(s) || risky(c) || risky(c.replace(/^ +/, ""))) return "'" + c;
  return c;
}

/** csvQuote quotes one field as RFC 4180 asks. */
export function csvQuote(s: string): string {
  if (/[",\r\n]/.test(s) || s.startsWith(" ") || s.endsWith(" ")) return `"${s.replaceAll('"', '""')}"`;
  return s;
}

/** csvLine is one CSV record, every cell neutralised and quoted, ended by CRLF. */
export function csvLine(cells: readonly string[]): string {
  return cells.map((c) => csvQuote(csvCell(c))).join(",") + "\r\n";
}
