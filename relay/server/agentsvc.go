package server

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/bus"
	"github.com/deskside/deskside/relay/endpointtrust"
	"github.com/deskside/deskside/relay/ingest"
	"github.com/deskside/deskside/relay/store"
)

type agentService struct {
	desksidev1.UnimplementedAgentServiceServer
	s *Server
}

// Enroll implements AgentService.Enroll.
func (a *agentService) Enroll(ctx context.Context, req *desksidev1.EnrollRequest) (*desksidev1.EnrollResponse, error) {
	s := a.s
	// Every attempt is charged to the address before the token is
	// looked at; a good one gives it back. Refusals are audited.
	host, actor, tokenID := peerHost(ctx), "unknown", ""
	if !s.guard.enrolls.Take(host) {
		s.metrics.enrollments.WithLabelValues("rate_limited").Inc()
		// Logged, not audited: a flood must not grow the audit log.
		s.log.Warn("enrollment refused", "result", "rate_limited", logKeyPeer, peerAddr(ctx))
		return nil, status.Error(codes.ResourceExhausted,
			"too many failed enrollment attempts from this address; wait a minute and enroll again (check the token with `deskside token create`)")
	}
	fail := func(result string, err error) error {
		s.metrics.enrollments.WithLabelValues(result).Inc()
		s.log.Warn("enrollment refused", "result", result, logKeyPeer, peerAddr(ctx), logKeyError, err)
		s.audit(ctx, actor, "device.enroll.failed", tokenID, fmt.Sprintf("%s token from %s", result, peerAddr(ctx)))
		return err
	}
	if req.GetProtocolVersion() != wire.ProtocolVersion {
		return nil, fail("version", status.Errorf(codes.FailedPrecondition,
			"protocol version mismatch: agent speaks %d, relay speaks %d; install an agent built for this relay",
			req.GetProtocolVersion(), wire.ProtocolVersion))
	}
	tok, err := wire.ParseToken(req.GetToken())
	if err != nil {
		return nil, fail("malformed", status.Error(codes.InvalidArgument, err.Error()))
	}
	actor, tokenID = "token:"+tok.ID, tok.ID
	machineID := req.GetMachineId()
	if err := checkMachineID(machineID); err != nil {
		return nil, fail("malformed", status.Error(codes.InvalidArgument, err.Error()))
	}
	now := s.cfg.Now()
	err = s.store.ConsumeEnrollToken(ctx, tok.ID, auth.HashToken(tok.Secret), now)
	switch {
	case errors.Is(err, store.ErrTokenUnknown):
		return nil, fail("unknown", status.Error(codes.Unauthenticated,
			"enrollment token is unknown: check it was copied whole, or create a new one with `deskside token create`"))
	case errors.Is(err, store.ErrTokenExpired):
		return nil, fail("expired", status.Error(codes.Unauthenticated,
			"enrollment token has expired: create a new one with `deskside token create --ttl 1h`"))
	case errors.Is(err, store.ErrTokenUsed):
		return nil, fail("used", status.Error(codes.Unauthenticated,
			"enrollment token has already been used: create a new one with `deskside token create`"))
	case err != nil:
		return nil, fail("error", status.Errorf(codes.Unavailable, "relay could not check the token: %v", err))
	}
	// The same machine enrolling again (a reinstall) keeps its device:
	// same id, so the new certificate names it, and the old certificate's
	// serial no longer matches the device's. The machine id is the agent's
	// word, not a proof (a local user or a cloned image can know it), so
	// a device that is online keeps its identity: the newcomer becomes a
	// device of its own, without the machine id, and the conflict is
	// audited. A replaced device loses unattended access.
	id := newDeviceID()
	var prev store.Device
	replaces := ""
	if machineID != "" {
		switch d, err := s.store.DeviceByMachineID(ctx, machineID); {
		case err == nil && d.Online:
			s.audit(ctx, "token:"+tok.ID, "device.machine_id_conflict", d.ID, fmt.Sprintf(
				"an enrollment from %s (hostname %q) named the machine id of this device, which is online: enrolled as a new device",
				peerAddr(ctx), wire.CleanString(req.GetHostname(), 256)))
			machineID = ""
		case err == nil:
			id, prev, replaces = d.ID, d, d.CertSerial
		case !errors.Is(err, store.ErrNotFound):
			return nil, fail("error", status.Errorf(codes.Unavailable, "relay could not look up the machine's device: %v", err))
		}
	}
	cert, err := s.ca.SignDevice(req.GetCsrDer(), id, now)
	if err != nil {
		return nil, fail("csr", status.Error(codes.InvalidArgument, err.Error()))
	}
	hostname := wire.CleanString(req.GetHostname(), 256)
	_, replaced, err := s.store.EnrollDevice(ctx, store.Device{
		ID: id, Hostname: hostname, AgentVersion: wire.CleanString(req.GetAgentVersion(), 64), MachineID: machineID,
		CertSerial: cert.SerialNumber.Text(16), FirstSeen: now, LastSeen: now,
	}, replaces)
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, fail("error", status.Error(codes.Aborted,
			"this machine's device changed during the enrollment (another enrollment, a revocation or a connection): "+
				"enroll again with a new token (`deskside token create`; this one was used)"))
	case err != nil:
		return nil, fail("error", status.Errorf(codes.Unavailable, "relay could not record the device: %v", err))
	}
	s.metrics.enrollments.WithLabelValues("ok").Inc()
	s.guard.enrolls.Refund(host)
	if replaced {
		s.disconnect(id, "re-enrolled: its certificate was replaced")
		s.audit(ctx, "token:"+tok.ID, "device.reenrolled", id, fmt.Sprintf("hostname %q (was %q) from %s; certificate %s replaces %s; unattended access off",
			hostname, prev.Hostname, peerAddr(ctx), cert.SerialNumber.Text(16), prev.CertSerial))
		s.log.Info("device re-enrolled", logKeyDevice, id, "hostname", hostname, logKeyPeer, peerAddr(ctx))
	} else {
		s.audit(ctx, "token:"+tok.ID, "device.enroll", id, fmt.Sprintf("hostname %q from %s", hostname, peerAddr(ctx)))
		s.log.Info("device enrolled", logKeyDevice, id, "hostname", hostname, logKeyPeer, peerAddr(ctx))
	}
	s.deviceChanged(ctx, id)
	return &desksidev1.EnrollResponse{DeviceId: id, CertificateDer: cert.Raw, CaCertificateDer: s.ca.CA().Raw}, nil
}

