import assert from "node:assert/strict";
import { test } from "node:test";
import {
  capText, controlMsg, cursorPlace, isPasteKey, maxClipboardBytes, maxControlMessage, maxCursorPNG, maxMonitorName, maxMonitors, monitorLabel,
  parseControl, preview, toScreen, utf8Length,
} from "../src/desktop";

const box = (left: number, top: number, width: number, height: number) => ({ left, top, width, height });
const j = (v: unknown) => JSON.stringify(v);
const mon = { id: 0, name: "DP-1", x: 0, y: 0, w: 1920, h: 1080, primary: true };

test("parseControl: monitors", () => {
  assert.deepEqual(parseControl(j({ t: "monitors", list: [mon, { ...mon, id: 1, name: "HDMI-1", x: 1920, primary: false }], current: -1 })), {
    t: "monitors", list: [mon, { ...mon, id: 1, name: "HDMI-1", x: 1920, primary: false }], current: -1,
  });
  // primary may be left out; a current that is not in the list means all.
  assert.deepEqual(parseControl(j({ t: "monitors", list: [{ id: 3, name: "", x: 0, y: 0, w: 800, h: 600 }], current: 7 })), {
    t: "monitors", list: [{ id: 3, name: "", x: 0, y: 0, w: 800, h: 600, primary: false }], current: -1,
  });
  assert.equal(parseControl(j({ t: "monitors", list: [mon], current: 0 }))?.t, "monitors");
  // Long names are cut for display.
  const long = parseControl(j({ t: "monitors", list: [{ ...mon, name: "x".repeat(1000) }], current: -1 }));
  assert.ok(long?.t === "monitors" && long.list[0]!.name.length === maxMonitorName + 1 && long.list[0]!.name.endsWith("…"));
  // Malformed: the whole message is dropped.
  for (const bad of [
    { t: "monitors", list: [mon] },
    { t: "monitors", list: "x", current: -1 },
    { t: "monitors", list: [{ ...mon, w: 0 }], current: -1 },
    { t: "monitors", list: [{ ...mon, w: 1.5 }], current: -1 },
    { t: "monitors", list: [{ ...mon, id: -1 }], current: -1 },
    { t: "monitors", list: [{ ...mon, name: 5 }], current: -1 },
    { t: "monitors", list: [{ ...mon, primary: "yes" }], current: -1 },
    { t: "monitors", list: [mon, mon], current: -1 }, // duplicate id
    { t: "monitors", list: [null], current: -1 },
    { t: "monitors", list: Array.from({ length: maxMonitors + 1 }, (_, i) => ({ ...mon, id: i })), current: -1 },
    { t: "monitors", list: [mon], current: -2 },
  ]) assert.equal(parseControl(j(bad)), undefined, j(bad).slice(0, 80));
});

test("parseControl: cursor and its shape", () => {
  assert.deepEqual(parseControl(j({ t: "cursor", x: 10, y: -3, visible: true })), { t: "cursor", x: 10, y: -3, visible: true });
  assert.equal(parseControl(j({ t: "cursor", x: 10, y: 3 })), undefined);
  assert.equal(parseControl(j({ t: "cursor", x: "10", y: 3, visible: true })), undefined);
  assert.equal(parseControl(j({ t: "cursor", x: 1e9, y: 3, visible: true })), undefined);
  assert.equal(parseControl(j({ t: "cursor", x: NaN, y: 3, visible: true })), undefined); // null in JSON
  const shape = { t: "cursorshape", w: 16, h: 24, hx: 1, hy: 2, png: "iVBORw0KGgo=" };
  assert.deepEqual(parseControl(j(shape)), shape);
  for (const bad of [
    { ...shape, w: 0 }, { ...shape, w: 257 }, { ...shape, hx: 16 }, { ...shape, hy: -1 },
    { ...shape, png: "" }, { ...shape, png: "abc" }, { ...shape, png: "a\"b)c" + "=" }, { ...shape, png: "javascript:alert(1)//" },
    { ...shape, png: "A".repeat(maxCursorPNG + 4) }, { ...shape, png: 5 },
  ]) assert.equal(parseControl(j(bad)), undefined, j(bad).slice(0, 80));
});

test("parseControl: clipboard, caps, junk", () => {
  assert.deepEqual(parseControl(j({ t: "clipboard", text: "héllo\n<b>" })), { t: "clipboard", text: "héllo\n<b>" });
  assert.deepEqual(parseControl(j({ t: "clipboard", text: "" })), { t: "clipboard", text: "" });
  assert.equal(parseControl(j({ t: "clipboard", text: "a".repeat(maxClipboardBytes) }))?.t, "clipboard");
  assert.equal(parseControl(j({ t: "clipboard", text: "a".repeat(maxClipboardBytes + 1) })), undefined);
  assert.equal(parseControl(j({ t: "clipboard", text: "é".repeat(maxClipboardBytes / 2 + 1) })), undefined); // bytes, not characters
  assert.equal(parseControl(j({ t: "clipboard" })), undefined);
  assert.equal(parseControl(" ".repeat(maxControlMessage + 1)), undefined);
  for (const junk of ["", "{", "null", "[]", "5", j({ t: "nope" }), j({ t: "monitor", id: 1 })]) assert.equal(parseControl(junk), undefined, junk);
  assert.equal(parseControl(new ArrayBuffer(4)), undefined);
});

