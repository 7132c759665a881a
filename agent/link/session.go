package link

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// healthRetry is how long the agent waits before re-sending health samples
// the relay could not store (Ack with UNAVAILABLE).
const healthRetry = 5 * time.Second

// session runs one Connect stream, in named steps: hello (Hello, then
// Welcome), sendInventory and sendHealth at start, then serve, which
// handles acknowledgements (handleAck) and relay requests (dispatch) and
// re-sends health and inventory when they change. The stream's first
// error, a failed Send included, ends the session; Run reconnects, and
// health samples not acknowledged are still in the spool.
type session struct {
	l   *Link
	ctx context.Context
	st  desksidev1.AgentService_ConnectClient

	// msgs and recvErr carry what the receiver goroutine reads; recvDone
	// closes when it has returned.
	msgs     chan *desksidev1.RelayMessage
	recvErr  chan error
	recvDone chan struct{}
	// failed carries the first failed Send of a request goroutine.
	failed chan error

	sendMu sync.Mutex
	nextID uint64 // guarded by sendMu

	// The fields below belong to the serve loop.
	health  *inflightHealth   // the health report awaiting its Ack
	invMsgs map[uint64][]byte // inventory message id → fingerprint
	retry   *time.Timer       // re-sends health the relay could not store
	// holdUntil is when health may be sent again after the relay asked
	// the agent to wait (UNAVAILABLE, RATE_LIMITED); new samples wait in
	// the spool meanwhile.
	holdUntil time.Time
	// limited counts RATE_LIMITED answers in a row (the wait grows).
	limited int
	reqs    *requests
	// peer is the relay end of the stream (its TLS chain); nil when unknown.
	peer *peer.Peer
	// renew fires when the device certificate is due for renewal; renewing
	// is the RenewCertificate awaiting its answer.
	renew    *time.Timer
	renewing *pendingRenewal
	// trustSent is the endpoint trust last reported on this stream and
	// trustMsg the message that carried it (trust.go).
	trustSent *desksidev1.EndpointTrust
	trustMsg  uint64
	// dl is the update being downloaded (update.go).
	dl *download
}

// pendingRenewal is a RenewCertificate awaiting the relay's answer.
type pendingRenewal struct {
	msgID uint64
	key   crypto.Signer
}

// errRenewed ends a session whose certificate was renewed: Run reconnects
// at once with the new one, which confirms it to the relay.
var errRenewed = errors.New("device certificate renewed")

// inflightHealth is the one health report awaiting its Ack.
type inflightHealth struct {
	msgID   uint64
	upTo    uint64
	dropped uint64
}

// sendError is a failed Send: which message, and why.
type sendError struct {
	kind string
	err  error
}

func (e *sendError) Error() string { return "sending " + e.kind + " to the relay: " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// session runs one Connect stream. healthy reports whether it got as far
// as Welcome (which resets the backoff).
func (l *Link) session(ctx context.Context, client desksidev1.AgentServiceClient) (healthy bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := client.Connect(ctx, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	s := newSession(ctx, l, st)
	if p, ok := peer.FromContext(st.Context()); ok {
		s.peer = p
	}
	go s.receive()
	// The receiver and the requests that take time (checks, commands,
	// actions), each in a goroutine of its own, are owned by this session:
	// it cancels them and waits for them.
	defer func() {
		cancel()
		s.reqs.stop()
		<-s.recvDone
	}()

	if err := s.hello(); err != nil {
		return false, err
	}
	l.connected.Store(true)
	l.help.attach(s)
	defer l.help.detach(s)
	return true, s.serve()
}

func newSession(ctx context.Context, l *Link, st desksidev1.AgentService_ConnectClient) *session {
	return &session{
		l: l, ctx: ctx, st: st,
		msgs:     make(chan *desksidev1.RelayMessage),
		recvErr:  make(chan error, 1),
		recvDone: make(chan struct{}),
		failed:   make(chan error, 1),
		invMsgs:  map[uint64][]byte{},
		reqs:     newRequests(ctx),
	}
}

// receive reads the stream until it ends; it is the only caller of Recv.
func (s *session) receive() {
	defer close(s.recvDone)
	for {
		m, err := s.st.Recv()
		if err != nil {
			s.recvErr <- err
			return
		}
		select {
		case s.msgs <- m:
		case <-s.ctx.Done():
			return
		}
	}
}

// next returns the next relay message, or why the stream ended.
func (s *session) next() (*desksidev1.RelayMessage, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case err := <-s.recvErr:
		return nil, err
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

// hello says Hello and waits for Welcome, applying the health interval the
// relay asks for.
func (s *session) hello() error {
	l := s.l
	if _, err := s.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{
		ProtocolVersion: wire.ProtocolVersion, AgentVersion: l.cfg.Version, Hostname: l.cfg.Hostname,
		Os: runtime.GOOS, Arch: runtime.GOARCH, EndpointTrust: s.endpointTrust(), LastUpdate: l.lastUpdate(),
	}}}); err != nil {
		return s.ended(err)
	}
	first, err := s.next()
	if err != nil {
		return err
	}
	w := first.GetWelcome()
	if w == nil {
		return fmt.Errorf("relay answered Hello with %T, not Welcome", first.GetBody())
	}
	if d := w.GetHealthInterval().AsDuration(); d >= 50*time.Millisecond && d != time.Duration(l.interval.Load()) {
		l.interval.Store(int64(d))
		select {
		case l.retune <- struct{}{}:
		default:
		}
	}
	l.log.Info("connected to relay", "relay", l.cfg.State.Relay, "device", w.GetDeviceId())
	s.trust(w.GetTrustedCaDer())
	if l.cfg.OnConnected != nil {
		l.cfg.OnConnected()
	}
	return nil
}

