package server

// Get help: the adapter of relay/helprequests on the agent stream (the
// device is the one its certificate names), the technician's chat
// (TicketService.SendChat) and the pushes of ticket changes to the device
// a request was filed from, through the bus (the agent may hold its
// stream on another relay).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/bus"
	"github.com/deskside/deskside/relay/helprequests"
	"github.com/deskside/deskside/relay/notify"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/tickets"
)

// helpRequest answers one Get help request of the agent. A refusal is an
// Ack with a code and a message the tray can show; the stream goes on.
func (c *agentConn) helpRequest(m *desksidev1.AgentMessage) error {
	s := c.s
	ctx := context.WithoutCancel(c.ctx)
	id := m.GetId()
	var (
		reply *desksidev1.RelayMessage
		err   error
		kind  string
	)
	switch b := m.Body.(type) {
	case *desksidev1.AgentMessage_FileHelpRequest:
		kind = "help request"
		var f helprequests.Filed
		f, err = s.help.File(ctx, c.id, b.FileHelpRequest)
		if f.Ticket.Code != "" {
			// Filed, even if not all of it was kept: the queue and the
			// audit log learn of it either way.
			login := b.FileHelpRequest.GetUser().GetLogin()
			detail := fmt.Sprintf("%q by local user %q on device %s; %s", f.Ticket.Subject, login, c.id, yesNo(f.Screenshot, "screenshot", "no screenshot"))
			if f.Triage {
				detail += ", triage report"
			}
			if pe := (*helprequests.PartialError)(nil); errors.As(err, &pe) {
				detail += fmt.Sprintf("; not kept with the user's requests: %v", pe.Cause)
			}
			s.audit(ctx, "device:"+c.id, "helprequest.file", f.Ticket.Code, detail)
			s.notify.Ticket(ctx, notify.Event{
				Action: "ticket.create", Code: f.Ticket.Code, Subject: f.Ticket.Subject, RequesterName: f.Ticket.RequesterName,
				RequesterEmail: f.Ticket.RequesterEmail, Status: tickets.StatusName(f.Ticket.Status), Tier: f.Ticket.Tier,
				Actor: "requester", Time: s.cfg.Now(),
			})
			s.ticketChanged(ctx, ticketCreated, f.Ticket.Code)
		}
		if err == nil {
			reply = &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_HelpRequestFiled{HelpRequestFiled: &desksidev1.HelpRequestFiled{
				Code: f.Ticket.Code, Request: f.Request}}}
		}
	case *desksidev1.AgentMessage_SearchHelpArticles:
		kind = "article search"
		var as *desksidev1.HelpArticles
		if as, err = s.help.Search(ctx, c.id, b.SearchHelpArticles); err == nil {
			reply = &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_HelpArticles{HelpArticles: as}}
		}
	case *desksidev1.AgentMessage_ArticleHelped:
		kind = "article helped"
		var n int64
		if n, err = s.help.Helped(ctx, c.id, b.ArticleHelped); err == nil {
			s.audit(ctx, "device:"+c.id, "kb.article_helped", fmt.Sprint(b.ArticleHelped.GetArticleId()),
				fmt.Sprintf("local user %q said it solved their problem (%d so far)", b.ArticleHelped.GetUser().GetLogin(), n))
			return c.ack(id, &desksidev1.Ack{Accepted: true})
		}
	case *desksidev1.AgentMessage_ListMyRequests:
		kind = "my requests"
		var rs *desksidev1.MyRequests
		if rs, err = s.help.List(ctx, c.id, b.ListMyRequests); err == nil {
			reply = &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_MyRequests{MyRequests: rs}}
		}
	case *desksidev1.AgentMessage_ReplyToRequest:
		kind = "reply"
		r := b.ReplyToRequest
		var (
			t    store.Ticket
			view *desksidev1.MyRequest
		)
		if t, view, err = s.help.Reply(ctx, c.id, r); err == nil {
			what := "helprequest.reply"
			if r.GetChat() {
				what = "helprequest.chat"
			}
			s.audit(ctx, "device:"+c.id, what, t.Code, fmt.Sprintf("local user %q, %d bytes", r.GetLogin(), len(r.GetText())))
			s.ticketChanged(ctx, ticketUpdated, t.Code)
			if !r.GetChat() {
				s.notify.Ticket(ctx, notify.Event{
					Action: "ticket.reply.email", Code: t.Code, Subject: t.Subject, RequesterName: t.RequesterName,
					Status: tickets.StatusName(t.Status), Tier: t.Tier, Assignee: t.Assignee, Actor: "requester", Text: r.GetText(), Time: s.cfg.Now(),
				})
			}
			reply = &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_MyRequests{MyRequests: &desksidev1.MyRequests{Requests: []*desksidev1.MyRequest{view}}}}
		}
	}
	if err != nil {
		return c.helpRefused(id, kind, err)
	}
	s.metrics.messages.WithLabelValues("help").Inc()
	reply.RefId = id
	return c.send(reply)
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// helpRefused answers a Get help request the relay refused.
func (c *agentConn) helpRefused(ref uint64, kind string, err error) error {
	a := &desksidev1.Ack{Error: &desksidev1.AckError{Message: kind + ": " + err.Error()}}
	var le *helprequests.LimitError
	switch {
	case errors.As(err, &le):
		a.Error.Code = desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED
		a.RetryAfter = durationpb.New(le.RetryAfter)
	case errors.Is(err, helprequests.ErrTooLarge):
		a.Error.Code = desksidev1.AckErrorCode_ACK_ERROR_CODE_TOO_LARGE
	case errors.Is(err, helprequests.ErrInvalid):
		a.Error.Code = desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID
	case errors.Is(err, helprequests.ErrNotFound):
		a.Error.Code = desksidev1.AckErrorCode_ACK_ERROR_CODE_NOT_FOUND
	case errors.Is(err, helprequests.ErrState):
		a.Error.Code = desksidev1.AckErrorCode_ACK_ERROR_CODE_REFUSED
	case errors.Is(err, helprequests.ErrPartial):
		var pe *helprequests.PartialError
		errors.As(err, &pe)
		c.s.log.Error("help request filed in part", logKeyDevice, c.id, "ticket", pe.Code, logKeyError, pe.Cause)
		a.Error.Code = desksidev1.AckErrorCode_ACK_ERROR_CODE_UNAVAILABLE
	default:
		c.s.log.Error("help request failed", logKeyDevice, c.id, "kind", kind, logKeyError, err)
		a.Error.Code = desksidev1.AckErrorCode_ACK_ERROR_CODE_UNAVAILABLE
		a.Error.Message = kind + ": the relay could not store or read it right now; try again in a minute"
	}
	c.s.metrics.rejected.WithLabelValues(strings.ToLower(strings.TrimPrefix(a.Error.Code.String(), "ACK_ERROR_CODE_"))).Inc()
	c.s.log.Warn("help request refused", logKeyDevice, c.id, "kind", kind, logKeyError, err)
	return c.ack(ref, a)
}

