import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { TicketSlaSchema, TicketStatus } from "../src/gen/deskside/v1/tickets_pb";
import { entryValue, findCode, fmtBytes, fmtLeft, fromRequester, isCheckReport, isPNG, nextStatuses, normalizeCode, requesterLogin, slaNext, slaTarget } from "../src/ticketfmt";

test("normalizeCode follows the relay", () => {
  for (const [in_, want] of [["DS-7K3Q", "DS-7K3Q"], ["ds 7k3q", "DS-7K3Q"], ["7k3q", "DS-7K3Q"], ["DS7K3Q", "DS-7K3Q"], [" ds-7k-3q ", "DS-7K3Q"], ["DS-ABCDE", "DS-ABCDE"]]) {
    assert.equal(normalizeCode(in_!), want, in_);
  }
  for (const bad of ["DS-0OO1", "DS-7K3", "DS-7K3QAB", "7I3Q", "printer", "", "DS-7K3Ö"]) {
    assert.equal(normalizeCode(bad), undefined, bad);
  }
});

test("findCode finds a DS code anywhere, never a bare word", () => {
  assert.equal(findCode("DS-7K3Q"), "DS-7K3Q");
  assert.equal(findCode("caller said ds-7k3q about outlook"), "DS-7K3Q");
  assert.equal(findCode("see DS 7K3Q."), "DS-7K3Q");
  assert.equal(findCode("(ds_abcde)"), "DS-ABCDE");
  assert.equal(findCode("help"), undefined, "HELP is made of code characters but has no DS");
  assert.equal(findCode("7K3Q"), undefined);
  assert.equal(findCode("DS-7K3QXYZ"), undefined, "too long");
  assert.equal(findCode("ADS-7K3Q"), undefined, "inside a word");
  assert.equal(findCode("DS-1O0I"), undefined, "characters codes never have");
  assert.equal(findCode("printer on floor 2"), undefined);
});

test("fmtLeft", () => {
  const m = 60_000;
  assert.equal(fmtLeft(30_000), "<1m");
  assert.equal(fmtLeft(45 * m), "45m");
  assert.equal(fmtLeft(60 * m), "1h");
  assert.equal(fmtLeft(135 * m + 59_000), "2h 15m");
  assert.equal(fmtLeft(3 * 1440 * m + 4 * 60 * m + 5 * m), "3d 4h");
  assert.equal(fmtLeft(2 * 1440 * m), "2d");
  assert.equal(fmtLeft(-135 * m), "overdue 2h 15m");
});

test("slaTarget and slaNext count from the due time and say what is met or missed", () => {
  const now = Date.UTC(2026, 11, 7, 10, 0, 0);
  const m = 60_000;
  // First response due in 45 min (the relay said 50 a while ago), resolution in 8 h.
  const running = create(TicketSlaSchema, {
    firstResponseDue: timestampFromMs(now + 45 * m), resolutionDue: timestampFromMs(now + 8 * 60 * m),
    firstResponseLeft: durationFromMs(50 * m), resolutionLeft: durationFromMs(8 * 60 * m + 5 * m),
  });
  assert.deepEqual(slaTarget(running, "first", now), { text: "45m", breached: false, pending: true });
  assert.deepEqual(slaNext(running, now), { text: "reply in 45m", breached: false, pending: true });
  // An hour later the first response is overdue: breached on the page even before the relay says so.
  assert.deepEqual(slaNext(running, now + 105 * m), { text: "reply overdue 1h", breached: true, pending: true });

  // First response met late; resolution running.
  const replied = create(TicketSlaSchema, {
    firstResponseDue: timestampFromMs(now - 10 * m), resolutionDue: timestampFromMs(now + 90 * m),
    resolutionLeft: durationFromMs(90 * m), firstResponseBreached: true,
  });
  assert.deepEqual(slaTarget(replied, "first", now), { text: "met late", breached: true, pending: false });
  assert.deepEqual(slaNext(replied, now), { text: "resolve in 1h 30m", breached: false, pending: true });

  // Both met in time.
  const done = create(TicketSlaSchema, { firstResponseDue: timestampFromMs(now), resolutionDue: timestampFromMs(now) });
  assert.deepEqual(slaNext(done, now), { text: "met", breached: false, pending: false });
  assert.deepEqual(slaNext(undefined, now), { text: "–", breached: false, pending: false });
});

test("nextStatuses follows the relay's transitions", () => {
  assert.deepEqual(nextStatuses(TicketStatus.NEW), [TicketStatus.OPEN, TicketStatus.PENDING_USER, TicketStatus.RESOLVED, TicketStatus.CLOSED]);
  assert.deepEqual(nextStatuses(TicketStatus.OPEN), [TicketStatus.PENDING_USER, TicketStatus.RESOLVED, TicketStatus.CLOSED]);
  assert.deepEqual(nextStatuses(TicketStatus.RESOLVED), [TicketStatus.OPEN, TicketStatus.CLOSED]);
  assert.deepEqual(nextStatuses(TicketStatus.CLOSED), [TicketStatus.OPEN]);
});

test("entryValue names the relay's values as the console does", () => {
  assert.equal(entryValue("pending user"), "Pending user");
  assert.equal(entryValue("new"), "New");
  assert.equal(entryValue(""), "–");
});

test("Get help requesters and their files", () => {
  assert.equal(fromRequester({ author: "requester <alice>" }), true);
  assert.equal(fromRequester({ author: "alice" }), false);
  assert.equal(fromRequester({ author: "relay" }), false);
  assert.equal(requesterLogin("requester <CORP\\alice>"), "CORP\\alice");
  assert.equal(requesterLogin("admin"), "admin");
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]);
  assert.equal(isPNG({ contentType: "image/png", data: png }), true);
  assert.equal(isPNG({ contentType: "image/svg+xml", data: png }), false, "the type must say PNG");
  assert.equal(isPNG({ contentType: "image/png", data: new TextEncoder().encode("<svg onload=alert(1)>") }), false, "the bytes must be a PNG");
  assert.equal(isPNG({ contentType: "image/png", data: png.slice(0, 4) }), false);
  assert.equal(isCheckReport({ contentType: "application/x-protobuf; messageType=deskside.v1.CheckReport" }), true);
  assert.equal(isCheckReport({ contentType: "application/x-protobuf; messageType=deskside.v1.Other" }), false);
  assert.equal(fmtBytes(812), "812 B");
  assert.equal(fmtBytes(14540), "14.2 KiB");
  assert.equal(fmtBytes(2 * 1024 * 1024), "2.0 MiB");
});
