import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Keys, StatsMeter, WheelAxis, fmtBitrate, inputMsg, isEscapeHatch, pictureBox, remoteButton, stateForIce, statsLine, toScreen,
  type KeyLike, type Stat,
} from "../src/desktop";

const box = (left: number, top: number, width: number, height: number) => ({ left, top, width, height });

test("pictureBox letterboxes with object-fit: contain", () => {
  // 1920×1080 in a 1000×1000 box: full width, bars above and below.
  assert.deepEqual(pictureBox(box(0, 0, 1000, 1000), 1920, 1080), { left: 0, top: 218.75, width: 1000, height: 562.5 });
  // 1000×1000 in a 1600×800 box: full height, bars left and right.
  assert.deepEqual(pictureBox(box(10, 20, 1600, 800), 1000, 1000), { left: 410, top: 20, width: 800, height: 800 });
  // Same aspect ratio (and 1:1): the whole box.
  assert.deepEqual(pictureBox(box(5, 5, 1280, 720), 1280, 720), { left: 5, top: 5, width: 1280, height: 720 });
  // Nothing to map without a picture or a box.
  assert.equal(pictureBox(box(0, 0, 100, 100), 0, 0), undefined);
  assert.equal(pictureBox(box(0, 0, 0, 100), 640, 480), undefined);
});

test("toScreen maps through the letterbox to the screen's pixels", () => {
  const b = box(100, 50, 1000, 1000); // picture 1000×562.5 at top 50+218.75
  const top = 50 + 218.75;
  // Corners of the picture.
  assert.deepEqual(toScreen(100, top, b, 1920, 1080), { x: 0, y: 0, inside: true });
  assert.deepEqual(toScreen(1099.999, top + 562.49, b, 1920, 1080), { x: 1919, y: 1079, inside: true });
  // The centre.
  assert.deepEqual(toScreen(600, top + 281.25, b, 1920, 1080), { x: 960, y: 540, inside: true });
  // A quarter across, a quarter down.
  assert.deepEqual(toScreen(350, top + 140.625, b, 1920, 1080), { x: 480, y: 270, inside: true });
  // On the bar above the picture: clamped to the top row, not inside.
  assert.deepEqual(toScreen(600, 60, b, 1920, 1080), { x: 960, y: 0, inside: false });
  // Below and right of everything: clamped to the last pixel.
  assert.deepEqual(toScreen(5000, 5000, b, 1920, 1080), { x: 1919, y: 1079, inside: false });
  // The right edge itself is outside (pixels are [0, w)).
  assert.equal(toScreen(1100, top + 10, b, 1920, 1080)!.inside, false);
  // Pillarbox: 1000×1000 in 1600×800 at (10,20): picture x 410..1210.
  assert.deepEqual(toScreen(410, 20, box(10, 20, 1600, 800), 1000, 1000), { x: 0, y: 0, inside: true });
  assert.deepEqual(toScreen(810, 420, box(10, 20, 1600, 800), 1000, 1000), { x: 500, y: 500, inside: true });
  assert.equal(toScreen(300, 420, box(10, 20, 1600, 800), 1000, 1000)!.inside, false);
  // 1:1 (the box is the picture, scrolled: negative left).
  assert.deepEqual(toScreen(0, 0, box(-500, -300, 1920, 1080), 1920, 1080), { x: 500, y: 300, inside: true });
  // No video yet.
  assert.equal(toScreen(10, 10, b, 0, 0), undefined);
});

test("remoteButton", () => {
  assert.equal(remoteButton(0), 1);
  assert.equal(remoteButton(1), 2);
  assert.equal(remoteButton(2), 3);
  assert.equal(remoteButton(3), undefined); // back
  assert.equal(remoteButton(4), undefined); // forward
  assert.equal(remoteButton(-1), undefined);
});

test("wheel: mouse notches", () => {
  const w = new WheelAxis();
  // Chrome: 100 px a notch → one click each, whatever the pace.
  assert.equal(w.push(100, 0, 0), 1);
  assert.equal(w.push(100, 0, 16), 1);
  assert.equal(w.push(100, 0, 1000), 1);
  assert.equal(w.push(-100, 0, 1016), -1);
  // Sign is the direction: dy > 0 scrolls down.
  assert.equal(new WheelAxis().push(-53, 0, 0), -1);
  // A small first notch (53 px) still scrolls at once; more in the same gesture add up.
  const s = new WheelAxis();
  assert.equal(s.push(53, 0, 0), 1);
  assert.equal(s.push(53, 0, 50), 0);
  assert.equal(s.push(53, 0, 100), 0);
  assert.equal(s.push(53, 0, 150), 1);
  // After a pause, a new gesture.
  assert.equal(s.push(53, 0, 1000), 1);
  // Lines (Firefox: 3 a notch) and pages.
  const l = new WheelAxis();
  assert.equal(l.push(3, 1, 0), 1);
  assert.equal(l.push(3, 1, 10), 1);
  assert.equal(l.push(6, 1, 20), 2);
  assert.equal(new WheelAxis().push(1, 2, 0), 8);
  // A fling is capped.
  assert.equal(new WheelAxis().push(5000, 0, 0), 10);
  assert.equal(new WheelAxis().push(-5000, 0, 0), -10);
  // No movement, no click.
  assert.equal(new WheelAxis().push(0, 0, 0), 0);
  assert.equal(new WheelAxis().push(NaN, 0, 0), 0);
});