// SendChat implements TicketService.SendChat.
func (c *ticketService) SendChat(ctx context.Context, req *desksidev1.SendChatRequest) (*desksidev1.SendChatResponse, error) {
	if err := c.scoped(ctx, "ticket.chat", req.GetCode()); err != nil {
		return nil, err
	}
	t, err := c.s.tickets.Chat(ctx, actorOf(ctx), req.GetCode(), req.GetText())
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.chat", req.GetCode(), err)
	}
	p, err := c.changedText(ctx, "ticket.chat", t, fmt.Sprintf("%d bytes", len(req.GetText())), req.GetText())
	if err != nil {
		return nil, err
	}
	return &desksidev1.SendChatResponse{Ticket: p}, nil
}

// ListTicketAttachments implements TicketService.ListTicketAttachments.
func (c *ticketService) ListTicketAttachments(ctx context.Context, req *desksidev1.ListTicketAttachmentsRequest) (*desksidev1.ListTicketAttachmentsResponse, error) {
	if err := c.scoped(ctx, "ticket.attachments", req.GetCode()); err != nil {
		return nil, err
	}
	t, err := c.s.tickets.Lookup(ctx, req.GetCode())
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.attachments", req.GetCode(), err)
	}
	as, err := c.s.store.TicketAttachments(ctx, t.Code, req.GetWithData())
	if err != nil {
		return nil, storeErr(err)
	}
	out := &desksidev1.ListTicketAttachmentsResponse{}
	for _, a := range as {
		out.Attachments = append(out.Attachments, &desksidev1.TicketAttachment{
			Id: a.ID, Name: a.Name, ContentType: a.ContentType, Size: a.Size, CreatedAt: timestamppb.New(a.CreatedAt), Data: a.Data})
	}
	return out, nil
}

// helpPushKinds are the ticket changes a request's user is told about,
// with the kind of timeline entry each adds ("" for none).
var helpPushKinds = map[string]string{
	"ticket.reply":  "reply",
	"ticket.chat":   "chat",
	"ticket.status": "status",
	"ticket.assign": "",
}

// helpPusher sends ticket changes to devices one at a time, in the order
// they happened on this relay.
type helpPusher struct {
	once sync.Once
	ch   chan helpPush
}

type helpPush struct {
	code, kind string
}

// helpPushTimeout bounds one push to an agent.
const helpPushTimeout = 10 * time.Second

// helpChanged queues a push to the device a Get help ticket was filed
// from, when action is one its user is told about.
func (s *Server) helpChanged(action string, t store.Ticket) {
	kind, ok := helpPushKinds[action]
	if !ok || t.DeviceID == "" {
		return
	}
	p := &s.helpPushes
	p.once.Do(func() {
		p.ch = make(chan helpPush, 1024)
		go s.runHelpPushes(p.ch)
	})
	select {
	case p.ch <- helpPush{code: t.Code, kind: kind}:
	default:
		s.log.Warn("help update not pushed: too many waiting; the user sees it in My requests", "ticket", t.Code)
	}
}

func (s *Server) runHelpPushes(ch chan helpPush) {
	for {
		select {
		case <-s.closeCtx.Done():
			return
		case p := <-ch:
			if err := s.pushHelp(p); err != nil {
				s.log.Info("help update not pushed; the user sees it in My requests", "ticket", p.code, logKeyError, err)
			}
		}
	}
}

// pushHelp sends the request's current state, with the newest entry of
// the kind that changed, to its device.
func (s *Server) pushHelp(p helpPush) error {
	ctx, cancel := context.WithTimeout(s.closeCtx, helpPushTimeout)
	defer cancel()
	h, err := s.store.HelpRequest(ctx, p.code)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not filed through Get help
	} else if err != nil {
		return err
	}
	t, es, err := s.tickets.Get(ctx, p.code)
	if err != nil {
		return err
	}
	u := &desksidev1.HelpUpdate{Login: h.Login, Request: helprequests.View(t, es)}
	if p.kind != "" {
		for _, e := range slices.Backward(u.Request.GetEntries()) {
			if e.GetKind() == p.kind && !e.GetFromUser() {
				u.Entry = e
				break
			}
		}
	}
	m, err := bus.Request(ctx, s.bus, h.DeviceID, &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_HelpUpdate{HelpUpdate: u}})
	if err != nil {
		return err
	}
	if e := m.GetError(); e != nil {
		return fmt.Errorf("agent: %s", e.GetMessage())
	}
	return nil
}