// maxMachineIDLen caps EnrollRequest.machine_id.
const maxMachineIDLen = 128

// checkMachineID refuses a machine id that is not at most maxMachineIDLen
// characters of [A-Za-z0-9._-] (agents send a hex digest; anything else is
// a broken or hostile agent).
func checkMachineID(id string) error {
	if len(id) > maxMachineIDLen {
		return fmt.Errorf("machine_id is %d bytes, more than %d: install an agent built for this relay", len(id), maxMachineIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("machine_id has a character (byte %d) outside A-Z, a-z, 0-9, '.', '_' and '-': install an agent built for this relay", i)
		}
	}
	return nil
}

func newDeviceID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "dev-" + hex.EncodeToString(b)
}

// deviceFromPeer returns the verified client certificate, whose common
// name is the device id.
func deviceFromPeer(ctx context.Context) (*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no peer information")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil, status.Error(codes.Unauthenticated,
			"a device certificate is required: enroll the agent first (deskside-agent enroll --relay HOST:PORT --token T)")
	}
	return ti.State.VerifiedChains[0][0], nil
}

// replaceableBus is a bus that tells a route it was taken over by a newer
// one on another relay (natsbus.Bus).
type replaceableBus interface {
	ServeReplaced(deviceID string, h bus.Handler, onReplaced func()) (stop func(), err error)
}

// Connect implements AgentService.Connect: one long-lived stream per agent.
//
// The goroutine grpc-go runs it on is parked in Recv for as long as the
// agent stays connected, and a goroutine's stack only halves at a GC
// while less than a quarter of it is used, counting 800 bytes of guard
// (runtime.shrinkstack). Parked in Recv under grpc-go's frames this
// goroutine uses about 3.6 KB, so a stack that once grew to 16 KB stays
// at 16 KB, and 8 KB is enough only if it never grows past it. So the
// work that goes deep (the store, the audit log, the CA, most logging)
// runs on goroutines of its own that end when it is done: open, and the
// messages other than replies and health reports (dispatch). ADR 36.
func (a *agentService) Connect(stream desksidev1.AgentService_ConnectServer) error {
	type opened struct {
		c   *agentConn
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		c, err := a.open(stream)
		ch <- opened{c, err}
	}()
	o := <-ch
	if o.err != nil {
		return o.err
	}
	defer o.c.finish()
	// A health report still waiting for its commit gets its Ack (or
	// refusal) before the stream is let go.
	defer o.c.healthDone.Wait()
	return o.c.serve()
}