// trust pins the CAs the relay sent in Welcome (CA rotation), when this
// stream's chain verifies under them; the next connection uses them.
func (s *session) trust(cas [][]byte) {
	l := s.l
	if s.peer == nil || len(cas) == 0 {
		return // an older relay
	}
	ti, ok := s.peer.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return // no TLS (in-package tests) or an older relay
	}
	host, _, _ := net.SplitHostPort(l.cfg.State.Relay)
	changed, err := l.cfg.State.SetTrusted(cas, ti.State.PeerCertificates, host)
	if err != nil {
		l.log.Error("relay sent CAs this agent cannot pin; keeping the pinned ones (if the relay was rotated, re-enroll with --force)", "err", err)
		return
	}
	if changed {
		l.redial = true
		l.log.Info("pinned the relay's CAs", "count", len(cas))
	}
}

// scheduleRenewal sets the renewal timer: at RenewAt, or at once when the
// certificate is due or was not issued by the relay's active CA (the
// first one the relay sent; after a CA rotation).
func (s *session) scheduleRenewal() {
	st := s.l.cfg.State
	if st.Cert.Leaf == nil {
		return
	}
	at := st.RenewAt()
	if len(st.CAs) > 0 && !st.IssuedBy(st.CAs[0]) {
		at = time.Time{}
	}
	s.renew.Reset(max(time.Until(at), 0))
}

// startRenewal sends a RenewCertificate with a CSR for a new key.
func (s *session) startRenewal() error {
	if s.renewing != nil {
		return nil
	}
	key, csr, err := s.l.cfg.State.NewCSR()
	if err != nil {
		s.l.log.Error("certificate renewal: cannot create a CSR; will retry", "err", err)
		s.renew.Reset(s.l.cfg.RenewRetry)
		return nil
	}
	id, err := s.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_RenewCertificate{RenewCertificate: &desksidev1.RenewCertificate{CsrDer: csr}}})
	if err != nil {
		return err
	}
	s.renewing = &pendingRenewal{msgID: id, key: key}
	s.l.log.Info("asked the relay to renew the device certificate", "expires", s.l.cfg.State.Cert.Leaf.NotAfter)
	return nil
}

// renewed installs the certificate the relay renewed and ends the session
// (errRenewed) so that Run reconnects with it.
func (s *session) renewed(ref uint64, r *desksidev1.CertificateRenewed) error {
	if s.renewing == nil || ref != s.renewing.msgID {
		return nil
	}
	key := s.renewing.key
	s.renewing = nil
	if err := s.l.cfg.State.Renewed(r.GetCertificateDer(), key); err != nil {
		s.l.log.Error("certificate renewal: the relay's certificate was not installed; will retry", "err", err)
		s.renew.Reset(s.l.cfg.RenewRetry)
		return nil
	}
	s.l.redial = true
	return errRenewed
}

