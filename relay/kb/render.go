package kb

import (
	"bytes"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// The two fences of Render (docs/adr 23). goldmark is built without
// html.WithUnsafe: raw HTML blocks and inline HTML become an HTML comment
// and links or images whose destination is dangerous (javascript:,
// vbscript:, file:, data: other than images) get an empty one. bluemonday's
// user-generated-content policy then keeps only known-safe elements and
// attributes (no script, style, iframe, form; no on* attribute; no style
// attribute), allows URLs only with the schemes http, https and mailto or
// relative ones, and marks every link rel="nofollow noreferrer" (plus
// target="_blank" rel="noopener" for absolute ones). Either fence alone
// should suffice; both must fail for markup to get through.
var (
	markdown = goldmark.New(goldmark.WithExtensions(
		extension.Table, extension.Strikethrough, extension.Linkify, extension.TaskList))
	policy = func() *bluemonday.Policy {
		p := bluemonday.UGCPolicy()
		p.AllowURLSchemes("http", "https", "mailto")
		p.RequireParseableURLs(true)
		p.RequireNoFollowOnLinks(true)
		p.RequireNoReferrerOnLinks(true)
		p.AddTargetBlankToFullyQualifiedLinks(true)
		return p
	}()
)

// Render turns an article's Markdown into HTML that is safe to insert into
// a page as is: no script, no event handler, no style, links only to
// http, https, mailto or relative URLs. Markdown that fails to render
// (goldmark only fails on write errors, which a buffer never returns)
// renders as its escaped text.
func Render(md string) string {
	var buf bytes.Buffer
	if err := markdown.Convert([]byte(CleanBody(md)), &buf); err != nil {
		return "<pre>" + escape(md) + "</pre>"
	}
	return policy.Sanitize(buf.String())
}

// escape is HTML escaping for the fallback only.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}