// open checks the agent's certificate and its Hello, then registers,
// welcomes and routes the stream.
func (a *agentService) open(stream desksidev1.AgentService_ConnectServer) (*agentConn, error) {
	s := a.s
	ctx := stream.Context()
	leaf, err := deviceFromPeer(ctx)
	if err != nil {
		return nil, err
	}
	id, serial := leaf.Subject.CommonName, leaf.SerialNumber.Text(16)
	if wait, ok := s.ingest.Blocked(id); ok {
		return nil, status.Errorf(codes.ResourceExhausted,
			"device %s was disconnected for sending over its ingest limits; reconnect in %s (an agent that keeps doing so needs updating or reinstalling)",
			id, wait.Round(time.Second))
	}
	dev, err := s.store.GetDevice(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, status.Errorf(codes.Unauthenticated, "device %s is not known to this relay: enroll again", id)
	case err != nil:
		return nil, storeErr(err)
	case dev.Revoked:
		s.log.Warn("revoked device refused", logKeyDevice, id, logKeyPeer, peerAddr(ctx))
		return nil, status.Errorf(codes.PermissionDenied, "device %s has been revoked by an administrator; re-enroll it with a new token", id)
	case dev.CertSerial != "" && dev.CertSerial != serial && (dev.PendingSerial == "" || dev.PendingSerial != serial):
		return nil, status.Errorf(codes.PermissionDenied, "device %s presented a certificate that is no longer current; re-enroll it", id)
	case dev.CertSerial != serial:
		// The first connection with a renewed certificate confirms it:
		// from now on the old one is refused.
		err := s.store.ConfirmSerial(ctx, id, serial)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, status.Errorf(codes.PermissionDenied, "device %s presented a certificate that is no longer current; re-enroll it", id)
		case err != nil:
			return nil, storeErr(err)
		}
		s.audit(ctx, "device:"+id, "device.cert_renewed", id, fmt.Sprintf("certificate %s (expires %s) replaces %s",
			serial, leaf.NotAfter.UTC().Format(time.RFC3339), dev.CertSerial))
		s.log.Info("renewed device certificate confirmed", logKeyDevice, id, "serial", serial, "old_serial", dev.CertSerial)
	}

	raw := s.tracker.get(peerAddr(ctx))
	if raw == nil {
		return nil, status.Error(codes.Internal, "relay lost track of this connection")
	}
	// A peer that never says Hello loses its connection.
	helloTimer := time.AfterFunc(s.cfg.HelloTimeout, func() { raw.Close() })
	first, err := stream.Recv()
	if !helloTimer.Stop() {
		return nil, status.Errorf(codes.DeadlineExceeded, "no Hello within %s", s.cfg.HelloTimeout)
	}
	if err != nil {
		return nil, err
	}
	hello := first.GetHello()
	if hello == nil {
		return nil, status.Error(codes.InvalidArgument, "the first message on the stream must be Hello")
	}
	if v := hello.GetProtocolVersion(); v != wire.ProtocolVersion {
		return nil, status.Errorf(codes.FailedPrecondition,
			"protocol version mismatch: agent speaks %d, relay speaks %d; upgrade the agent (or the relay) so they match",
			v, wire.ProtocolVersion)
	}
	// The endpoint trust report has caps of its own (cut, not refused).
	trust := endpointtrust.Clean(hello.GetEndpointTrust())
	hello.EndpointTrust = nil
	if err := wire.DefaultCaps.Sanitize(hello.ProtoReflect()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "hello: %v", err)
	}

	c := &agentConn{s: s, id: id, leaf: leaf, stream: stream, ctx: ctx, raw: raw, pending: make(map[uint64]*pendingReq),
		healthSlot: make(chan struct{}, 1)}

	c.helloAt = s.cfg.Now()
	if err := s.store.DeviceConnected(ctx, store.DeviceHello{
		ID: id, Hostname: hello.GetHostname(), AgentVersion: hello.GetAgentVersion(),
		OS: hello.GetOs(), Arch: hello.GetArch(), At: c.helloAt,
	}); err != nil {
		return nil, storeErr(err)
	}
	if trust != nil {
		if err := c.storeTrust(trust); err != nil {
			s.log.Error("storing the endpoint trust report failed", logKeyDevice, id, logKeyError, err)
		}
	}
	s.register(c)
	// Welcome goes out before the route exists: a request routed to this
	// stream must never reach the agent ahead of it (the agent drops a
	// stream whose first message is not Welcome).
	welcome := &desksidev1.Welcome{ProtocolVersion: wire.ProtocolVersion, DeviceId: id, MaxMessageBytes: wire.MaxMessageBytes}
	for _, ca := range s.ca.Trusted() {
		welcome.TrustedCaDer = append(welcome.TrustedCaDer, ca.Raw)
	}
	if s.cfg.HealthInterval > 0 {
		welcome.HealthInterval = durationpb.New(s.cfg.HealthInterval)
	}
	if err := c.send(&desksidev1.RelayMessage{RefId: 0, Body: &desksidev1.RelayMessage_Welcome{Welcome: welcome}}); err != nil {
		s.unregister(c)
		return nil, err
	}
	if err := s.sendOrgKeys(c); err != nil {
		s.unregister(c)
		return nil, err
	}
	// With several relays the agent may reconnect to another one while
	// this stream still looks alive (a half-open TCP connection): the
	// newer route wins, and this stream is closed without marking the
	// device offline. Should this stream end by itself after the agent
	// connected elsewhere, SetOffline's helloAt condition keeps the device
	// online.
	if rb, ok := s.bus.(replaceableBus); ok {
		c.unroute, err = rb.ServeReplaced(id, c.exchange, func() {
			c.replaced.Store(true)
			c.close("the device reconnected to another relay")
		})
	} else {
		c.unroute, err = s.bus.Serve(id, c.exchange)
	}
	if err != nil {
		s.unregister(c)
		return nil, status.Errorf(codes.Unavailable, "relay bus: %v", err)
	}
	s.metrics.agentsConnected.Inc()
	s.deviceChanged(ctx, id)
	s.log.Info("agent connected", logKeyDevice, id, "hostname", hello.GetHostname(), "version", hello.GetAgentVersion(), logKeyPeer, peerAddr(ctx))

	// Commands queued while the device was offline run now; the stream's
	// context owns the goroutine.
	go s.runQueued(ctx, id)
	// An agent update the rollout includes (relay/updates).
	s.recordLastUpdate(ctx, id, hello)
	go s.offerUpdate(ctx, c)
	return c, nil
}

