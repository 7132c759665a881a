import assert from "node:assert/strict";
import { test } from "node:test";
import { fillSample, fmtDuration, joinTemplate, parseDuration, splitTemplate } from "../src/settingsfmt";

test("SLA durations round-trip as technicians write them", () => {
  for (const [s, want] of [["30m", 1800], ["4h", 14400], ["1d 4h", 100800], ["1h30m", 5400], [" 2D ", 172800], ["1d 0h 5m", 86700]] as const) {
    assert.equal(parseDuration(s), want, s);
    assert.equal(parseDuration(fmtDuration(want)), want, s);
  }
  for (const bad of ["", "4", "h", "4 hours", "1.5h", "-1h", "4h 1d"]) assert.equal(parseDuration(bad), undefined, bad);
  assert.equal(fmtDuration(100800), "1d 4h");
  assert.equal(fmtDuration(1800), "30m");
});

test("a template splits into subject and body and joins back", () => {
  const text = "Subject: [{{.Code}}] Resolved: {{.Subject}}\n\nHello {{.RequesterName}},\n\nDone.\n";
  const { subject, body } = splitTemplate(text);
  assert.equal(subject, "[{{.Code}}] Resolved: {{.Subject}}");
  assert.equal(body, "Hello {{.RequesterName}},\n\nDone.\n");
  assert.equal(joinTemplate(subject, body), text);
  assert.deepEqual(splitTemplate("no subject line"), { subject: "", body: "no subject line" });
  // A subject never spills into the body (no header injection from the form).
  assert.equal(joinTemplate("a\r\nBcc: x@example.com", "b"), "Subject: a Bcc: x@example.com\n\nb");
});

test("the preview fills known placeholders and leaves the rest as written", () => {
  assert.equal(fillSample("[{{.Code}}] {{ .Subject }} for {{.RequesterName}} {{.Nope}} {{if .Text}}x{{end}}"),
    "[DS-7K3Q] Printer offline for Sam {{.Nope}} {{if .Text}}x{{end}}");
});
