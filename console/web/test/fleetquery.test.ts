import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultFilter, fleetQueryString, isFiltered, listRequest, lowMemoryBytes, parseFleetQuery } from "../src/fleetquery";
import { DeviceSort } from "../src/gen/deskside/v1/console_pb";

test("defaults write nothing and read back", () => {
  assert.equal(fleetQueryString(defaultFilter), "");
  assert.deepEqual(parseFleetQuery(""), defaultFilter);
  assert.equal(isFiltered(defaultFilter), false);
});

test("round trip", () => {
  const f = { q: "web 01&x=1", online: "offline" as const, os: "Windows", user: "bob", model: "ThinkPad", ramBelow8: true, diskBelow10: true, sort: DeviceSort.DISK_FREE, desc: true };
  const qs = fleetQueryString(f);
  assert.equal(qs, "q=web+01%26x%3D1&online=offline&os=Windows&user=bob&model=ThinkPad&ram=lt8&disk=lt10&sort=disk-free&desc=1");
  assert.deepEqual(parseFleetQuery(qs), f);
  assert.equal(isFiltered(f), true);
});

test("bad values fall back", () => {
  const f = parseFleetQuery("online=maybe&sort=nonsense&ram=yes&desc=true");
  assert.equal(f.online, "all");
  assert.equal(f.sort, DeviceSort.UNSPECIFIED);
  assert.equal(f.ramBelow8, false);
  assert.equal(f.desc, false);
});

test("listRequest", () => {
  const r = listRequest({ ...defaultFilter, q: "  lab ", online: "online", ramBelow8: true, diskBelow10: true, sort: DeviceSort.MEMORY, desc: true });
  assert.equal(r.query, "lab");
  assert.equal(r.online, true);
  assert.equal(r.memoryBelowBytes, 8n * 1024n * 1024n * 1024n);
  assert.equal(lowMemoryBytes, 8589934592n);
  assert.equal(r.diskFreeBelowPercent, 10);
  assert.equal(r.sort, DeviceSort.MEMORY);
  assert.equal(r.descending, true);
  assert.equal(listRequest(defaultFilter).online, undefined);
  assert.equal(listRequest({ ...defaultFilter, online: "offline" }).online, false);
});