// serve reads the stream's messages until it ends. It stays shallow
// (not inlined in Connect, and without Connect's locals) for the
// goroutine's stack to be parked in Recv at the least depth grpc-go
// allows.
//
//go:noinline
func (c *agentConn) serve() error {
	for {
		m, err := c.stream.Recv()
		if err != nil {
			if c.s.closeCtx.Err() != nil {
				return status.Error(codes.Unavailable, "relay is shutting down; reconnect shortly")
			}
			return err
		}
		if err := c.dispatch(m); err != nil {
			return err
		}
	}
}

// dispatch handles m: on the stream's goroutine for a reply or a health
// report given to the health writer (an agent's frequent messages, whose
// handling fits the stream's 8 KB stack), on a goroutine of its own for
// any other (Connect). Either way one message at a time, in order.
func (c *agentConn) dispatch(m *desksidev1.AgentMessage) error {
	if m.GetRefId() != 0 && m.GetInventory() == nil || m.GetHealth() != nil && c.s.healthW != nil {
		return c.handle(m)
	}
	done := make(chan error, 1)
	go func() { done <- c.handle(m) }()
	return <-done
}

// finish undoes open once the stream has ended: the route, the
// registration and, unless the device is connected elsewhere, its online
// state.
func (c *agentConn) finish() {
	s := c.s
	c.unroute()
	last := s.unregister(c)
	s.metrics.agentsConnected.Dec()
	c.failPending()
	if last && !c.replaced.Load() {
		if err := s.store.SetOffline(context.WithoutCancel(c.ctx), c.id, s.cfg.Now(), c.helloAt); err != nil {
			s.log.Error("mark offline failed", logKeyDevice, c.id, logKeyError, err)
		}
		s.deviceChanged(c.ctx, c.id)
	}
	s.log.Info("agent disconnected", logKeyDevice, c.id)
}

