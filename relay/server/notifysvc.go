package server

// NotificationService: the RPC adapter of relay/notify (admin only). It
// converts, masks secrets and audits every change.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/notify"
	"github.com/deskside/deskside/relay/store"
)

type notifyService struct {
	desksidev1.UnimplementedNotificationServiceServer
	s *Server
}

func notifyErr(err error) error {
	switch {
	case errors.Is(err, notify.ErrInvalid):
		return status.Error(codes.InvalidArgument, strings.TrimPrefix(strings.TrimPrefix(err.Error(), "notify: invalid: "), "notify: "))
	case errors.Is(err, notify.ErrNotConfigured):
		return status.Error(codes.FailedPrecondition, strings.TrimPrefix(err.Error(), "notify: "))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return storeErr(err)
}

func smtpProto(c notify.SMTP) *desksidev1.SmtpSettings {
	c = c.Masked()
	return &desksidev1.SmtpSettings{Host: c.Host, Port: uint32(c.Port), Username: c.Username, Password: c.Password,
		Tls: c.TLS, From: c.From, ReplyTo: c.ReplyTo}
}

// mailConfigured reports whether an SMTP server is set: technicians see on
// each ticket when the requester will not be mailed, while the settings
// themselves stay admin-only.
func (s *Server) mailConfigured(ctx context.Context) (bool, error) {
	_, err := s.notify.SMTPSettings(ctx)
	if errors.Is(err, notify.ErrNotConfigured) {
		return false, nil
	}
	if err != nil {
		return false, notifyErr(err)
	}
	return true, nil
}

// GetSmtp implements NotificationService.GetSmtp.
func (n *notifyService) GetSmtp(ctx context.Context, _ *desksidev1.GetSmtpRequest) (*desksidev1.GetSmtpResponse, error) {
	resp := &desksidev1.GetSmtpResponse{InboundListen: n.s.MailAddr()}
	c, err := n.s.notify.SMTPSettings(ctx)
	if errors.Is(err, notify.ErrNotConfigured) {
		return resp, nil
	}
	if err != nil {
		return nil, notifyErr(err)
	}
	resp.Configured, resp.Smtp = true, smtpProto(c)
	return resp, nil
}

// SetSmtp implements NotificationService.SetSmtp.
func (n *notifyService) SetSmtp(ctx context.Context, req *desksidev1.SetSmtpRequest) (*desksidev1.SetSmtpResponse, error) {
	p := req.GetSmtp()
	c := notify.SMTP{Host: strings.TrimSpace(p.GetHost()), Port: int(p.GetPort()), Username: p.GetUsername(), Password: p.GetPassword(),
		TLS: p.GetTls(), From: p.GetFrom(), ReplyTo: p.GetReplyTo()}
	if c.Host == "" {
		c = notify.SMTP{}
	}
	if err := n.s.notify.SetSMTP(ctx, c); err != nil {
		return nil, notifyErr(err)
	}
	detail := "off"
	if c.Host != "" {
		detail = fmt.Sprintf("%s:%d %s from %s", c.Host, c.Port, c.TLS, c.From)
	}
	n.s.audit(ctx, callerFrom(ctx).Name, "notify.smtp.set", "", detail)
	if c.Host == "" {
		return &desksidev1.SetSmtpResponse{}, nil
	}
	got, err := n.s.notify.SMTPSettings(ctx)
	if err != nil {
		return nil, notifyErr(err)
	}
	return &desksidev1.SetSmtpResponse{Smtp: smtpProto(got)}, nil
}

// TestSmtp implements NotificationService.TestSmtp.
func (n *notifyService) TestSmtp(ctx context.Context, req *desksidev1.TestSmtpRequest) (*desksidev1.TestSmtpResponse, error) {
	n.s.audit(ctx, callerFrom(ctx).Name, "notify.smtp.test", "", req.GetTo())
	if err := n.s.notify.Test(ctx, req.GetTo()); err != nil {
		if errors.Is(err, notify.ErrNotConfigured) || errors.Is(err, notify.ErrInvalid) {
			return nil, notifyErr(err)
		}
		return nil, status.Error(codes.Unavailable, strings.TrimPrefix(err.Error(), "notify: "))
	}
	return &desksidev1.TestSmtpResponse{}, nil
}

// ListWebhooks implements NotificationService.ListWebhooks.
func (n *notifyService) ListWebhooks(ctx context.Context, _ *desksidev1.ListWebhooksRequest) (*desksidev1.ListWebhooksResponse, error) {
	ws, err := n.s.notify.Webhooks(ctx)
	if err != nil {
		return nil, notifyErr(err)
	}
	resp := &desksidev1.ListWebhooksResponse{}
	for _, w := range ws {
		m := w.Masked()
		resp.Webhooks = append(resp.Webhooks, &desksidev1.Webhook{Id: m.ID, Url: m.URL})
	}
	return resp, nil
}

// AddWebhook implements NotificationService.AddWebhook.
func (n *notifyService) AddWebhook(ctx context.Context, req *desksidev1.AddWebhookRequest) (*desksidev1.AddWebhookResponse, error) {
	w, err := n.s.notify.AddWebhook(ctx, req.GetUrl(), req.GetSecret())
	if err != nil {
		return nil, notifyErr(err)
	}
	m := w.Masked()
	n.s.audit(ctx, callerFrom(ctx).Name, "notify.webhook.add", m.ID, m.URL)
	resp := &desksidev1.AddWebhookResponse{Webhook: &desksidev1.Webhook{Id: m.ID, Url: m.URL}}
	if req.GetSecret() == "" {
		resp.Secret = w.Secret
	}
	return resp, nil
}

// RemoveWebhook implements NotificationService.RemoveWebhook.
func (n *notifyService) RemoveWebhook(ctx context.Context, req *desksidev1.RemoveWebhookRequest) (*desksidev1.RemoveWebhookResponse, error) {
	if err := n.s.notify.RemoveWebhook(ctx, req.GetId()); err != nil {
		return nil, notifyErr(err)
	}
	n.s.audit(ctx, callerFrom(ctx).Name, "notify.webhook.remove", req.GetId(), "")
	return &desksidev1.RemoveWebhookResponse{}, nil
}

// ListWebhookDeliveries implements NotificationService.ListWebhookDeliveries.
func (n *notifyService) ListWebhookDeliveries(ctx context.Context, _ *desksidev1.ListWebhookDeliveriesRequest) (*desksidev1.ListWebhookDeliveriesResponse, error) {
	ds, err := n.s.notify.Deliveries(ctx)
	if err != nil {
		return nil, notifyErr(err)
	}
	resp := &desksidev1.ListWebhookDeliveriesResponse{}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, &desksidev1.WebhookDelivery{Id: d.ID, WebhookId: d.Webhook, Event: d.Event, Ticket: d.Ticket,
			Attempts: uint32(d.Attempts), HttpStatus: uint32(d.Status), Error: d.Error, Done: d.Done, Ok: d.OK, Time: timestamppb.New(d.Time)})
	}
	return resp, nil
}