// serve sends the inventory and the spooled health, then handles the
// stream until it ends.
func (s *session) serve() error {
	s.retry = time.NewTimer(time.Hour)
	s.retry.Stop()
	defer s.retry.Stop()
	invTick := time.NewTicker(s.l.cfg.InventoryInterval)
	defer invTick.Stop()
	trustTick := time.NewTicker(time.Duration(s.l.interval.Load()))
	defer trustTick.Stop()
	s.renew = time.NewTimer(time.Hour)
	s.renew.Stop()
	defer s.renew.Stop()
	s.scheduleRenewal()
	defer s.abortDownload(errStreamEnded)

	if err := s.sendInventory(0, true); err != nil {
		return s.ended(err)
	}
	if err := s.sendHealth(); err != nil {
		return s.ended(err)
	}
	for {
		var err error
		select {
		case <-s.ctx.Done():
			s.reqs.stop() // no request goroutine may still be sending
			s.sendMu.Lock()
			s.st.CloseSend()
			s.sendMu.Unlock()
			return s.ctx.Err()
		case err := <-s.recvErr:
			return err
		case err = <-s.failed:
		case <-s.l.cfg.Spool.Notify():
			err = s.sendHealth()
		case <-s.retry.C:
			err = s.sendHealth()
		case <-invTick.C:
			err = s.sendInventory(0, false)
		case <-s.l.invNow:
			err = s.sendInventory(0, false)
		case <-trustTick.C:
			err = s.sendTrustIfChanged()
		case <-s.renew.C:
			err = s.startRenewal()
		case m := <-s.msgs:
			if s.l.help.answer(m) {
				continue
			}
			if u := m.GetHelpUpdate(); u != nil {
				err = s.helpUpdate(m.GetId(), u)
			} else if a := m.GetAck(); a != nil {
				err = s.handleAck(m.GetRefId(), a)
			} else if r := m.GetCertificateRenewed(); r != nil {
				err = s.renewed(m.GetRefId(), r)
			} else {
				err = s.dispatch(m)
			}
		}
		if err != nil {
			return s.ended(err)
		}
	}
}

// send sends m with the next message id, which it returns. It is safe
// for the request goroutines too. A failure is a *sendError.
func (s *session) send(m *desksidev1.AgentMessage) (uint64, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.nextID++
	m.Id = s.nextID
	if err := s.st.Send(m); err != nil {
		return 0, &sendError{kind: messageKind(m), err: err}
	}
	return m.Id, nil
}

// reply sends a request goroutine's message; a failure ends the session.
func (s *session) reply(m *desksidev1.AgentMessage) error {
	_, err := s.send(m)
	if err != nil {
		select {
		case s.failed <- err:
		default: // the session is ending already
		}
	}
	return err
}

// ended turns the error that ends the session into its real reason: gRPC
// reports io.EOF from Send and the stream's status from Recv.
func (s *session) ended(err error) error {
	var se *sendError
	if !errors.As(err, &se) || !errors.Is(se.err, io.EOF) {
		return err
	}
	for {
		select {
		case <-s.msgs: // the stream is over: what it still delivers goes unanswered
		case rerr := <-s.recvErr:
			return fmt.Errorf("sending %s to the relay: stream closed: %w", se.kind, rerr)
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}

// messageKind names m's body for errors: "Health", "CheckReport".
func messageKind(m *desksidev1.AgentMessage) string {
	name := fmt.Sprintf("%T", m.GetBody())
	return name[strings.LastIndexByte(name, '_')+1:]
}

// sendInventory reads the inventory and sends it when it changed since the
// relay last accepted one, or always when force is set. ref answers a
// CollectInventory request (0 for none), which also gets the read error.
func (s *session) sendInventory(ref uint64, force bool) error {
	l := s.l
	inv, err := l.cfg.Inventory.Read(s.ctx)
	if err != nil {
		l.log.Warn("inventory collection failed", "err", err)
		if ref != 0 {
			_, err = s.send(requestError(ref, err.Error()))
			return err
		}
		return nil
	}
	fp := Fingerprint(inv)
	if !force && string(fp) == string(l.lastInv) {
		return nil
	}
	id, err := s.send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_Inventory{Inventory: &desksidev1.InventoryReport{Inventory: inv}}})
	if err != nil {
		return err
	}
	s.invMsgs[id] = fp
	return nil
}

// sendHealth sends the oldest spooled samples, unless a report is already
// awaiting its Ack.
func (s *session) sendHealth() error {
	if s.health != nil || time.Now().Before(s.holdUntil) {
		return nil
	}
	sp := s.l.cfg.Spool
	batch, err := sp.Peek(s.l.cfg.BatchSize)
	if err != nil {
		return fmt.Errorf("read spool: %w", err)
	}
	dropped := sp.Dropped()
	if len(batch) == 0 && dropped == 0 {
		return nil
	}
	id, err := s.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Health{Health: &desksidev1.HealthReport{Samples: batch, Dropped: dropped}}})
	if err != nil {
		return err
	}
	s.health = &inflightHealth{msgID: id, dropped: dropped}
	if len(batch) > 0 {
		s.health.upTo = batch[len(batch)-1].GetId()
	}
	return nil
}