// agentConn is one agent stream held by this relay.
type agentConn struct {
	s  *Server
	id string
	// leaf is the device certificate the stream was opened with.
	leaf   *x509.Certificate
	stream desksidev1.AgentService_ConnectServer
	ctx    context.Context
	raw    net.Conn
	// lastTouch is when last seen was last written (by the one health
	// report being stored, healthSlot).
	lastTouch time.Time
	// healthSlot holds the agent's one health report that waits for the
	// health writer's commit while the stream reads on; healthDone counts
	// it until its Ack is sent.
	healthSlot chan struct{}
	healthDone sync.WaitGroup
	// renewed is set once a certificate was issued on this stream (by
	// its messages' handling, one at a time: dispatch): one renewal per
	// connection.
	renewed bool
	// orgReady is set once Welcome went out: organisation key chain
	// changes are sent from then on (orgkeysvc.go).
	orgReady atomic.Bool
	// trustAt is when an endpoint trust change was last stored (by the
	// stream's messages' handling, one at a time: dispatch).
	trustAt time.Time

	sendMu sync.Mutex
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*pendingReq
	closed  bool
	// replaced is set when the device's route was taken over by another
	// relay (the device stays online); unroute ends this stream's route.
	replaced atomic.Bool
	unroute  func()
	// helloAt is when the device was marked connected (SetOffline's
	// condition in finish).
	helloAt time.Time
}

func (c *agentConn) send(m *desksidev1.RelayMessage) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if m.Id == 0 {
		m.Id = c.nextID.Add(1)
	}
	return c.stream.Send(m)
}

// close ends the stream by closing its connection; reason is logged (the
// agent learns it when it reconnects and is refused, if it is refused).
func (c *agentConn) close(reason string) {
	c.s.log.Info("closing agent connection", logKeyDevice, c.id, "reason", reason)
	c.raw.Close()
}

func (c *agentConn) ack(ref uint64, a *desksidev1.Ack) error {
	return c.send(&desksidev1.RelayMessage{RefId: ref, Body: &desksidev1.RelayMessage_Ack{Ack: a}})
}

func (c *agentConn) reject(ref uint64, kind string, err error) error {
	code := desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		code = desksidev1.AckErrorCode_ACK_ERROR_CODE_TOO_LARGE
	case errors.Is(err, errStore):
		code = desksidev1.AckErrorCode_ACK_ERROR_CODE_UNAVAILABLE
	}
	c.s.metrics.rejected.WithLabelValues(strings.ToLower(strings.TrimPrefix(code.String(), "ACK_ERROR_CODE_"))).Inc()
	c.s.log.Warn("agent report refused", logKeyDevice, c.id, "kind", kind, logKeyError, err)
	return c.ack(ref, &desksidev1.Ack{Error: &desksidev1.AckError{Code: code, Message: kind + ": " + err.Error()}})
}

var errStore = errors.New("relay storage unavailable")