// GetTemplate implements NotificationService.GetTemplate.
func (n *notifyService) GetTemplate(ctx context.Context, req *desksidev1.GetTemplateRequest) (*desksidev1.GetTemplateResponse, error) {
	resp := &desksidev1.GetTemplateResponse{Name: req.GetName(), Names: notify.Templates}
	if req.GetName() == "" {
		return resp, nil
	}
	text, def, err := n.s.notify.Template(ctx, req.GetName())
	if err != nil {
		return nil, notifyErr(err)
	}
	resp.Text, resp.IsDefault = text, def
	return resp, nil
}

// SetTemplate implements NotificationService.SetTemplate.
func (n *notifyService) SetTemplate(ctx context.Context, req *desksidev1.SetTemplateRequest) (*desksidev1.SetTemplateResponse, error) {
	if err := n.s.notify.SetTemplate(ctx, req.GetName(), req.GetText()); err != nil {
		return nil, notifyErr(err)
	}
	detail := fmt.Sprintf("%d bytes", len(req.GetText()))
	if req.GetText() == "" {
		detail = "default restored"
	}
	n.s.audit(ctx, callerFrom(ctx).Name, "notify.template.set", req.GetName(), detail)
	return &desksidev1.SetTemplateResponse{}, nil
}

// SetTechnicianEmail implements NotificationService.SetTechnicianEmail.
func (n *notifyService) SetTechnicianEmail(ctx context.Context, req *desksidev1.SetTechnicianEmailRequest) (*desksidev1.SetTechnicianEmailResponse, error) {
	email, err := notify.CleanEmail(req.GetEmail())
	if err != nil {
		return nil, notifyErr(err)
	}
	_, err = n.s.store.EditTechnician(ctx, req.GetTechnician(), func(t *store.Technician) error {
		t.Email = email
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "no technician %q (`deskside technician list`)", req.GetTechnician())
	}
	if err != nil {
		return nil, storeErr(err)
	}
	n.s.audit(ctx, callerFrom(ctx).Name, "technician.email", req.GetTechnician(), email)
	return &desksidev1.SetTechnicianEmailResponse{}, nil
}

func outboxProto(it notify.QueueItem) *desksidev1.OutboxItem {
	p := &desksidev1.OutboxItem{Id: it.ID, Kind: it.Kind, State: it.Status, Recipient: it.Target, Ticket: it.Ticket, Event: it.Event,
		Template: it.Template, Attempts: uint32(it.Attempts), LastError: it.LastError,
		Created: timestamppb.New(it.CreatedAt), Updated: timestamppb.New(it.UpdatedAt)}
	if it.Status == store.OutboxPending {
		p.NextAttempt = timestamppb.New(it.NextAt)
	}
	return p
}

// ListOutbox implements NotificationService.ListOutbox.
func (n *notifyService) ListOutbox(ctx context.Context, req *desksidev1.ListOutboxRequest) (*desksidev1.ListOutboxResponse, error) {
	items, err := n.s.notify.Queue(ctx, req.GetKind(), req.GetStates())
	if err != nil {
		return nil, notifyErr(err)
	}
	resp := &desksidev1.ListOutboxResponse{}
	for _, it := range items {
		resp.Items = append(resp.Items, outboxProto(it))
	}
	return resp, nil
}

// RetryOutbox implements NotificationService.RetryOutbox.
func (n *notifyService) RetryOutbox(ctx context.Context, req *desksidev1.RetryOutboxRequest) (*desksidev1.RetryOutboxResponse, error) {
	it, err := n.s.notify.Retry(ctx, req.GetId())
	if errors.Is(err, notify.ErrNoItem) {
		return nil, status.Errorf(codes.NotFound, "no failed outbox item %d (`deskside notify queue --failed`)", req.GetId())
	}
	if err != nil {
		return nil, notifyErr(err)
	}
	n.s.audit(ctx, callerFrom(ctx).Name, "notify.outbox.retry", strconv.FormatInt(it.ID, 10),
		fmt.Sprintf("%s %s for %s (%s)", it.Kind, it.Event, it.Ticket, it.LastError))
	return &desksidev1.RetryOutboxResponse{Item: outboxProto(it)}, nil
}
