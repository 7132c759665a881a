package server

// The knowledge base (relay/kb): the RPC adapter of KnowledgeService,
// with the audit of every change. Who may call what is in Rules
// (authz.go): reading and writing tier 1, publishing tier 2, deleting
// admin.

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/kb"
	"github.com/deskside/deskside/relay/store"
)

type kbService struct {
	desksidev1.UnimplementedKnowledgeServiceServer
	s *Server
}

// kbErr is the console status of a kb error; name is how the caller
// named the article, for the hints.
func kbErr(err error, name string) error {
	switch {
	case errors.Is(err, kb.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, kb.ErrNotFound):
		return status.Errorf(codes.NotFound, "no article %s: list them with `deskside kb list` or search with `deskside kb search WORDS`", name)
	case errors.Is(err, kb.ErrConflict):
		return status.Errorf(codes.Aborted, "article %s was changed by someone else since you opened it: reload it (`deskside kb show %s`), apply your change again and save", name, name)
	}
	return storeErr(err)
}

// refName is how a request names an article, for messages.
func refName(r *desksidev1.ArticleRef) string {
	if r.GetId() != 0 {
		return fmt.Sprintf("#%d", r.GetId())
	}
	return fmt.Sprintf("%q", r.GetSlug())
}

// resolve finds the article a request names.
func (k *kbService) resolve(ctx context.Context, r *desksidev1.ArticleRef) (store.Article, error) {
	if r.GetId() == 0 && r.GetSlug() == "" {
		return store.Article{}, status.Error(codes.InvalidArgument, "name an article by id or slug (see `deskside kb list`)")
	}
	a, err := k.s.kb.Get(ctx, r.GetId(), r.GetSlug())
	if err != nil {
		return store.Article{}, kbErr(err, refName(r))
	}
	return a, nil
}

// articlePB is a as the RPC returns it; full adds the body, its HTML and
// tickets.
func articlePB(a store.Article, full bool, tickets []string) *desksidev1.Article {
	p := &desksidev1.Article{
		Id: a.ID, Slug: a.Slug, Title: a.Title, Category: a.Category, Tags: a.Tags,
		State: desksidev1.ArticleState_ARTICLE_STATE_DRAFT, Version: a.Version,
		Author: a.Author, UpdatedBy: a.UpdatedBy,
		Created: timestamppb.New(a.Created), Updated: timestamppb.New(a.Updated),
	}
	if a.Published {
		p.State = desksidev1.ArticleState_ARTICLE_STATE_PUBLISHED
	}
	if !a.PublishedAt.IsZero() {
		p.Published = timestamppb.New(a.PublishedAt)
	}
	if full {
		p.BodyMarkdown, p.BodyHtml, p.Tickets = a.Body, kb.Render(a.Body), tickets
	}
	return p
}

func articlesPB(as []store.Article) []*desksidev1.Article {
	out := make([]*desksidev1.Article, len(as))
	for i, a := range as {
		out[i] = articlePB(a, false, nil)
	}
	return out
}

// full returns the article with its tickets.
func (k *kbService) full(ctx context.Context, a store.Article) (*desksidev1.Article, error) {
	tickets, err := k.s.kb.Tickets(ctx, a.ID)
	if err != nil {
		return nil, storeErr(err)
	}
	p := articlePB(a, true, tickets)
	if p.Helped, err = k.s.store.ArticleHelpedCount(ctx, a.ID); err != nil {
		return nil, storeErr(err)
	}
	return p, nil
}

// CreateArticle implements KnowledgeService.CreateArticle.
func (k *kbService) CreateArticle(ctx context.Context, req *desksidev1.CreateArticleRequest) (*desksidev1.CreateArticleResponse, error) {
	me := callerFrom(ctx).Name
	a, err := k.s.kb.Create(ctx, me, kb.Content{Title: req.GetTitle(), Body: req.GetBodyMarkdown(), Category: req.GetCategory(), Tags: req.GetTags()})
	if err != nil {
		return nil, kbErr(err, fmt.Sprintf("%q", req.GetTitle()))
	}
	k.s.audit(ctx, me, "kb.create", a.Slug, fmt.Sprintf("article #%d %q, %d bytes", a.ID, a.Title, len(a.Body)))
	p, err := k.full(ctx, a)
	if err != nil {
		return nil, err
	}
	return &desksidev1.CreateArticleResponse{Article: p}, nil
}