// handleAck handles the relay's answer to a health or inventory report.
// Health the relay stored, or refused for good, leaves the spool and the
// next batch goes out; health it could not store is re-sent later.
func (s *session) handleAck(ref uint64, a *desksidev1.Ack) error {
	l := s.l
	switch {
	case s.health != nil && ref == s.health.msgID:
		h := s.health
		s.health = nil
		switch code := a.GetError().GetCode(); {
		case !a.GetAccepted() && code == desksidev1.AckErrorCode_ACK_ERROR_CODE_UNAVAILABLE:
			l.log.Warn("relay could not store health samples; will retry", "err", a.GetError().GetMessage())
			s.hold(healthRetry)
			return nil
		case !a.GetAccepted() && code == desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED:
			s.limited++
			wait := rateLimitWait(a.GetRetryAfter().AsDuration(), s.limited)
			if s.limited == 1 {
				l.log.Warn("relay rate-limited health samples; keeping them in the spool", "err", a.GetError().GetMessage(), "wait", wait)
			}
			s.hold(wait)
			return nil
		}
		s.limited = 0
		if !a.GetAccepted() {
			l.log.Error("relay refused health samples; dropping them", "err", a.GetError().GetMessage(), "up_to", h.upTo)
		}
		if err := l.cfg.Spool.Ack(h.upTo, h.dropped); err != nil {
			return err
		}
		return s.sendHealth()
	case s.renewing != nil && ref == s.renewing.msgID:
		s.renewing = nil
		l.log.Error("relay refused to renew the device certificate; will retry", "err", a.GetError().GetMessage(),
			"retry_in", l.cfg.RenewRetry.String(), "expires", l.cfg.State.Cert.Leaf.NotAfter)
		s.renew.Reset(l.cfg.RenewRetry)
	case ref != 0 && ref == s.trustMsg:
		s.trustMsg = 0
		if !a.GetAccepted() {
			l.log.Warn("relay did not take the endpoint policy report; will send it again", "err", a.GetError().GetMessage())
			s.trustSent = nil
		}
	case s.invMsgs[ref] != nil:
		fp := s.invMsgs[ref]
		delete(s.invMsgs, ref)
		switch {
		case a.GetAccepted():
			l.lastInv = fp
		case a.GetError().GetCode() == desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED:
			// Not remembered as sent: the next inventory tick sends it again.
			l.log.Warn("relay rate-limited the inventory; will send it at the next inventory interval", "err", a.GetError().GetMessage())
		default:
			l.log.Error("relay refused the inventory", "err", a.GetError().GetMessage())
		}
	}
	return nil
}

// hold stops health reports for d; the retry timer sends them after.
func (s *session) hold(d time.Duration) {
	s.holdUntil = time.Now().Add(d)
	s.retry.Reset(d)
}

// rateLimitWait is how long the agent waits after its n-th RATE_LIMITED
// answer in a row: what the relay asked (at least a second), doubled for
// each further refusal, at most maxRateLimitWait.
func rateLimitWait(asked time.Duration, n int) time.Duration {
	d := max(asked, time.Second)
	for i := 1; i < n && d < maxRateLimitWait; i++ {
		d *= 2
	}
	return min(d, maxRateLimitWait)
}

// maxRateLimitWait bounds the wait after RATE_LIMITED answers.
const maxRateLimitWait = 10 * time.Minute