test("wheel: a touchpad's small deltas scroll steadily", () => {
  const w = new WheelAxis();
  let clicks = 0;
  const per: number[] = [];
  for (let i = 0; i < 100; i++) {
    const n = w.push(4, 0, i * 8); // 400 px in 100 events
    clicks += n;
    per.push(n);
  }
  assert.equal(clicks, 4, "one click per 100 px");
  assert.equal(per[0], 0, "a small first delta waits for more");
  assert.equal(per[24], 1);
  assert.ok(per.every((n) => n >= 0 && n <= 1));
  // Turning around starts over in the other direction.
  assert.equal(w.push(-30, 0, 900), -1);
  // Sideways drift while scrolling down makes no horizontal click.
  const x = new WheelAxis();
  assert.equal(x.push(0.5, 0, 0) + x.push(-1, 0, 500) + x.push(2, 0, 1000), 0);
});

const key = (code: string, mods: Partial<KeyLike> = {}): KeyLike => ({ code, ctrlKey: false, altKey: false, shiftKey: false, ...mods });

test("keys: sent once down, up only if sent down", () => {
  const k = new Keys();
  assert.equal(k.down(key("KeyA")), "send");
  assert.equal(k.down(key("KeyA", { repeat: true })), "swallow", "auto-repeat: the device repeats a held key itself");
  assert.equal(k.up(key("KeyA")), "send");
  assert.equal(k.up(key("KeyA")), "swallow", "not down any more");
  assert.equal(k.up(key("KeyB")), "swallow", "pressed before the screen had focus");
  assert.equal(k.down(key("ControlLeft", { ctrlKey: true })), "send");
  assert.equal(k.down(key("KeyW", { ctrlKey: true })), "send", "browser shortcuts go to the device");
  assert.equal(k.down(key("Tab")), "send");
  assert.equal(k.down(key("F5")), "send");
  assert.equal(k.down(key("Escape")), "send", "Esc alone goes to the device");
  assert.equal(k.size, 5);
  k.clear();
  assert.equal(k.size, 0);
  assert.equal(k.up(key("ControlLeft")), "swallow");
  assert.equal(k.down(key("KeyA")), "send");
});

test("keys: the escape hatch and keys that are not ours", () => {
  const k = new Keys();
  const hatch = key("Escape", { ctrlKey: true, altKey: true, shiftKey: true });
  assert.ok(isEscapeHatch(hatch));
  assert.ok(!isEscapeHatch(key("Escape", { ctrlKey: true, shiftKey: true })));
  assert.ok(!isEscapeHatch(key("KeyE", { ctrlKey: true, altKey: true, shiftKey: true })));
  assert.equal(k.down(hatch), "release");
  assert.equal(k.down({ ...hatch, metaKey: true }), "release");
  assert.equal(k.size, 0, "the hatch is never sent");
  assert.equal(k.down(key("KeyA", { isComposing: true })), "pass");
  assert.equal(k.down(key("")), "pass");
  assert.equal(k.down(key("Unidentified")), "pass");
  assert.equal(k.down(key("Key A")), "pass");
  assert.equal(k.down(key("x".repeat(40))), "pass");
  assert.equal(k.up(key("")), "pass");
});

test("input messages", () => {
  assert.equal(inputMsg.move(10, 20), `{"t":"m","x":10,"y":20}`);
  assert.equal(inputMsg.button(1, true), `{"t":"b","b":1,"d":true}`);
  assert.equal(inputMsg.button(3, false), `{"t":"b","b":3,"d":false}`);
  assert.equal(inputMsg.wheel(0, -2), `{"t":"w","dx":0,"dy":-2}`);
  assert.equal(inputMsg.key("KeyA", true), `{"t":"k","c":"KeyA","d":true}`);
  assert.equal(inputMsg.release(), `{"t":"r"}`);
});

test("stateForIce", () => {
  assert.equal(stateForIce("new", false), "connecting");
  assert.equal(stateForIce("checking", false), "connecting");
  assert.equal(stateForIce("connected", false), "live");
  assert.equal(stateForIce("completed", true), "live");
  assert.equal(stateForIce("disconnected", true), "reconnecting");
  assert.equal(stateForIce("failed", false), "reconnecting");
  assert.equal(stateForIce("checking", true), "reconnecting");
  assert.equal(stateForIce("closed", true), "ended");
});