// limited refuses a report over the device's ingest limits (relay/ingest):
// RATE_LIMITED with the delay after which it fits, which the agent waits
// out keeping the data; one audit record per device per window; a pause
// in reading the stream; and, for a device that keeps sending while
// refused, the end of its stream.
func (c *agentConn) limited(ref uint64, kind ingest.Kind, v ingest.Verdict) error {
	s := c.s
	s.metrics.rejected.WithLabelValues("rate_limited").Inc()
	ctx := context.WithoutCancel(c.ctx)
	if v.Audit {
		s.log.Warn("agent over its ingest limit", logKeyDevice, c.id, "kind", string(kind), "limit", v.Reason)
		s.audit(ctx, "relay", "device.rate_limited", c.id, fmt.Sprintf("%s report refused: %s (one record per %s)", kind, v.Reason, s.cfg.Ingest.Window))
	}
	err := c.ack(ref, &desksidev1.Ack{RetryAfter: durationpb.New(v.RetryAfter), Error: &desksidev1.AckError{
		Code:    desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED,
		Message: fmt.Sprintf("%s: %s; send it again in %s", kind, v.Reason, v.RetryAfter.Round(time.Millisecond)),
	}})
	if v.Disconnect {
		s.audit(ctx, "relay", "device.disconnected", c.id, fmt.Sprintf("kept sending while refused (%s; %d refusals in this window); refused at reconnect for %s",
			v.Reason, v.Refused, s.cfg.Ingest.Penalty))
		c.close("kept sending over its ingest limit")
		return status.Errorf(codes.ResourceExhausted, "device %s kept sending over its ingest limit (%s) and was disconnected; it may reconnect in %s",
			c.id, v.Reason, s.cfg.Ingest.Penalty)
	}
	if err != nil {
		return err
	}
	// Not reading the stream for a while makes a flooder's sends wait on
	// flow control rather than cost a decode each.
	t := time.NewTimer(v.Pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
	return nil
}

// isPending reports whether ref is a relay request waiting for replies.
func (c *agentConn) isPending(ref uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[ref] != nil
}

// touchEvery is how often health reports refresh a device's last seen.
const touchEvery = time.Minute

// handle processes one agent message. A bad report gets a refusing Ack and
// the stream goes on; only a failure to send ends it.
func (c *agentConn) handle(m *desksidev1.AgentMessage) error {
	s := c.s
	if ref := m.GetRefId(); ref != 0 && m.GetInventory() == nil {
		s.metrics.messages.WithLabelValues("reply").Inc()
		// Free text in replies reaches the audit log and the console.
		wire.CleanTexts(m.ProtoReflect())
		c.deliver(ref, m)
		return nil
	}
	switch b := m.Body.(type) {
	case *desksidev1.AgentMessage_Inventory:
		s.metrics.messages.WithLabelValues("inventory").Inc()
		// An inventory a technician asked for (a pending request) is not
		// charged; any other is.
		if ref := m.GetRefId(); ref == 0 || !c.isPending(ref) {
			if v := s.ingest.Inventory(c.id); !v.OK {
				return c.limited(m.GetId(), ingest.Inventory, v)
			}
		}
		// Store before answering a waiting console request, so it reads
		// what was stored.
		err := c.storeInventory(b.Inventory.GetInventory())
		if ref := m.GetRefId(); ref != 0 {
			if err != nil {
				c.deliver(ref, &desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{Message: "relay refused the inventory: " + err.Error()}}})
			} else {
				c.deliver(ref, m)
			}
		}
		if err != nil {
			return c.reject(m.GetId(), "inventory", err)
		}
		return c.ack(m.GetId(), &desksidev1.Ack{Accepted: true})
	case *desksidev1.AgentMessage_Health:
		s.metrics.healthMessages.Inc()
		if v := s.ingest.Health(c.id, len(b.Health.GetSamples())); !v.OK {
			return c.limited(m.GetId(), ingest.Health, v)
		}
		if s.healthW == nil {
			return c.finishHealth(m.GetId(), b.Health)
		}
		// The batched writer holds a report up to its linger before the
		// commit. The stream reads on meanwhile, so a command's output or
		// a desktop answer behind a health report is not held up by it.
		// One report per agent at a time (an agent sends its next after
		// the Ack): a second one waits here for the first. The report is
		// checked here, on the stream's goroutine (dispatch; its 8 KB
		// stack holds the checks); the one started for it only answers.
		c.healthSlot <- struct{}{} // released by healthWritten
		j, err := c.prepareHealth(b.Health)
		if err != nil || j == nil {
			<-c.healthSlot
			if err != nil {
				return c.reject(m.GetId(), "health", err)
			}
			return c.ack(m.GetId(), &desksidev1.Ack{Accepted: true})
		}
		c.batchHealth(j)
		j.to, j.ref = c, m.GetId()
		c.healthDone.Add(1)
		if err := s.healthW.submit(j); err != nil {
			c.healthDone.Done()
			<-c.healthSlot
			_, _, err = c.healthStored(j, err)
			return c.reject(m.GetId(), "health", err)
		}
		return nil
	case *desksidev1.AgentMessage_RenewCertificate:
		s.metrics.messages.WithLabelValues("renew_certificate").Inc()
		return c.renewCertificate(m.GetId(), b.RenewCertificate)
	case *desksidev1.AgentMessage_EndpointTrust:
		s.metrics.messages.WithLabelValues("endpoint_trust").Inc()
		return c.endpointTrust(m.GetId(), b.EndpointTrust)
	case *desksidev1.AgentMessage_FileHelpRequest, *desksidev1.AgentMessage_SearchHelpArticles, *desksidev1.AgentMessage_ArticleHelped,
		*desksidev1.AgentMessage_ListMyRequests, *desksidev1.AgentMessage_ReplyToRequest:
		return c.helpRequest(m)
	case *desksidev1.AgentMessage_Hello:
		return c.reject(m.GetId(), "hello", fmt.Errorf("%w: Hello was already received on this stream", wire.ErrInvalid))
	case nil:
		return c.reject(m.GetId(), "message", fmt.Errorf("%w: empty message (unknown type from a newer agent?)", wire.ErrInvalid))
	default:
		if m.GetRefId() == 0 {
			return c.reject(m.GetId(), "message", fmt.Errorf("%w: %T is only valid as a reply", wire.ErrInvalid, b))
		}
	}
	return nil
}

// finishHealth stores a health report and answers it: an Ack with the
// counts once stored, a refusal otherwise.
func (c *agentConn) finishHealth(ref uint64, h *desksidev1.HealthReport) error {
	stored, dup, err := c.storeHealth(h)
	return c.answerHealth(ref, stored, dup, err)
}

