import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { test } from "node:test";
import { downsample, niceCeil, timeTicks } from "../src/chart";
import { addresses, columnsFor, exportChoices, exportFileName, row, toCSV, toJSON } from "../src/exportcols";
import { DeviceSchema } from "../src/gen/deskside/v1/console_pb";
import { InventorySchema } from "../src/gen/deskside/v1/inventory_pb";

const hostile = '<img src=x onerror="window.__pwned=1">';
const device = create(DeviceSchema, {
  id: "dev-1", hostname: "=HYPERLINK(\"http://evil\")", online: true, user: hostile, os: "Linux", model: "+model",
  cpuModel: "-cpu", memoryBytes: 25232932864n, diskTotalBytes: 1000n, diskUsedBytes: 900n, diskFreeBytes: 50n, agentVersion: "@1.0",
  lastSeen: timestampFromMs(Date.UTC(2026, 10, 23, 12, 0, 0)),
});
const inventory = create(InventorySchema, {
  os: { version: "24.04", kernel: "6.8.0" },
  system: { serial: "\tSER" },
  nics: [
    { name: "lo", mac: "00:00:00:00:00:00", addresses: ["127.0.0.1/8", "::1/128"] },
    { name: "eth0", mac: "aa:bb:cc:dd:ee:ff", addresses: ["10.0.0.5/24", "fe80::1/64", "10.0.0.5/24"] },
  ],
  software: [{ name: "a" }, { name: "b" }],
});

test("addresses skip loopback, empty MACs and repeats", () => {
  assert.deepEqual(addresses(inventory), { ips: ["10.0.0.5", "fe80::1"], macs: ["aa:bb:cc:dd:ee:ff"] });
  assert.deepEqual(addresses(undefined), { ips: [], macs: [] });
});

test("every choice has columns", () => {
  for (const c of exportChoices) assert.ok(columnsFor(new Set([c.id])).length > 0, c.id);
});

test("CSV neutralises every hostile cell", () => {
  const cols = columnsFor(new Set(exportChoices.map((c) => c.id)));
  const csv = toCSV(cols, [row(cols, device, inventory)]);
  const [header, line, end] = csv.split("\r\n");
  assert.equal(header, "id,hostname,online,last_seen,os_name,os_version,kernel,model,serial,cpu_model,memory_bytes,disk_total_bytes,disk_used_bytes,disk_free_bytes,disk_free_percent,ip_addresses,mac_addresses,user,agent_version,software_count");
  assert.equal(end, "");
  assert.equal(line,
    `dev-1,"'=HYPERLINK(""http://evil"")",true,2026-11-23T12:00:00Z,Linux,24.04,6.8.0,'+model,' SER,'-cpu,25232932864,1000,900,50,5.3,10.0.0.5 fe80::1,aa:bb:cc:dd:ee:ff,"<img src=x onerror=""window.__pwned=1"">",'@1.0,2`);
});

test("JSON keeps types", () => {
  const cols = columnsFor(new Set(["id", "online", "ram", "disk"]));
  const out = JSON.parse(toJSON(cols, [row(cols, device, undefined)]));
  assert.deepEqual(out, [{ id: "dev-1", online: true, memory_bytes: 25232932864, disk_total_bytes: 1000, disk_used_bytes: 900, disk_free_bytes: 50, disk_free_percent: 5.3 }]);
});

test("file name", () => {
  assert.equal(exportFileName(new Date(2026, 10, 23, 8, 5), "csv"), "deskside-fleet-20261123-0805.csv");
  assert.equal(exportFileName(new Date(2026, 10, 23, 8, 5), "json"), "deskside-fleet-20261123-0805.json");
});

test("chart maths", () => {
  assert.equal(niceCeil(0), 1);
  assert.equal(niceCeil(7), 10);
  assert.equal(niceCeil(1.9), 2);
  assert.equal(niceCeil(230), 250);
  const pts: Array<[number, number]> = [];
  for (let i = 0; i < 10_000; i++) pts.push([i * 1000, i % 2 ? 10 : 20]);
  const ds = downsample(pts, 0, 10_000_000, 100);
  assert.ok(ds.length <= 100 && ds.length >= 99, `downsampled to ${ds.length}`);
  for (const [, v] of ds) assert.ok(Math.abs(v - 15) < 0.01);
  const { ticks, step } = timeTicks(Date.UTC(2026, 0, 1, 10, 7), Date.UTC(2026, 0, 1, 11, 7));
  assert.equal(step, 10 * 60_000);
  assert.equal(new Date(ticks[0]!).toISOString(), "2026-01-01T10:10:00.000Z");
});
