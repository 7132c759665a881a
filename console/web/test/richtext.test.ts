import assert from "node:assert/strict";
import { test } from "node:test";
import { safeArticleURL } from "../src/richtext";

test("safeArticleURL", () => {
  for (const ok of ["https://example.com/a", "HTTP://x", "mailto:help@example.com", "#/kb/vpn", "/a:b", "a/b:c", "page?x=y:z", "relative"]) {
    assert.equal(safeArticleURL(ok), true, ok);
  }
  for (const bad of ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "vbscript:x", "file:///etc/passwd", "blob:https://x/y"]) {
    assert.equal(safeArticleURL(bad), false, bad);
  }
});