// answerHealth answers a health report with what storing it gave.
func (c *agentConn) answerHealth(ref uint64, stored, dup int, err error) error {
	if err != nil {
		return c.reject(ref, "health", err)
	}
	return c.ack(ref, &desksidev1.Ack{Accepted: true, Stored: uint32(stored), Duplicates: uint32(dup)})
}

func (c *agentConn) storeInventory(inv *desksidev1.Inventory) error {
	if inv == nil {
		return fmt.Errorf("%w: inventory report without an inventory", wire.ErrInvalid)
	}
	if err := wire.DefaultCaps.Sanitize(inv.ProtoReflect()); err != nil {
		return err
	}
	if err := validateInventory(inv); err != nil {
		return err
	}
	s := c.s
	ctx := context.WithoutCancel(c.ctx)
	var old *desksidev1.Inventory
	prev, err := s.store.GetInventory(ctx, c.id)
	switch {
	case err == nil:
		old = new(desksidev1.Inventory)
		if err := proto.Unmarshal(prev.Data, old); err != nil {
			s.log.Error("stored inventory unreadable; starting history afresh", logKeyDevice, c.id, logKeyError, err)
			old = nil
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %v", errStore, err)
	}
	now := s.cfg.Now()
	changes := DiffInventory(old, inv)
	for i := range changes {
		changes[i].DeviceID = c.id
		changes[i].Time = now
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(inv)
	if err != nil {
		return fmt.Errorf("%w: %v", wire.ErrInvalid, err)
	}
	collected := now
	if t := inv.GetCollectedAt(); t != nil {
		collected = t.AsTime()
	}
	if err := s.store.PutInventory(ctx, store.Inventory{DeviceID: c.id, CollectedAt: collected, ReceivedAt: now, Data: data},
		Summarize(inv), changes); err != nil {
		return fmt.Errorf("%w: %v", errStore, err)
	}
	s.deviceChanged(ctx, c.id)
	return nil
}

// storeHealth checks and stores a health report in a store without the
// batched writer (PostgreSQL; with it, handle submits the report) and
// returns how many samples were new and how many were duplicates.
func (c *agentConn) storeHealth(r *desksidev1.HealthReport) (stored, dup int, err error) {
	j, err := c.prepareHealth(r)
	if err != nil || j == nil {
		return 0, 0, err
	}
	defer j.release()
	s, rows, now := c.s, j.rows, j.now
	n, err := s.store.AddHealthSamples(context.WithoutCancel(c.ctx), c.id, rows)
	s.metrics.healthWrites.Inc()
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %v", errStore, err)
	}
	// Last seen needs minute precision, not a second write transaction
	// per health batch on the store's single writer.
	if now.Sub(c.lastTouch) >= touchEvery {
		if err := s.store.TouchDevice(context.WithoutCancel(c.ctx), c.id, now); err != nil {
			s.log.Warn("touch device failed", logKeyDevice, c.id, logKeyError, err)
		} else {
			c.lastTouch = now
		}
	}
	c.countHealth(n, len(rows)-n)
	return n, len(rows) - n, nil
}

// prepareHealth checks a health report and turns it into a job for the
// health writer (or storeHealth); nil when the report holds no sample.
func (c *agentConn) prepareHealth(r *desksidev1.HealthReport) (*healthJob, error) {
	if err := wire.DefaultCaps.Sanitize(r.ProtoReflect()); err != nil {
		return nil, err
	}
	s := c.s
	if d := r.GetDropped(); d > 0 {
		s.metrics.spoolDropped.Add(float64(d))
		s.log.Warn("agent spool dropped samples while the relay was unreachable", logKeyDevice, c.id, "dropped", d)
	}
	if len(r.GetSamples()) == 0 {
		return nil, nil
	}
	now := s.cfg.Now()
	j := healthJobs.Get().(*healthJob)
	rows := j.rows[:0]
	for i, hs := range r.GetSamples() {
		row, err := healthRow(hs, now)
		if err != nil {
			j.rows = rows
			j.release()
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		rows = append(rows, row)
	}
	j.rows = rows
	j.now = now
	return j, nil
}

// batchHealth readies j for the health writer: its samples and, once a
// minute, the device's last-seen time (minute precision is enough, and it
// rides in the same transaction).
func (c *agentConn) batchHealth(j *healthJob) {
	j.b = store.HealthBatch{DeviceID: c.id, Samples: j.rows}
	if j.now.Sub(c.lastTouch) >= touchEvery {
		j.b.Touch = j.now
	}
}

// healthStored is what the health writer's batch did with j (err: the
// whole batch failed, or the writer was closed); it releases j.
func (c *agentConn) healthStored(j *healthJob, err error) (stored, dup int, _ error) {
	defer j.release()
	if err == nil {
		err = j.b.Err
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %v", errStore, err)
	}
	if !j.b.Touch.IsZero() {
		c.lastTouch = j.now
	}
	n := j.b.Added
	c.countHealth(n, len(j.rows)-n)
	return n, len(j.rows) - n, nil
}

// healthWritten answers a report the health writer has written (or
// failed to), in a goroutine the writer started for it, and frees the
// agent's report slot.
func (c *agentConn) healthWritten(j *healthJob) {
	defer c.healthDone.Done()
	defer func() { <-c.healthSlot }()
	ref := j.ref
	stored, dup, err := c.healthStored(j, j.err)
	// A failed send means the stream is gone; the agent sends the
	// samples again after reconnecting.
	_ = c.answerHealth(ref, stored, dup, err)
}

func (c *agentConn) countHealth(stored, dup int) {
	c.s.metrics.samplesStored.Add(float64(stored))
	c.s.metrics.samplesDup.Add(float64(dup))
}

// pendingReq is a relay request waiting for the agent's replies.
type pendingReq struct {
	ch   chan *desksidev1.AgentMessage
	done chan struct{} // closed when the requester stops listening
}

// exchange is the bus Handler for this agent: it sends req and passes the
// agent's replies (messages whose ref_id is req's id) to recv.
func (c *agentConn) exchange(ctx context.Context, req *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
	req = proto.Clone(req).(*desksidev1.RelayMessage)
	req.Id = c.nextID.Add(1)
	p := &pendingReq{ch: make(chan *desksidev1.AgentMessage, 64), done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return bus.ErrNoRoute
	}
	c.pending[req.Id] = p
	c.mu.Unlock()
	defer func() {
		close(p.done)
		c.mu.Lock()
		delete(c.pending, req.Id)
		c.mu.Unlock()
	}()
	if err := c.send(req); err != nil {
		return fmt.Errorf("send to agent: %w", err)
	}
	for {
		select {
		case m, ok := <-p.ch:
			if !ok {
				return bus.ErrAgentGone
			}
			if recv(m) {
				return nil
			}
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), bus.ErrCallerDone) {
				return nil // complete: the caller on another relay has it all
			}
			switch {
			case req.GetRunCommand() != nil:
				// The console went away or cancelled: stop the command's
				// process tree on the endpoint.
				c.send(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_CancelCommand{CancelCommand: &desksidev1.CancelCommand{CommandRef: req.Id}}})
			case req.GetStartDesktop() != nil:
				c.send(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_EndDesktop{EndDesktop: &desksidev1.EndDesktop{
					SessionId: req.GetStartDesktop().GetSessionId(), Reason: "the viewer left"}}})
			}
			return ctx.Err()
		}
	}
}