// dispatch answers a relay request: quick ones here, the ones that take
// time (checks, commands, desktop sessions, actions) in a request
// goroutine whose answer goes through reply.
func (s *session) dispatch(m *desksidev1.RelayMessage) error {
	l := s.l
	ref := m.GetId()
	if l.cfg.Guard != nil {
		if err := l.cfg.Guard.Check(m); err != nil {
			_, err = s.send(requestError(ref, err.Error()))
			return err
		}
	}
	switch b := m.GetBody().(type) {
	case *desksidev1.RelayMessage_Ping:
		_, err := s.send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_Pong{Pong: &desksidev1.Pong{Payload: b.Ping.GetPayload()}}})
		return err
	case *desksidev1.RelayMessage_CollectInventory:
		return s.sendInventory(ref, true)
	case *desksidev1.RelayMessage_RunChecks:
		return s.start(ref, "diagnostics", l.cfg.Checks == nil, func(ctx context.Context) *desksidev1.AgentMessage {
			rep := l.cfg.Checks.Run(ctx, b.RunChecks)
			return &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_CheckReport{CheckReport: rep}}
		})
	case *desksidev1.RelayMessage_RunCommand:
		return s.start(ref, "commands", l.cfg.Commands == nil, func(ctx context.Context) *desksidev1.AgentMessage {
			exit := l.cfg.Commands.Run(ctx, b.RunCommand, func(o *desksidev1.CommandOutput) error {
				return s.reply(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_CommandOutput{CommandOutput: o}})
			})
			return &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_CommandExit{CommandExit: exit}}
		})
	case *desksidev1.RelayMessage_CancelCommand:
		s.reqs.cancel(b.CancelCommand.GetCommandRef())
	case *desksidev1.RelayMessage_StartDesktop:
		req := b.StartDesktop
		return s.start(ref, "remote desktop sessions", l.cfg.Desktop == nil, func(ctx context.Context) *desksidev1.AgentMessage {
			reason := l.cfg.Desktop.Run(ctx, req, func(sig *desksidev1.DesktopSignal) error {
				return s.reply(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_DesktopSignal{DesktopSignal: sig}})
			})
			return &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_DesktopEnded{DesktopEnded: &desksidev1.DesktopEnded{SessionId: req.GetSessionId(), Reason: reason}}}
		})
	case *desksidev1.RelayMessage_DesktopSignal:
		if l.cfg.Desktop == nil {
			return s.unsupported(ref, "remote desktop sessions")
		}
		if err := l.cfg.Desktop.Signal(b.DesktopSignal); err != nil {
			_, err = s.send(requestError(ref, err.Error()))
			return err
		}
		_, err := s.send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_SignalAck{SignalAck: &desksidev1.SignalAck{}}})
		return err
	case *desksidev1.RelayMessage_EndDesktop:
		if l.cfg.Desktop != nil {
			l.cfg.Desktop.End(b.EndDesktop.GetSessionId(), b.EndDesktop.GetReason())
		}
	case *desksidev1.RelayMessage_OrgKeyUpdate:
		// The guard checks every statement against what it pins
		// (agent/orgtrust); nothing is answered.
		if g, ok := l.cfg.Guard.(OrgKeyTaker); ok {
			g.OrgKeyUpdate(b.OrgKeyUpdate)
		}
	case *desksidev1.RelayMessage_RunAction:
		return s.start(ref, "actions", l.cfg.Actions == nil, func(ctx context.Context) *desksidev1.AgentMessage {
			res := l.cfg.Actions.Run(ctx, b.RunAction)
			return &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_ActionResult{ActionResult: res}}
		})
	case *desksidev1.RelayMessage_UpdateOffer:
		return s.offer(ref, b.UpdateOffer)
	case *desksidev1.RelayMessage_UpdateChunk:
		return s.chunk(m.GetRefId(), b.UpdateChunk)
	default:
		if ref != 0 {
			_, err := s.send(requestError(ref, fmt.Sprintf("agent %s does not support %T", l.cfg.Version, m.GetBody())))
			return err
		}
	}
	return nil
}

// start runs request ref in a goroutine of the session, which sends the
// answer run returns; missing (no runner configured) answers at once that
// this agent does not run what.
func (s *session) start(ref uint64, what string, missing bool, run func(ctx context.Context) *desksidev1.AgentMessage) error {
	if missing {
		return s.unsupported(ref, what)
	}
	s.reqs.start(ref, func(ctx context.Context) {
		m := run(ctx)
		m.RefId = ref
		s.reply(m)
	})
	return nil
}

// unsupported answers request ref: this agent was built or configured
// without what it asks for.
func (s *session) unsupported(ref uint64, what string) error {
	_, err := s.send(requestError(ref, "this agent does not run "+what))
	return err
}

func requestError(ref uint64, msg string) *desksidev1.AgentMessage {
	return &desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{Message: msg}}}
}

// requests are the relay requests running on one stream.
type requests struct {
	ctx     context.Context
	mu      sync.Mutex
	cancels map[uint64]context.CancelFunc
	wg      sync.WaitGroup
}

func newRequests(ctx context.Context) *requests {
	return &requests{ctx: ctx, cancels: make(map[uint64]context.CancelFunc)}
}

// start runs fn for request ref in a goroutine the stream owns.
func (r *requests) start(ref uint64, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(r.ctx)
	r.mu.Lock()
	r.cancels[ref] = cancel
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.cancels, ref)
			r.mu.Unlock()
			cancel()
		}()
		fn(ctx)
	}()
}

// cancel stops request ref (a command the console cancelled).
func (r *requests) cancel(ref uint64) {
	r.mu.Lock()
	c := r.cancels[ref]
	r.mu.Unlock()
	if c != nil {
		c()
	}
}

// stop cancels every request and waits for them: a command does not
// outlive the stream that asked for it.
func (r *requests) stop() {
	r.mu.Lock()
	for _, c := range r.cancels {
		c()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
