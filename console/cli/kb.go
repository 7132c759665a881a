package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// maxArticleBytes is the relay's limit on an article's Markdown.
const maxArticleBytes = 256 << 10

const kbListHelp = `
Lists knowledge-base articles, most recently changed first: slug, state,
category, tags and title. Drafts are for technicians; published articles
are also shown to users on the Get help page.

Examples:
  deskside kb list
  deskside kb list --category hardware --drafts
  deskside kb list --ticket DS-7K3Q`

const kbShowHelp = `
Shows an article: its title, state, category, tags, version, the tickets
it is linked to, and its Markdown (or, with --html, the sanitized HTML the
console shows).

Example:
  deskside kb show printer-jams`

const kbSearchHelp = `
Searches the knowledge base: articles containing any of the words (plural
and singular alike), best match first; a match in the title ranks above one
in the tags, which ranks above one in the body.

Examples:
  deskside kb search printer jam
  deskside kb search vpn --published`

const kbNewHelp = `
Creates a draft article from a Markdown file ("-" reads standard input).
Its slug, the name other commands use, comes from the title. Raw HTML in
the Markdown is dropped when the article is shown. Publish it with
deskside kb publish SLUG (tier 2).

Example:
  deskside kb new --title "Printer jams" --file jams.md --category hardware --tags printer,paper`

const kbEditHelp = `
Replaces an article's body with a Markdown file ("-" reads standard input),
and its title, category or tags when given. If someone else saved the
article meanwhile the edit is refused: show it again, merge, and retry.

Example:
  deskside kb edit printer-jams --file jams.md`

const kbStateHelp = `
Publishes an article (users see it on the Get help page) or makes it a
draft again. Needs tier 2; recorded in the audit log.

Examples:
  deskside kb publish printer-jams
  deskside kb unpublish printer-jams`

const kbDeleteHelp = `
Deletes an article and its ticket links (admin). Recorded in the audit log.

Example:
  deskside kb delete printer-jams`

const kbLinkHelp = `
Links an article to the ticket it helped with, by the ticket's code, or
removes the link.

Examples:
  deskside kb link printer-jams DS-7K3Q
  deskside kb unlink printer-jams DS-7K3Q`

// kbUnary is unary for the KnowledgeService.
func kbUnary[Resp any](e *runEnv, call func(context.Context, desksidev1.KnowledgeServiceClient) (Resp, error)) (Resp, error) {
	return unaryOn(e, desksidev1.NewKnowledgeServiceClient, call)
}

// kbArgs parses a command taking n positional arguments named by names.
func kbArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != len(names) {
		return nil, errUsage(fs, "expected %s, got %d arguments", strings.Join(names, " "), len(pos))
	}
	return pos, nil
}

// cleanText is Markdown for a terminal: tabs and newlines kept, other
// control characters (escape sequences) dropped.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func stateName(s desksidev1.ArticleState) string {
	if s == desksidev1.ArticleState_ARTICLE_STATE_PUBLISHED {
		return "published"
	}
	return "draft"
}

// splitTags is a --tags value: comma-separated.
func splitTags(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// readArticleFile reads Markdown from a file or, for "-", standard input.
func (e *runEnv) readArticleFile(name string) (string, error) {
	var r io.Reader = e.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", fmt.Errorf("read the article: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxArticleBytes+1))
	if err != nil {
		return "", fmt.Errorf("read the article: %w", err)
	}
	if len(b) > maxArticleBytes {
		return "", fmt.Errorf("%s is over %d KiB, the relay's limit for an article: split it into several", name, maxArticleBytes>>10)
	}
	return string(b), nil
}