// UpdateArticle implements KnowledgeService.UpdateArticle.
func (k *kbService) UpdateArticle(ctx context.Context, req *desksidev1.UpdateArticleRequest) (*desksidev1.UpdateArticleResponse, error) {
	me := callerFrom(ctx).Name
	cur, err := k.resolve(ctx, req.GetArticle())
	if err != nil {
		return nil, err
	}
	if req.GetVersion() <= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "name the version you edited (article %s is at version %d; see `deskside kb show %s`)", cur.Slug, cur.Version, cur.Slug)
	}
	a, err := k.s.kb.Update(ctx, me, cur.ID, req.GetVersion(), kb.Content{Title: req.GetTitle(), Body: req.GetBodyMarkdown(), Category: req.GetCategory(), Tags: req.GetTags()})
	if err != nil {
		return nil, kbErr(err, cur.Slug)
	}
	k.s.audit(ctx, me, "kb.update", a.Slug, fmt.Sprintf("article #%d %q, version %d, %d bytes", a.ID, a.Title, a.Version, len(a.Body)))
	p, err := k.full(ctx, a)
	if err != nil {
		return nil, err
	}
	return &desksidev1.UpdateArticleResponse{Article: p}, nil
}

// GetArticle implements KnowledgeService.GetArticle.
func (k *kbService) GetArticle(ctx context.Context, req *desksidev1.GetArticleRequest) (*desksidev1.GetArticleResponse, error) {
	a, err := k.resolve(ctx, req.GetArticle())
	if err != nil {
		return nil, err
	}
	p, err := k.full(ctx, a)
	if err != nil {
		return nil, err
	}
	return &desksidev1.GetArticleResponse{Article: p}, nil
}

// ListArticles implements KnowledgeService.ListArticles.
func (k *kbService) ListArticles(ctx context.Context, req *desksidev1.ListArticlesRequest) (*desksidev1.ListArticlesResponse, error) {
	f := store.ArticleFilter{Category: req.GetCategory(), Tag: req.GetTag(), Limit: clampLimit(req.GetLimit(), 50, 500), Offset: max(int(req.GetOffset()), 0)}
	switch req.GetState() {
	case desksidev1.ArticleState_ARTICLE_STATE_DRAFT:
		f.Published = new(bool)
	case desksidev1.ArticleState_ARTICLE_STATE_PUBLISHED:
		t := true
		f.Published = &t
	}
	as, total, err := k.s.kb.List(ctx, f)
	if err != nil {
		return nil, kbErr(err, "")
	}
	return &desksidev1.ListArticlesResponse{Articles: articlesPB(as), Total: total}, nil
}

// SearchArticles implements KnowledgeService.SearchArticles.
func (k *kbService) SearchArticles(ctx context.Context, req *desksidev1.SearchArticlesRequest) (*desksidev1.SearchArticlesResponse, error) {
	hits, err := k.s.kb.Search(ctx, req.GetQuery(), req.GetPublishedOnly(), req.GetCategory(), clampLimit(req.GetLimit(), 20, 100))
	if err != nil {
		return nil, kbErr(err, "")
	}
	out := &desksidev1.SearchArticlesResponse{}
	for _, h := range hits {
		ph := &desksidev1.ArticleHit{Article: articlePB(h.Article, false, nil), Score: h.Score}
		for _, p := range h.Snippet {
			ph.Snippet = append(ph.Snippet, &desksidev1.SnippetPart{Text: p.Text, Match: p.Match})
		}
		out.Hits = append(out.Hits, ph)
	}
	return out, nil
}

// setPublished is PublishArticle and UnpublishArticle.
func (k *kbService) setPublished(ctx context.Context, ref *desksidev1.ArticleRef, published bool) (*desksidev1.Article, error) {
	me := callerFrom(ctx).Name
	cur, err := k.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	a, err := k.s.kb.SetPublished(ctx, me, cur.ID, published)
	if err != nil {
		return nil, kbErr(err, cur.Slug)
	}
	action := "kb.publish"
	if !published {
		action = "kb.unpublish"
	}
	k.s.audit(ctx, me, action, a.Slug, fmt.Sprintf("article #%d %q, version %d", a.ID, a.Title, a.Version))
	return k.full(ctx, a)
}

