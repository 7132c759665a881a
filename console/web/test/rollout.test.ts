import assert from "node:assert/strict";
import { test } from "node:test";
import { type Counts, done, offerText, platformName, progressText, targetText } from "../src/rollout";

const zero: Counts = { selected: [], inScope: 0, current: 0, offered: 0, waiting: 0, downloading: 0, installed: 0, refused: 0, failed: 0, rolledBack: 0 };

test("targetText", () => {
  assert.equal(targetText({ percent: 10, group: "" }), "10 % of the devices");
  assert.equal(targetText({ percent: 100, group: "" }), "all devices");
  assert.equal(targetText({ percent: 0, group: "pilot" }), "the devices of group pilot");
});

test("platformName", () => {
  assert.equal(platformName("linux", "amd64"), "linux/amd64");
  assert.equal(platformName("", ""), "not connected yet");
});

test("progressText", () => {
  assert.equal(progressText(zero, "v1.4.0"), "No device of this platform is selected yet.");
  const p = { ...zero, inScope: 12, installed: 2, current: 1, offered: 9 };
  assert.equal(done(p), 3);
  assert.equal(progressText(p, "v1.4.0"), "3 of 12 devices run v1.4.0 (25 %)");
  assert.equal(progressText({ ...zero, inScope: 3, installed: 2 }, "v1.4.0"), "2 of 3 devices run v1.4.0 (66 %)");
});

test("offerText", () => {
  const p = { ...zero, selected: [{ devices: 4 }, { devices: 1 }], inScope: 4, current: 1, offered: 2, waiting: 1 };
  assert.equal(offerText(p, "v1.1.0", "linux", "amd64"),
    "It selects 5 devices. 3 of them run linux/amd64 with an older version and will be offered v1.1.0: 2 connected now, 1 when it connects. 1 already runs it or newer.");
  const one = { ...zero, selected: [{ devices: 1 }], inScope: 1, offered: 1, refused: 2 };
  assert.equal(offerText(one, "v1.1.0", "linux", "amd64"),
    "It selects 1 device. 1 of them runs linux/amd64 with an older version and will be offered v1.1.0: 1 connected now, 0 when they connect. 2 refused, failed or rolled it back and are not offered it again.");
});
