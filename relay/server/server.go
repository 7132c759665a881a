// Package server is the Deskside relay: the AgentService that agents keep
// one mutual-TLS stream open to, the ConsoleService technicians call, the
// enrollment CA, and the admin listener with metrics and pprof.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/bus"
	"github.com/deskside/deskside/relay/helprequests"
	"github.com/deskside/deskside/relay/ingest"
	"github.com/deskside/deskside/relay/kb"
	"github.com/deskside/deskside/relay/notify"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/techkeys"
	"github.com/deskside/deskside/relay/technicians"
	"github.com/deskside/deskside/relay/tickets"
	"github.com/deskside/deskside/relay/updates"
)

// Log attribute keys.
const (
	logKeyDevice = "device"
	logKeyPeer   = "peer"
	logKeyError  = "err"
	logKeyTech   = "technician"
)

// Server is a running relay.
type Server struct {
	cfg   Config
	log   *slog.Logger
	ca    *pki.Authority
	store store.Store
	bus   bus.Bus
	// auditLog seals audit events with the relay's key and verifies them.
	auditLog *audit.Log
	// notifier announces device changes to every relay when the bus can.
	notifier    DeviceNotifier
	stopNotices func()
	metrics     *metrics

	grpc   *grpc.Server
	health *health.Server
	lis    net.Listener
	admin  *http.Server
	adminL net.Listener
	// The web console: HTTPS, Connect protocol onto webGRPC.
	web      *http.Server
	webL     net.Listener
	webGRPC  *grpc.Server
	events   *hub[*desksidev1.Device]
	sessions *sessions
	turn     TURN
	guard    *signinGuard
	ingest   *ingest.Limiter
	totp     *pendingTOTP
	techKeys *techkeys.Keys
	updates  *updates.Updates
	accounts *technicians.Accounts
	// tickets is the help desk (relay/tickets); ticketEvents its watchers
	// here, ticketNotifier the bus that carries its events to every relay.
	tickets           *tickets.Service
	ticketEvents      *hub[ticketEvent]
	ticketNotifier    TicketNotifier
	stopTicketNotices func()
	kb                *kb.Base
	// help answers devices' Get help (relay/helprequests); helpPushes
	// carries ticket changes to the devices they were filed from.
	help       *helprequests.Service
	helpPushes helpPusher
	// notify mails and posts ticket events (relay/notify); mailL takes
	// answers by email.
	notify *notify.Notifier
	mailL  *notify.Listener

	closeCtx context.Context
	cancel   context.CancelFunc

	// orgKeys is this relay's copy of the organisation key chain.
	orgKeys orgKeyCache

	// healthW batches health writes across streams when the store can
	// (store.HealthBatcher); nil otherwise.
	healthW *healthWriter

	mu      sync.Mutex
	conns   map[string]*agentConn // device id → live stream on this relay
	tracker *connTracker

	closeOnce sync.Once
	wg        sync.WaitGroup
}