// deliver hands a reply to the request it answers. It waits while the
// requester is slow (this holds up only this agent's stream) and drops
// the reply once the requester has gone.
func (c *agentConn) deliver(ref uint64, m *desksidev1.AgentMessage) {
	c.mu.Lock()
	p := c.pending[ref]
	c.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case p.ch <- m:
	case <-p.done:
	}
}

func (c *agentConn) failPending() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for id, p := range c.pending {
		close(p.ch)
		delete(c.pending, id)
	}
}

// register records c as the live stream for its device, closing an older
// stream for the same device (the agent reconnected before the relay
// noticed the old one was dead).
func (s *Server) register(c *agentConn) {
	s.mu.Lock()
	old := s.conns[c.id]
	s.conns[c.id] = c
	s.mu.Unlock()
	if old != nil && old.raw != c.raw {
		old.close("replaced by a newer stream from the same device")
	}
}

// unregister removes c and reports whether it was the device's live stream.
func (s *Server) unregister(c *agentConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
		return true
	}
	return false
}

// disconnect ends a device's stream on this relay, if any.
func (s *Server) disconnect(id string, reason string) {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c != nil {
		c.close(reason)
	}
}

// disconnectAll ends every agent stream on this relay (shutdown).
func (s *Server) disconnectAll() {
	s.mu.Lock()
	conns := make([]*agentConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.raw.Close()
	}
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