func (e *runEnv) writeArticleTable(as []*desksidev1.Article) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLUG\tSTATE\tCATEGORY\tTAGS\tUPDATED\tTITLE")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clean(a.GetSlug()), stateName(a.GetState()), dash(clean(a.GetCategory())),
			dash(clean(strings.Join(a.GetTags(), ","))), fmtTime(a.GetUpdated().AsTime()), clean(a.GetTitle()))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (e *runEnv) kbList(args []string) error {
	fs := e.flags("kb list", kbListHelp)
	category := fs.String("category", "", "only this category")
	tag := fs.String("tag", "", "only articles with this tag")
	drafts := fs.Bool("drafts", false, "only drafts")
	published := fs.Bool("published", false, "only published articles")
	ticket := fs.String("ticket", "", "only the articles linked to this ticket code")
	limit := fs.Int("limit", 50, "at most this many (up to 500)")
	asJSON := fs.Bool("json", false, "print a JSON array of articles")
	if _, err := kbArgs(fs, args); err != nil {
		return err
	}
	if *drafts && *published {
		return errUsage(fs, "--drafts and --published exclude each other")
	}
	var (
		as    []*desksidev1.Article
		total int64
	)
	if *ticket != "" {
		resp, err := kbUnary(e, func(ctx context.Context, kc desksidev1.KnowledgeServiceClient) (*desksidev1.ListArticlesForTicketResponse, error) {
			return kc.ListArticlesForTicket(ctx, &desksidev1.ListArticlesForTicketRequest{Ticket: *ticket})
		})
		if err != nil {
			return err
		}
		as, total = resp.GetArticles(), int64(len(resp.GetArticles()))
	} else {
		req := &desksidev1.ListArticlesRequest{Category: *category, Tag: *tag, Limit: int32(*limit)}
		if *drafts {
			req.State = desksidev1.ArticleState_ARTICLE_STATE_DRAFT
		} else if *published {
			req.State = desksidev1.ArticleState_ARTICLE_STATE_PUBLISHED
		}
		resp, err := kbUnary(e, func(ctx context.Context, kc desksidev1.KnowledgeServiceClient) (*desksidev1.ListArticlesResponse, error) {
			return kc.ListArticles(ctx, req)
		})
		if err != nil {
			return err
		}
		as, total = resp.GetArticles(), resp.GetTotal()
	}
	if *asJSON {
		return writeJSONArray(e.stdout, as)
	}
	if len(as) == 0 {
		_, err := fmt.Fprintln(e.stdout, "No articles. Write one with `deskside kb new --title T --file F.md`.")
		return err
	}
	if err := e.writeArticleTable(as); err != nil {
		return err
	}
	if total > int64(len(as)) {
		fmt.Fprintf(e.stdout, "(%d of %d; raise --limit for more)\n", len(as), total)
	}
	return nil
}

