package webtest

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/metadata"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// hostileArticle tries the ways Markdown could carry script: raw HTML
// (script, event handlers, svg, iframe), javascript: and data: links, and
// a raw HTML block. Each would set window.__pwned or open a dialog.
const hostileArticle = "# Hostile\n\n**bold survives**\n\n" +
	"<script>window.__pwned=1;alert(1)</script>\n\n" +
	"<img src=x onerror=\"window.__pwned=1;alert(1)\">\n\n" +
	"<svg onload=\"window.__pwned=1\"></svg>\n\n" +
	"<iframe src=\"javascript:window.__pwned=1\"></iframe>\n\n" +
	"[js link](javascript:window.__pwned=1) [data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n" +
	"<div onclick=\"window.__pwned=1\">\n\nraw block\n\n</div>\n\n" +
	"[safe link](https://example.com/help)\n"

// inertJS lists what in the element sel could run script: script-capable
// elements, on* attributes, javascript:/data:/vbscript: URLs.
func inertJS(sel string) string {
	return `(() => { const root = document.querySelector(` + "`" + sel + "`" + `); if (!root) return "no " + ` + "`" + sel + "`" + `; const bad = [];
  for (const el of root.querySelectorAll("*")) {
    if (["script", "iframe", "object", "embed", "svg", "style", "form", "math", "base", "meta"].includes(el.localName)) bad.push("element " + el.localName);
    for (const a of el.attributes) {
      if (a.name.startsWith("on")) bad.push("attribute " + a.name);
      if (["href", "src", "action", "formaction", "xlink:href"].includes(a.name) && /^\s*(javascript|data|vbscript):/i.test(a.value)) bad.push(a.name + "=" + a.value);
    }
  }
  return bad.join("; "); })()`
}

// TestKnowledgeBaseEditorRendersHostileArticleInert opens a hostile
// article in the console (the article view and the editor's live preview,
// which the relay renders) and checks that nothing in it can run: no
// script element, no on* attribute, no javascript: link, no dialog; and
// that search in the page puts the matching title first.
func TestKnowledgeBaseEditorRendersHostileArticleInert(t *testing.T) {
	c := startConsole(t)
	_, actx := c.relay.Admin(t)
	md, _ := metadata.FromOutgoingContext(actx)
	kc := desksidev1.NewKnowledgeServiceClient(c.relay.Dial(t))
	ctx := metadata.NewOutgoingContext(context.Background(), md)
	for _, a := range []*desksidev1.CreateArticleRequest{
		{Title: "Hostile article", BodyMarkdown: hostileArticle, Tags: []string{"security"}},
		{Title: "Office supplies", BodyMarkdown: "The printer on floor 2 needs paper. Every printer does."},
		{Title: "Printer jams", BodyMarkdown: "Open tray 2 and pull the sheet out."},
	} {
		if _, err := kc.CreateArticle(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	var dialogs atomic.Int32
	go func() {
		for _, err := range chromedp.Events(c.ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			dialogs.Add(1)
		}
	}()

	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=nav-kb]`)),
		chromedp.WaitVisible(css(`[data-testid=kb-table]`)),
	)

	// Search: the article whose title matches comes first.
	c.run(t, 20*time.Second,
		chromedp.SendKeys(css(`[data-testid=kb-search]`), "printer\r"),
		chromedp.WaitVisible(css(`[data-testid=kb-hit]`)),
	)
	hits := eval[[]string](t, c, `[...document.querySelectorAll("[data-testid=kb-hit] [data-testid=kb-link]")].map(a => a.textContent)`)
	if len(hits) != 2 || hits[0] != "Printer jams" {
		t.Fatalf("search printer in the console: %q, want Printer jams first of two", hits)
	}
	if m := eval[string](t, c, `(document.querySelector("[data-testid=kb-hit] mark") || {}).textContent || ""`); !strings.EqualFold(m, "printer") {
		t.Errorf("the snippet does not mark the word: %q", m)
	}

	// The checker sees the console's own <script src> in <head>: it is not blind.
	if bad := eval[string](t, c, inertJS("head")); !strings.Contains(bad, "element script") {
		t.Fatalf("the inertness check does not see the page's own script: %q", bad)
	}

	// The article view.
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/kb/hostile-article"),
		chromedp.WaitVisible(css(`[data-testid=kb-body] strong`)),
	)
	if bad := eval[string](t, c, inertJS("[data-testid=kb-body]")); bad != "" {
		t.Errorf("article view: %s", bad)
	}
	if s := eval[string](t, c, `document.querySelector("[data-testid=kb-body] a[href^=https]")?.rel || "missing"`); s != "nofollow noreferrer noopener" {
		t.Errorf("the safe link's rel: %q", s)
	}

	// The editor: its live preview, rendered by the relay as the user types.
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=kb-edit]`)),
		chromedp.WaitVisible(css(`[data-testid=kb-preview] strong`)),
		chromedp.SendKeys(css(`[data-testid=kb-edit-body]`), "\n\n<img src=y onerror=\"window.__pwned=2\"> [typed](javascript:window.__pwned=2) typed-marker\n"),
		chromedp.WaitVisible(css(`[data-testid=kb-preview] a[href="https://example.com/help"]`)),
	)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(eval[string](t, c, `document.querySelector("[data-testid=kb-preview]").textContent`), "typed-marker") {
		if time.Now().After(deadline) {
			t.Fatal("the preview never showed what was typed")
		}
		c.run(t, time.Second, chromedp.Sleep(50*time.Millisecond))
	}
	if bad := eval[string](t, c, inertJS("[data-testid=kb-preview]")); bad != "" {
		t.Errorf("editor preview: %s", bad)
	}
	if txt := eval[string](t, c, `document.querySelector("[data-testid=kb-preview]").textContent`); !strings.Contains(txt, "bold survives") || !strings.Contains(txt, "js link") || !strings.Contains(txt, "raw block") {
		t.Errorf("the preview lost the article's text: %q", txt)
	}
	c.screenshot(t, "kb-editor-hostile.png")
	if v := eval[int](t, c, `window.__pwned || 0`); v != 0 {
		t.Fatalf("hostile Markdown ran script (window.__pwned = %d)", v)
	}
	if n := dialogs.Load(); n != 0 {
		t.Fatalf("%d dialogs opened", n)
	}

	// Saving keeps it a draft with the new text (and the version check).
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=kb-save]`)),
		chromedp.WaitVisible(css(`[data-testid=kb-title]`)),
	)
	if bad := eval[string](t, c, inertJS("[data-testid=kb-body]")); bad != "" || !strings.Contains(eval[string](t, c, `document.querySelector("[data-testid=kb-body]").textContent`), "typed-marker") {
		t.Errorf("saved article: %q", bad)
	}
}