// New builds a relay on the backends cfg names: loads or creates the CA,
// seeds the first admin, and binds its listeners (so Addr is known before
// Run). Package relay/service opens the backends a configuration selects.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, conns: make(map[string]*agentConn), tracker: &connTracker{conns: make(map[string]net.Conn)}}
	s.closeCtx, s.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	var err error
	s.ca, err = pki.LoadOrCreate(cfg.DataDir, pki.Options{Names: cfg.Names, Now: cfg.Now, DeviceValidity: cfg.DeviceCertValidity})
	if err != nil {
		return nil, err
	}
	s.store, s.bus, s.turn, s.auditLog = cfg.Store, cfg.Bus, cfg.TURN, cfg.Audit
	if s.bus == nil {
		s.bus = bus.NewLocal()
	}
	s.events = newConflatingHub(func(d *desksidev1.Device) string { return d.GetId() }, maxWatchWaiting)
	s.ticketEvents = newHub[ticketEvent]()
	s.tickets = tickets.New(s.store, cfg.Now)
	if n, ok := s.bus.(TicketNotifier); ok {
		stop, err := n.OnTicket(func(kind, code string) { s.publishTicket(s.closeCtx, kind, code) })
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		s.ticketNotifier, s.stopTicketNotices = n, stop
	}
	if n, ok := s.bus.(DeviceNotifier); ok {
		stop, err := n.OnDevice(func(id string) { s.publishDevice(s.closeCtx, id) })
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		s.notifier, s.stopNotices = n, stop
	}
	if s.notifier == nil {
		// A single relay: nothing is connected at start-up. (Relays sharing
		// a database leave the state to the relays that hold the streams.)
		if n, err := s.store.MarkAllOffline(ctx); err != nil {
			return nil, fmt.Errorf("relay: reset online state: %w", err)
		} else if n > 0 {
			s.log.Info("marked devices offline after restart", "count", n)
		}
	}
	if err := s.bootstrapAdmin(ctx); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	s.metrics = newMetrics(reg)
	s.sessions = newSessions()
	s.guard = newSigninGuard(cfg.Now)
	s.ingest = ingest.New(cfg.Ingest, cfg.Now)
	if hb, ok := s.store.(store.HealthBatcher); ok {
		s.healthW = newHealthWriter(hb, s.metrics.healthWrites)
	}
	s.totp = newPendingTOTP(cfg.Now)
	s.techKeys = techkeys.New(s.store, cfg.Now)
	s.updates = updates.New(s.store, cfg.Now)
	s.accounts = technicians.New(s.store, cfg.Now)
	s.accounts.Verify = func(hash, pw string) (bool, error) { return verifyPassword(hash, pw) }
	s.techKeys.OrgFingerprint = s.orgKeyChainFingerprint
	s.kb = kb.New(s.store, cfg.Now)
	s.help = helprequests.New(s.tickets, s.kb, s.store, cfg.HelpRates, cfg.Now)
	if err := s.startNotify(); err != nil {
		return nil, err
	}
	registerNotifyMetrics(reg, s.notify)

	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(s.ca.ServerTLSConfig())),
		grpc.MaxRecvMsgSize(wire.MaxMessageBytes),
		grpc.MaxSendMsgSize(wire.MaxMessageBytes),
		grpc.MaxConcurrentStreams(32),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    60 * time.Second,
			Timeout: 20 * time.Second,
		}),
		// Idle agents dominate a relay's memory: keep per-connection
		// buffers small (the write buffer is shared by default; see docs/adr).
		grpc.ReadBufferSize(0),
		grpc.WriteBufferSize(4<<10),
		grpc.InitialWindowSize(64<<10),
		grpc.InitialConnWindowSize(64<<10),
		grpc.ConnectionTimeout(15*time.Second),
		// Stop (after the graceful deadline) waits for handlers too, so an
		// agent stream's cleanup (offline state) runs before the bus and
		// the store close.
		grpc.WaitForHandlers(true),
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
	)
	desksidev1.RegisterAgentServiceServer(s.grpc, &agentService{s: s})
	desksidev1.RegisterConsoleServiceServer(s.grpc, &consoleService{s: s})
	desksidev1.RegisterOrgServiceServer(s.grpc, &orgService{s: s})
	desksidev1.RegisterUpdateServiceServer(s.grpc, &updateService{s: s})
	desksidev1.RegisterTechnicianServiceServer(s.grpc, &technicianService{s: s})
	desksidev1.RegisterTicketServiceServer(s.grpc, &ticketService{s: s})
	desksidev1.RegisterKnowledgeServiceServer(s.grpc, &kbService{s: s})
	desksidev1.RegisterReportServiceServer(s.grpc, &reportService{s: s})
	desksidev1.RegisterNotificationServiceServer(s.grpc, &notifyService{s: s})
	if cfg.WebListen != "off" {
		s.webGRPC = grpc.NewServer(
			grpc.MaxRecvMsgSize(wire.MaxMessageBytes),
			grpc.MaxSendMsgSize(wire.MaxMessageBytes),
			grpc.ChainUnaryInterceptor(s.unaryAuth),
			grpc.ChainStreamInterceptor(s.streamAuth),
		)
		desksidev1.RegisterConsoleServiceServer(s.webGRPC, &consoleService{s: s})
		desksidev1.RegisterOrgServiceServer(s.webGRPC, &orgService{s: s})
		desksidev1.RegisterTechnicianServiceServer(s.webGRPC, &technicianService{s: s})
		desksidev1.RegisterTicketServiceServer(s.webGRPC, &ticketService{s: s})
		desksidev1.RegisterKnowledgeServiceServer(s.webGRPC, &kbService{s: s})
		desksidev1.RegisterReportServiceServer(s.webGRPC, &reportService{s: s})
		desksidev1.RegisterNotificationServiceServer(s.webGRPC, &notifyService{s: s})
		desksidev1.RegisterUpdateServiceServer(s.webGRPC, &updateService{s: s})
		h, err := s.newWebHandler(s.webGRPC, cfg.WebFiles)
		if err != nil {
			return nil, err
		}
		tlsCfg := s.ca.ServerTLSConfig()
		tlsCfg.ClientAuth = tls.NoClientCert
		tlsCfg.ClientCAs = nil
		tlsCfg.NextProtos = []string{"h2", "http/1.1"}
		s.web = &http.Server{Handler: h, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
		wl, err := net.Listen("tcp", cfg.WebListen)
		if err != nil {
			return nil, fmt.Errorf("relay: web listen on %s: %w", cfg.WebListen, err)
		}
		s.webL = tls.NewListener(wl, tlsCfg)
	}
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if cfg.Reflection == ReflectionTechnicians {
		reflection.Register(s.grpc) // Rules: signed-in technicians only
	}

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen on %s: %w", cfg.Listen, err)
	}
	s.lis = trackingListener{Listener: lis, t: s.tracker}
	if cfg.AdminListen != "off" {
		s.adminL, err = net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			return nil, fmt.Errorf("relay: admin listen on %s: %w", cfg.AdminListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	ok = true
	return s, nil
}

// Addr is the gRPC listen address.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// WebAddr is the web console's listen address, or nil when disabled.
func (s *Server) WebAddr() net.Addr {
	if s.webL == nil {
		return nil
	}
	return s.webL.Addr()
}

// AdminAddr is the admin listen address, or nil when disabled.
func (s *Server) AdminAddr() net.Addr {
	if s.adminL == nil {
		return nil
	}
	return s.adminL.Addr()
}

// CA returns the relay's certificate authority.
func (s *Server) CA() *pki.Authority { return s.ca }

// Store returns the relay's store.
func (s *Server) Store() store.Store { return s.store }

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("relay listening", "addr", s.lis.Addr().String(), "web", addrString(s.webL), "admin", addrString(s.adminL), "version", s.cfg.Version)
	errc := make(chan error, 3)
	if s.web != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.serveWeb(); err != nil {
				errc <- err
			}
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("relay: serve: %w", err)
		}
	}()
	if s.admin != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.admin.Serve(s.adminL); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("relay: admin serve: %w", err)
			}
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.maintain(s.closeCtx)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watchOrgKeys(s.closeCtx)
	}()
	var err error
	select {
	case <-ctx.Done():
	case <-s.closeCtx.Done():
	case err = <-errc:
	}
	s.Close()
	return err
}