func (e *runEnv) kbShow(args []string) error {
	fs := e.flags("kb show", kbShowHelp)
	html := fs.Bool("html", false, "print the sanitized HTML instead of the Markdown")
	asJSON := fs.Bool("json", false, "print the article as JSON")
	pos, err := kbArgs(fs, args, "SLUG")
	if err != nil {
		return err
	}
	resp, err := kbUnary(e, func(ctx context.Context, kc desksidev1.KnowledgeServiceClient) (*desksidev1.GetArticleResponse, error) {
		return kc.GetArticle(ctx, &desksidev1.GetArticleRequest{Article: &desksidev1.ArticleRef{Slug: pos[0]}})
	})
	if err != nil {
		return err
	}
	a := resp.GetArticle()
	if *asJSON {
		return writeJSON(e.stdout, a)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Title:\t%s\n", clean(a.GetTitle()))
	fmt.Fprintf(tw, "Slug:\t%s\n", clean(a.GetSlug()))
	fmt.Fprintf(tw, "State:\t%s\n", stateName(a.GetState()))
	fmt.Fprintf(tw, "Category:\t%s\n", dash(clean(a.GetCategory())))
	fmt.Fprintf(tw, "Tags:\t%s\n", dash(clean(strings.Join(a.GetTags(), ", "))))
	fmt.Fprintf(tw, "Version:\t%d (by %s, %s)\n", a.GetVersion(), clean(a.GetUpdatedBy()), fmtTime(a.GetUpdated().AsTime()))
	fmt.Fprintf(tw, "Author:\t%s (%s)\n", clean(a.GetAuthor()), fmtTime(a.GetCreated().AsTime()))
	fmt.Fprintf(tw, "Tickets:\t%s\n", dash(clean(strings.Join(a.GetTickets(), ", "))))
	if err := tw.Flush(); err != nil {
		return err
	}
	body := a.GetBodyMarkdown()
	if *html {
		body = a.GetBodyHtml()
	}
	_, err = fmt.Fprintf(e.stdout, "\n%s\n", strings.TrimRight(cleanText(body), "\n"))
	return err
}

func (e *runEnv) kbSearch(args []string) error {
	fs := e.flags("kb search", kbSearchHelp)
	published := fs.Bool("published", false, "only published articles (what users see)")
	category := fs.String("category", "", "only this category")
	limit := fs.Int("limit", 20, "at most this many hits (up to 100)")
	asJSON := fs.Bool("json", false, "print a JSON array of hits")
	words, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		return errUsage(fs, "name the WORDS to search for")
	}
	resp, err := kbUnary(e, func(ctx context.Context, kc desksidev1.KnowledgeServiceClient) (*desksidev1.SearchArticlesResponse, error) {
		return kc.SearchArticles(ctx, &desksidev1.SearchArticlesRequest{Query: strings.Join(words, " "), PublishedOnly: *published, Category: *category, Limit: int32(*limit)})
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSONArray(e.stdout, resp.GetHits())
	}
	if len(resp.GetHits()) == 0 {
		_, err := fmt.Fprintln(e.stdout, "Nothing matches. Try other words, or list the articles with `deskside kb list`.")
		return err
	}
	// Matched words are bold at a terminal and «marked» elsewhere (an
	// article's own Markdown has asterisks).
	open, shut := "«", "»"
	if isTerminalWriter(e.stdout) {
		open, shut = "\x1b[1m", "\x1b[22m"
	}
	for _, h := range resp.GetHits() {
		a := h.GetArticle()
		var snip strings.Builder
		for _, p := range h.GetSnippet() {
			if t := clean(p.GetText()); p.GetMatch() && t != "" {
				snip.WriteString(open + t + shut)
			} else {
				snip.WriteString(t)
			}
		}
		fmt.Fprintf(e.stdout, "%s  %s  [%s]\n", clean(a.GetSlug()), clean(a.GetTitle()), stateName(a.GetState()))
		if s := strings.TrimSpace(snip.String()); s != "" {
			fmt.Fprintf(e.stdout, "    %s\n", s)
		}
	}
	return nil
}

func (e *runEnv) kbNew(args []string) error {
	fs := e.flags("kb new", kbNewHelp)
	title := fs.String("title", "", "the article's title (required)")
	file := fs.String("file", "", "the Markdown file, - for standard input (required)")
	category := fs.String("category", "", "a category")
	tags := fs.String("tags", "", "comma-separated tags")
	if _, err := kbArgs(fs, args); err != nil {
		return err
	}
	if *title == "" || *file == "" {
		return errUsage(fs, "--title and --file are required")
	}
	body, err := e.readArticleFile(*file)
	if err != nil {
		return err
	}
	resp, err := kbUnary(e, func(ctx context.Context, kc desksidev1.KnowledgeServiceClient) (*desksidev1.CreateArticleResponse, error) {
		return kc.CreateArticle(ctx, &desksidev1.CreateArticleRequest{Title: *title, BodyMarkdown: body, Category: *category, Tags: splitTags(*tags)})
	})
	if err != nil {
		return err
	}
	slug := clean(resp.GetArticle().GetSlug())
	_, err = fmt.Fprintf(e.stdout, "Created draft %s. Publish it with `deskside kb publish %s` (tier 2).\n", slug, slug)
	return err
}

func (e *runEnv) kbEdit(args []string) error {
	fs := e.flags("kb edit", kbEditHelp)
	file := fs.String("file", "", "the new Markdown, - for standard input (required)")
	title := fs.String("title", "", "a new title (the slug stays)")
	category := fs.String("category", "", "a new category")
	tags := fs.String("tags", "", "new comma-separated tags (replace the old ones)")
	pos, err := kbArgs(fs, args, "SLUG")
	if err != nil {
		return err
	}
	if *file == "" {
		return errUsage(fs, "--file is required")
	}
	body, err := e.readArticleFile(*file)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	ref := &desksidev1.ArticleRef{Slug: pos[0]}
	resp, err := kbUnary(e, func(ctx context.Context, kc desksidev1.KnowledgeServiceClient) (*desksidev1.UpdateArticleResponse, error) {
		cur, err := kc.GetArticle(ctx, &desksidev1.GetArticleRequest{Article: ref})
		if err != nil {
			return nil, err
		}
		a := cur.GetArticle()
		req := &desksidev1.UpdateArticleRequest{Article: ref, Version: a.GetVersion(), Title: a.GetTitle(),
			BodyMarkdown: body, Category: a.GetCategory(), Tags: a.GetTags()}
		if set["title"] {
			req.Title = *title
		}
		if set["category"] {
			req.Category = *category
		}
		if set["tags"] {
			req.Tags = splitTags(*tags)
		}
		return kc.UpdateArticle(ctx, req)
	})
	if err != nil {
		return err
	}
	a := resp.GetArticle()
	_, err = fmt.Fprintf(e.stdout, "Saved %s, version %d.\n", clean(a.GetSlug()), a.GetVersion())
	return err
}

func (e *runEnv) kbPublish(args []string) error   { return e.kbSetState("kb publish", args, true) }
func (e *runEnv) kbUnpublish(args []string) error { return e.kbSetState("kb unpublish", args, false) }

func (e *runEnv) kbSetState(name string, args []string, publish bool) error {
	fs := e.flags(name, kbStateHelp)
	pos, err := kbArgs(fs, args, "SLUG")
	if err != nil {
		return err
	}
	ref := &desksidev1.ArticleRef{Slug: pos[0]}
	a, err := kbUnary(e, func(ctx context.Context, kc desksidev1.KnowledgeServiceClient) (*desksidev1.Article, error) {
		if publish {
			r, err := kc.PublishArticle(ctx, &desksidev1.PublishArticleRequest{Article: ref})
			return r.GetArticle(), err
		}
		r, err := kc.UnpublishArticle(ctx, &desksidev1.UnpublishArticleRequest{Article: ref})
		return r.GetArticle(), err
	})
	if err != nil {
		return err
	}
	if publish {
		_, err = fmt.Fprintf(e.stdout, "Published %s: users see it on the Get help page.\n", clean(a.GetSlug()))
	} else {
		_, err = fmt.Fprintf(e.stdout, "%s is a draft again: only technicians see it.\n", clean(a.GetSlug()))
	}
	return err
}

func (e *runEnv) kbDelete(args []string) error {
	fs := e.flags("kb delete", kbDeleteHelp)
	pos, err := kbArgs(fs, args, "SLUG")
	if err != nil {
		return err
	}
	if _, err := kbUnary(e, func(ctx context.Context, kc desksidev1.KnowledgeServiceClient) (*desksidev1.DeleteArticleResponse, error) {
		return kc.DeleteArticle(ctx, &desksidev1.DeleteArticleRequest{Article: &desksidev1.ArticleRef{Slug: pos[0]}})
	}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Deleted %s.\n", clean(pos[0]))
	return err
}

func (e *runEnv) kbLink(args []string) error   { return e.kbLinkCmd("kb link", args, true) }
func (e *runEnv) kbUnlink(args []string) error { return e.kbLinkCmd("kb unlink", args, false) }

func (e *runEnv) kbLinkCmd(name string, args []string, link bool) error {
	fs := e.flags(name, kbLinkHelp)
	pos, err := kbArgs(fs, args, "SLUG", "TICKET")
	if err != nil {
		return err
	}
	ref := &desksidev1.ArticleRef{Slug: pos[0]}
	changed, err := kbUnary(e, func(ctx context.Context, kc desksidev1.KnowledgeServiceClient) (bool, error) {
		if link {
			r, err := kc.LinkArticleToTicket(ctx, &desksidev1.LinkArticleToTicketRequest{Article: ref, Ticket: pos[1]})
			return r.GetCreated(), err
		}
		r, err := kc.UnlinkArticleFromTicket(ctx, &desksidev1.UnlinkArticleFromTicketRequest{Article: ref, Ticket: pos[1]})
		return r.GetRemoved(), err
	})
	if err != nil {
		return err
	}
	a, t := clean(pos[0]), clean(strings.ToUpper(pos[1]))
	switch {
	case link && changed:
		_, err = fmt.Fprintf(e.stdout, "Linked %s to %s.\n", a, t)
	case link:
		_, err = fmt.Fprintf(e.stdout, "%s was already linked to %s.\n", a, t)
	case changed:
		_, err = fmt.Fprintf(e.stdout, "Unlinked %s from %s.\n", a, t)
	default:
		err = errors.New(a + " was not linked to " + t + ": see its links with `deskside kb show " + a + "`")
	}
	return err
}
