package kb_test

import (
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/deskside/deskside/relay/kb"
)

// hostile is Markdown that tries every way we know of to get script into
// the page.
var hostile = map[string]string{
	"script block":        "<script>alert(1)</script>\n\ntext",
	"inline script":       "hello <script>alert(1)</script> world",
	"img onerror":         `<img src=x onerror="alert(1)">`,
	"svg onload":          `<svg onload=alert(1)></svg>`,
	"iframe":              `<iframe src="javascript:alert(1)"></iframe>`,
	"javascript link":     `[click](javascript:alert(1))`,
	"javascript mixed":    `[click](JaVaScRiPt:alert(1))`,
	"javascript entity":   `[click](jav&#x09;ascript:alert(1))`,
	"javascript ref":      "[click][x]\n\n[x]: javascript:alert(1)",
	"javascript autolink": `<javascript:alert(1)>`,
	"data link":           `[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)`,
	"data image":          `![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)`,
	"vbscript link":       `[click](vbscript:msgbox(1))`,
	"raw html block":      "<div onclick=\"alert(1)\">\n\n**bold**\n\n</div>",
	"raw a tag":           `<a href="javascript:alert(1)">x</a>`,
	"style tag":           "<style>body{display:none}</style>",
	"form":                `<form action="https://evil.example"><input name=x></form>`,
	"object":              `<object data="x.swf"></object>`,
	"meta refresh":        `<meta http-equiv="refresh" content="0;url=javascript:alert(1)">`,
	"link title quote":    `[x](https://example.com "a\" onmouseover=\"alert(1)")`,
	"image title quote":   `![x](https://example.com/a.png "a\" onerror=\"alert(1)")`,
	"html comment break":  "<!-- --><script>alert(1)</script> -->",
	"code fence":          "```html\n<script>alert(1)</script>\n```",
	"base tag":            `<base href="https://evil.example/">`,
}

// inert fails t unless the HTML has no script-capable element, no on*
// or style attribute and no URL outside http, https, mailto and relative.
func inert(t *testing.T, name, out string) {
	t.Helper()
	for _, p := range problems(out) {
		t.Errorf("%s: %s in %q", name, p, out)
	}
}

// problems lists what makes HTML not inert.
func problems(out string) []string {
	var ps []string
	doc, err := html.Parse(strings.NewReader(out))
	if err != nil {
		return []string{"does not parse: " + err.Error()}
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "iframe", "object", "embed", "style", "form", "input", "meta", "base", "link", "svg", "math":
				ps = append(ps, "<"+n.Data+"> element")
			}
			for _, a := range n.Attr {
				k := strings.ToLower(a.Key)
				if strings.HasPrefix(k, "on") || k == "style" || k == "srcdoc" || k == "formaction" {
					ps = append(ps, "attribute "+a.Key)
				}
				if k == "href" || k == "src" || k == "action" || k == "xlink:href" {
					v := strings.ToLower(strings.TrimSpace(a.Val))
					if i := strings.IndexByte(v, ':'); i >= 0 && !strings.ContainsAny(v[:i], "/?#") {
						if s := v[:i]; s != "http" && s != "https" && s != "mailto" {
							ps = append(ps, a.Key+"="+a.Val)
						}
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return ps
}

// The checker itself catches what Render must remove.
func TestInertCheckerCatches(t *testing.T) {
	for _, bad := range []string{"<script>x</script>", `<img src=x onerror=y>`, `<a href="javascript:x">a</a>`,
		`<a href=" JavaScript:x">a</a>`, `<img src="data:image/png;base64,AA">`, `<p style="x">`, `<svg></svg>`} {
		if len(problems(bad)) == 0 {
			t.Errorf("problems(%q) found nothing", bad)
		}
	}
	if p := problems(`<p><a href="https://x/a:b">a</a> <a href="/a:b">b</a> <a href="mailto:x@y">c</a></p>`); len(p) != 0 {
		t.Errorf("safe HTML flagged: %v", p)
	}
}

func TestRenderHostileIsInert(t *testing.T) {
	all := ""
	for name, md := range hostile {
		out := kb.Render(md)
		inert(t, name, out)
		all += md + "\n\n"
	}
	inert(t, "all together", kb.Render(all))
}

// The code fence shows its script as text, and links get rel nofollow.
func TestRenderKeepsMarkdown(t *testing.T) {
	for _, c := range []struct{ md, want string }{
		{"# Title", "<h1>Title</h1>"},
		{"**bold** and *em*", "<strong>bold</strong> and <em>em</em>"},
		{"- one\n- two", "<li>one</li>"},
		{"1. first", "<ol>"},
		{"`code`", "<code>code</code>"},
		{"```\n<script>alert(1)</script>\n```", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"[docs](https://example.com/a?b=1)", `<a href="https://example.com/a?b=1" rel="nofollow noreferrer noopener" target="_blank">docs</a>`},
		{"[mail](mailto:help@example.com)", `href="mailto:help@example.com"`},
		{"[other](#/kb/vpn-drops)", `<a href="#/kb/vpn-drops" rel="nofollow noreferrer">other</a>`},
		{"| a | b |\n|---|---|\n| 1 | 2 |", "<td>1</td>"},
		{"~~old~~", "<del>old</del>"},
		{"> quote", "<blockquote>"},
		{"see https://example.com now", `<a href="https://example.com"`},
		{"![logo](https://example.com/logo.png)", `<img src="https://example.com/logo.png" alt="logo"`},
		{"a < b & c", "a &lt; b &amp; c"},
	} {
		if out := kb.Render(c.md); !strings.Contains(out, c.want) {
			t.Errorf("Render(%q) = %q, want it to contain %q", c.md, out, c.want)
		}
	}
}

func TestRenderDropsRawHTMLButKeepsText(t *testing.T) {
	out := kb.Render("before <b onclick=\"x()\">bold</b> after")
	if strings.Contains(out, "<b") || !strings.Contains(out, "before") || !strings.Contains(out, "bold") || !strings.Contains(out, "after") {
		t.Fatalf("raw inline HTML: %q", out)
	}
}