test("capText cuts at a character boundary, in UTF-8 bytes", () => {
  assert.deepEqual(capText("abc", 3), { text: "abc", cut: false });
  assert.deepEqual(capText("abcd", 3), { text: "abc", cut: true });
  assert.deepEqual(capText("aé", 2), { text: "a", cut: true }); // é is 2 bytes
  assert.deepEqual(capText("a😀b", 4), { text: "a", cut: true }); // no half surrogate pair
  assert.deepEqual(capText("a😀b", 5), { text: "a😀", cut: true });
  assert.equal(utf8Length("a😀é€"), 1 + 4 + 2 + 3);
  const big = capText("€".repeat(maxClipboardBytes));
  assert.ok(big.cut && utf8Length(big.text) <= maxClipboardBytes && utf8Length(big.text) > maxClipboardBytes - 3);
});

test("control messages to the agent", () => {
  assert.equal(controlMsg.monitor(-1), '{"t":"monitor","id":-1}');
  assert.equal(controlMsg.monitor(2), '{"t":"monitor","id":2}');
  assert.equal(controlMsg.clipboard('a"b'), '{"t":"clipboard","text":"a\\"b"}');
  const sent = JSON.parse(controlMsg.clipboard("x".repeat(maxClipboardBytes + 10))) as { text: string };
  assert.equal(sent.text.length, maxClipboardBytes);
});

test("preview and labels", () => {
  assert.equal(preview("short"), "short");
  assert.equal(preview("abcdef", 3), "abc…");
  assert.equal(preview("😀😀😀😀", 3), "😀😀😀…");
  assert.equal(preview("😀😀😀", 3), "😀😀😀");
  assert.equal(preview("x".repeat(10_000_000), 5), "xxxxx…");
  assert.equal(monitorLabel(mon), "DP-1 (1920×1080, primary)");
  assert.equal(monitorLabel({ ...mon, id: 1, name: "", primary: false }), "Monitor 2 (1920×1080)");
});

test("cursorPlace puts the hot spot where toScreen reads the pixel", () => {
  // 1920×1080 in a 1000×1000 element: scale 1000/1920, bars of 218.75 above and below.
  const s = 1000 / 1920;
  assert.deepEqual(cursorPlace(0, 0, 0, 0, box(0, 0, 1000, 1000), 1920, 1080), { left: 0, top: 218.75, scale: s });
  const p = cursorPlace(960, 540, 4, 8, box(0, 0, 1000, 1000), 1920, 1080)!;
  assert.equal(p.scale, s);
  assert.ok(Math.abs(p.left - (500 - 4 * s)) < 1e-9 && Math.abs(p.top - (218.75 + 281.25 - 8 * s)) < 1e-9);
  // Round trip: the hot spot (plus half a pixel) maps back to the same screen pixel.
  for (const [x, y] of [[0, 0], [1919, 1079], [480, 270], [1234, 567]] as const) {
    const c = cursorPlace(x, y, 3, 5, box(0, 0, 1000, 1000), 1920, 1080)!;
    const hx = c.left + (3 + 0.5) * c.scale, hy = c.top + (5 + 0.5) * c.scale;
    assert.deepEqual(toScreen(100 + hx, 50 + hy, box(100, 50, 1000, 1000), 1920, 1080), { x, y, inside: true });
  }
  // 1:1: the element is the picture.
  assert.deepEqual(cursorPlace(100, 50, 2, 2, box(0, 0, 1280, 720), 1280, 720), { left: 98, top: 48, scale: 1 });
  // A captured area larger than the video (scaled down by the encoder).
  assert.deepEqual(cursorPlace(200, 100, 0, 0, box(0, 0, 640, 360), 640, 360, 1280, 720), { left: 100, top: 50, scale: 0.5 });
  // Off the picture, or no picture yet.
  assert.equal(cursorPlace(1920, 0, 0, 0, box(0, 0, 1000, 1000), 1920, 1080), undefined);
  assert.equal(cursorPlace(-1, 0, 0, 0, box(0, 0, 1000, 1000), 1920, 1080), undefined);
  assert.equal(cursorPlace(1, 1, 0, 0, box(0, 0, 1000, 1000), 0, 0), undefined);
});

test("isPasteKey", () => {
  const k = { code: "KeyV", ctrlKey: true, altKey: false, shiftKey: false };
  assert.equal(isPasteKey(k), true);
  assert.equal(isPasteKey({ ...k, shiftKey: true }), true);
  assert.equal(isPasteKey({ ...k, ctrlKey: false, metaKey: true }), true);
  assert.equal(isPasteKey({ ...k, ctrlKey: false }), false);
  assert.equal(isPasteKey({ ...k, altKey: true }), false);
  assert.equal(isPasteKey({ ...k, code: "KeyC" }), false);
});