// Close stops the relay: agent streams end, in-flight console calls get a
// few seconds to finish, then everything is released. Close is idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.cancel()
		if s.events != nil {
			s.events.close() // ends WatchDevices streams, which never end by themselves
		}
		if s.ticketEvents != nil {
			s.ticketEvents.close() // likewise WatchTickets
		}
		if s.mailL != nil {
			s.mailL.Close()
		}
		if s.health != nil {
			s.health.Shutdown()
		}
		if s.grpc != nil {
			// Agent streams never end by themselves and GracefulStop waits
			// for them: close their connections (repeatedly, for any that
			// slip in before the listener closes); console calls get up to
			// five seconds to finish.
			done := make(chan struct{})
			go func() { s.grpc.GracefulStop(); close(done) }()
			deadline := time.Now().Add(5 * time.Second)
		wait:
			for {
				s.disconnectAll()
				select {
				case <-done:
					break wait
				case <-time.After(50 * time.Millisecond):
					if time.Now().After(deadline) {
						s.grpc.Stop()
						<-done
						break wait
					}
				}
			}
		}
		if s.lis != nil {
			s.lis.Close()
		}
		if s.web != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if s.web.Shutdown(ctx) != nil {
				s.web.Close()
			}
			cancel()
			s.webGRPC.Stop()
		} else if s.webL != nil {
			s.webL.Close()
		}
		if s.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.admin.Shutdown(ctx)
			cancel()
		} else if s.adminL != nil {
			s.adminL.Close()
		}
		s.wg.Wait()
		if s.healthW != nil {
			s.healthW.close() // after the streams: they wait on it
		}
		if s.notify != nil {
			s.notify.Close()
		}
		if s.stopNotices != nil {
			s.stopNotices()
		}
		if s.stopTicketNotices != nil {
			s.stopTicketNotices()
		}
		if s.cfg.Release != nil {
			err = s.cfg.Release()
		}
		s.log.Info("relay stopped")
	})
	return err
}