// PublishArticle implements KnowledgeService.PublishArticle.
func (k *kbService) PublishArticle(ctx context.Context, req *desksidev1.PublishArticleRequest) (*desksidev1.PublishArticleResponse, error) {
	p, err := k.setPublished(ctx, req.GetArticle(), true)
	if err != nil {
		return nil, err
	}
	return &desksidev1.PublishArticleResponse{Article: p}, nil
}

// UnpublishArticle implements KnowledgeService.UnpublishArticle.
func (k *kbService) UnpublishArticle(ctx context.Context, req *desksidev1.UnpublishArticleRequest) (*desksidev1.UnpublishArticleResponse, error) {
	p, err := k.setPublished(ctx, req.GetArticle(), false)
	if err != nil {
		return nil, err
	}
	return &desksidev1.UnpublishArticleResponse{Article: p}, nil
}

// DeleteArticle implements KnowledgeService.DeleteArticle.
func (k *kbService) DeleteArticle(ctx context.Context, req *desksidev1.DeleteArticleRequest) (*desksidev1.DeleteArticleResponse, error) {
	me := callerFrom(ctx).Name
	cur, err := k.resolve(ctx, req.GetArticle())
	if err != nil {
		return nil, err
	}
	if err := k.s.kb.Delete(ctx, cur.ID); err != nil {
		return nil, kbErr(err, cur.Slug)
	}
	k.s.audit(ctx, me, "kb.delete", cur.Slug, fmt.Sprintf("article #%d %q, version %d", cur.ID, cur.Title, cur.Version))
	return &desksidev1.DeleteArticleResponse{}, nil
}

// LinkArticleToTicket implements KnowledgeService.LinkArticleToTicket.
func (k *kbService) LinkArticleToTicket(ctx context.Context, req *desksidev1.LinkArticleToTicketRequest) (*desksidev1.LinkArticleToTicketResponse, error) {
	me := callerFrom(ctx).Name
	cur, err := k.resolve(ctx, req.GetArticle())
	if err != nil {
		return nil, err
	}
	code, created, err := k.s.kb.Link(ctx, me, cur.ID, req.GetTicket())
	if err != nil {
		return nil, kbErr(err, cur.Slug)
	}
	if created {
		k.s.audit(ctx, me, "kb.link", cur.Slug, "ticket "+code)
	}
	return &desksidev1.LinkArticleToTicketResponse{Created: created}, nil
}

// UnlinkArticleFromTicket implements KnowledgeService.UnlinkArticleFromTicket.
func (k *kbService) UnlinkArticleFromTicket(ctx context.Context, req *desksidev1.UnlinkArticleFromTicketRequest) (*desksidev1.UnlinkArticleFromTicketResponse, error) {
	me := callerFrom(ctx).Name
	cur, err := k.resolve(ctx, req.GetArticle())
	if err != nil {
		return nil, err
	}
	code, removed, err := k.s.kb.Unlink(ctx, cur.ID, req.GetTicket())
	if err != nil {
		return nil, kbErr(err, cur.Slug)
	}
	if removed {
		k.s.audit(ctx, me, "kb.unlink", cur.Slug, "ticket "+code)
	}
	return &desksidev1.UnlinkArticleFromTicketResponse{Removed: removed}, nil
}

// ListArticlesForTicket implements KnowledgeService.ListArticlesForTicket.
func (k *kbService) ListArticlesForTicket(ctx context.Context, req *desksidev1.ListArticlesForTicketRequest) (*desksidev1.ListArticlesForTicketResponse, error) {
	as, err := k.s.kb.ForTicket(ctx, req.GetTicket())
	if err != nil {
		return nil, kbErr(err, "")
	}
	return &desksidev1.ListArticlesForTicketResponse{Articles: articlesPB(as)}, nil
}

// RenderPreview implements KnowledgeService.RenderPreview: the editor's
// preview, rendered exactly as a saved article would be.
func (k *kbService) RenderPreview(ctx context.Context, req *desksidev1.RenderPreviewRequest) (*desksidev1.RenderPreviewResponse, error) {
	if n := len(req.GetBodyMarkdown()); n > kb.MaxBody {
		return nil, status.Errorf(codes.InvalidArgument, "the body is %d bytes, at most %d are allowed", n, kb.MaxBody)
	}
	return &desksidev1.RenderPreviewResponse{BodyHtml: kb.Render(req.GetBodyMarkdown())}, nil
}