function chromeStats(o: { bytes: number; frames: number; fps?: number; rtt?: number; localType?: string; remoteType?: string }): Stat[] {
  const inbound: Stat = { id: "IT01V", type: "inbound-rtp", kind: "video", codecId: "CIT01_96", bytesReceived: o.bytes, framesDecoded: o.frames, frameWidth: 1280, frameHeight: 720 };
  if (o.fps !== undefined) inbound["framesPerSecond"] = o.fps;
  return [
    { id: "T01", type: "transport", selectedCandidatePairId: "CP1" },
    { id: "CP0", type: "candidate-pair", localCandidateId: "L0", remoteCandidateId: "R0", currentRoundTripTime: 0.5, nominated: false, state: "failed" },
    { id: "CP1", type: "candidate-pair", localCandidateId: "L1", remoteCandidateId: "R1", currentRoundTripTime: o.rtt ?? 0.0123, nominated: true, state: "succeeded" },
    { id: "L0", type: "local-candidate", candidateType: "relay" },
    { id: "L1", type: "local-candidate", candidateType: o.localType ?? "host" },
    { id: "R1", type: "remote-candidate", candidateType: o.remoteType ?? "srflx" },
    { id: "CIT01_96", type: "codec", mimeType: "video/VP8", payloadType: 96 },
    inbound,
    { id: "IT01A", type: "inbound-rtp", kind: "audio", bytesReceived: 999999 },
  ];
}

test("stats: fps, bitrate, RTT, codec and path", () => {
  const m = new StatsMeter();
  const first = m.update(chromeStats({ bytes: 1000, frames: 10 }), 1000);
  assert.equal(first.bitrate, undefined, "no rate before a second sample");
  assert.equal(first.fps, undefined);
  assert.equal(first.codec, "video/VP8");
  assert.equal(first.rtt, 12.3);
  assert.equal(first.path, "direct");
  assert.equal(first.width, 1280);
  const second = m.update(chromeStats({ bytes: 126000, frames: 40 }), 2000);
  assert.equal(second.bitrate, 1_000_000);
  assert.equal(second.fps, 30, "framesDecoded delta when framesPerSecond is missing");
  const third = m.update(chromeStats({ bytes: 126000, frames: 40, fps: 24 }), 2500);
  assert.equal(third.fps, 24, "framesPerSecond when the browser has it");
  assert.equal(third.bitrate, 0, "an idle screen sends nothing");
  // Relayed when either side of the selected pair is a TURN candidate.
  assert.equal(new StatsMeter().update(chromeStats({ bytes: 0, frames: 0, localType: "relay" }), 0).path, "relay");
  assert.equal(new StatsMeter().update(chromeStats({ bytes: 0, frames: 0, remoteType: "relay" }), 0).path, "relay");
  // A counter that went back (a new stream) gives no rate rather than a negative one.
  const m2 = new StatsMeter();
  m2.update(chromeStats({ bytes: 5000, frames: 50 }), 0);
  const reset = m2.update(chromeStats({ bytes: 10, frames: 1 }), 1000);
  assert.equal(reset.bitrate, undefined);
  assert.equal(reset.fps, undefined);
});

test("stats: Firefox-style selected pair, and nothing yet", () => {
  const ff: Stat[] = [
    { id: "p1", type: "candidate-pair", selected: false, nominated: true, state: "succeeded", localCandidateId: "a", remoteCandidateId: "b" },
    { id: "p2", type: "candidate-pair", selected: true, nominated: true, state: "succeeded", localCandidateId: "c", remoteCandidateId: "d", currentRoundTripTime: 0.002 },
    { id: "c", type: "local-candidate", candidateType: "relay" },
    { id: "d", type: "remote-candidate", candidateType: "host" },
  ];
  const v = new StatsMeter().update(ff, 0);
  assert.equal(v.path, "relay");
  assert.equal(v.rtt, 2);
  assert.equal(v.codec, undefined);
  assert.deepEqual(new StatsMeter().update([], 0), {});
});

test("stats text", () => {
  assert.equal(fmtBitrate(undefined), "–");
  assert.equal(fmtBitrate(850_000), "850 kbit/s");
  assert.equal(fmtBitrate(2_340_000), "2.3 Mbit/s");
  assert.equal(fmtBitrate(25_000_000), "25 Mbit/s");
  assert.deepEqual(statsLine({ codec: "video/VP8", width: 1280, height: 720, fps: 29.97, bitrate: 1.5e6, rtt: 3.25, path: "direct" }),
    ["VP8 1280×720", "30 fps", "1.5 Mbit/s", "RTT 3.3 ms", "direct"]);
  assert.deepEqual(statsLine({}), ["–", "– fps", "–", "RTT – ms", "path –"]);
  assert.deepEqual(statsLine({ restarts: 0 }).length, 5);
  assert.deepEqual(statsLine({ restarts: 2 }).at(-1), "reconnected 2×");
  assert.deepEqual(statsLine({ fps: 2.5, rtt: 45.6, path: "relay" }).slice(1), ["2.5 fps", "–", "RTT 46 ms", "relayed (TURN)"]);
});