// caReloadEvery is how often the relay reads its CA files again, so that
// `deskside-relay ca rotate` takes effect without a restart and the server
// certificate is re-issued before it expires.
const caReloadEvery = time.Minute

// maintain runs periodic housekeeping: health downsampling, CA reloads.
func (s *Server) maintain(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	ca := time.NewTicker(caReloadEvery)
	defer ca.Stop()
	for {
		now := s.cfg.Now()
		n, err := s.store.CompactHealth(ctx, now.Add(-s.cfg.HealthRetention), s.cfg.HealthBucket, now.Add(-s.cfg.HealthDownsampledRetention))
		if err != nil && ctx.Err() == nil {
			s.log.Error("health compaction failed", logKeyError, err)
		} else if n > 0 {
			s.log.Info("health samples downsampled", "count", n)
		}
		for compact := false; !compact; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				compact = true
			case <-ca.C:
				s.reloadCA()
			}
		}
	}
}

// reloadCA reads the CA files again and logs what changed.
func (s *Server) reloadCA() {
	before, serverBefore := s.ca.Trusted(), s.ca.ServerCertificate().Leaf
	if err := s.ca.Reload(); err != nil {
		s.log.Error("reading the CA files failed; serving with the previous ones", logKeyError, err)
		return
	}
	after, serverAfter := s.ca.Trusted(), s.ca.ServerCertificate().Leaf
	if len(before) != len(after) || !before[0].Equal(after[0]) {
		s.audit(s.closeCtx, "relay", "relay.ca_changed", after[0].Subject.CommonName,
			fmt.Sprintf("active CA pin %s, %d CAs handed to agents", wire.CAPin(after[0].Raw), len(after)))
	}
	if len(before) != len(after) || !before[0].Equal(after[0]) || !serverBefore.Equal(serverAfter) {
		s.log.Info("CA files reloaded", "active_ca", after[0].Subject.CommonName, "trusted", len(after),
			"server_cert_expires", serverAfter.NotAfter)
	}
}

func (s *Server) bootstrapAdmin(ctx context.Context) error {
	n, err := s.store.CountTechnicians(ctx)
	if err != nil {
		return fmt.Errorf("relay: count technicians: %w", err)
	}
	if n > 0 {
		return nil
	}
	pw := s.cfg.AdminPassword
	generated := pw == ""
	if generated {
		pw = auth.RandomPassword()
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return fmt.Errorf("relay: admin password: %w", err)
	}
	if err := s.store.CreateTechnician(ctx, store.Technician{
		Name: s.cfg.AdminName, PasswordHash: hash, Role: int(desksidev1.Role_ROLE_ADMIN), CreatedAt: s.cfg.Now(),
	}); errors.Is(err, store.ErrExists) {
		return nil // another relay sharing the database created it first
	} else if err != nil {
		return fmt.Errorf("relay: create admin: %w", err)
	}
	s.audit(ctx, "relay", "technician.create", s.cfg.AdminName, "first admin, role admin")
	if generated {
		fmt.Fprintf(s.cfg.Stdout, "Created the first technician %q with role admin.\nPassword (shown once, change it): %s\n", s.cfg.AdminName, pw)
	} else {
		fmt.Fprintf(s.cfg.Stdout, "Created the first technician %q with role admin (password from configuration).\n", s.cfg.AdminName)
	}
	return nil
}

// audit appends to the audit log; a failure is logged loudly (the action
// itself has already happened or been refused).
func (s *Server) audit(ctx context.Context, actor, action, target, detail string) {
	_, err := s.auditLog.Append(context.WithoutCancel(ctx), store.AuditEvent{
		Time: s.cfg.Now(), Actor: actor, Action: action, Target: target, Detail: detail,
	})
	if err != nil {
		s.log.Error("audit append failed", "action", action, "target", target, logKeyError, err)
	}
}

func addrString(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}
