// Package servertest runs real relays and agents for tests in other
// packages (the CLI, the web console's browser tests, benchmarks): a relay
// on 127.0.0.1:0 with its data in a temporary directory, signed-in console
// clients, enrollment, and agents running the real link over mutual TLS.
package servertest

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/link"
	"github.com/deskside/deskside/agent/spool"
	"github.com/deskside/deskside/internal/testpoll"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/service"
)

// AdminPassword is the first technician's password in test relays.
const AdminPassword = "correct-horse-battery-staple"

// Relay is a running test relay.
type Relay struct {
	Srv  *server.Server
	Addr string // gRPC
	Dir  string

	cancel context.CancelFunc
	done   chan struct{}
}

// Options adjust a test relay's configuration.
type Options struct {
	// WebFiles serves the web console (nil: web console off).
	WebFiles fs.FS
	// Database and NATSURL/NATSPrefix select the backends as in
	// service.Config (default: SQLite in the relay's directory, one relay).
	Database, NATSURL, NATSPrefix string
	// AuditKeyFile is the audit key (default: a new one in the relay's
	// directory); relays sharing a Database share it, like the CA.
	AuditKeyFile string
	// Modify changes the configuration before the relay starts.
	Modify func(*server.Config)
}

// DiscardLogger drops logs.
func DiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Start runs a relay until the test ends.
func Start(t testing.TB, o Options) *Relay {
	t.Helper()
	cfg := service.Config{
		Config: server.Config{
			DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminListen: "off", WebListen: "off",
			AdminPassword: AdminPassword, Stdout: io.Discard, Logger: DiscardLogger(),
		},
		TURNListen: "127.0.0.1:0", Database: o.Database, NATSURL: o.NATSURL, NATSPrefix: o.NATSPrefix,
		AuditKeyFile: o.AuditKeyFile,
	}
	if o.WebFiles != nil {
		cfg.WebListen, cfg.WebFiles = "127.0.0.1:0", o.WebFiles
	}
	if o.Modify != nil {
		o.Modify(&cfg.Config)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := service.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start relay: %v", err)
	}
	r := &Relay{Srv: srv, Addr: srv.Addr().String(), Dir: cfg.DataDir, cancel: cancel, done: make(chan struct{})}
	go func() {
		srv.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(r.Stop)
	return r
}

// Stop stops the relay (idempotent).
func (r *Relay) Stop() {
	r.cancel()
	<-r.done
}

// CAPool trusts the relay's CA.
func (r *Relay) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(r.Srv.CA().CA())
	return p
}

// Dial opens a gRPC connection trusting the relay CA.
func (r *Relay) Dial(t testing.TB) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+r.Addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: r.CAPool(), ServerName: "127.0.0.1",
	})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// Console signs in and returns a client and a context carrying the session.
func (r *Relay) Console(t testing.TB, name, password string) (desksidev1.ConsoleServiceClient, context.Context) {
	t.Helper()
	cs := desksidev1.NewConsoleServiceClient(r.Dial(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	resp, err := cs.Login(ctx, &desksidev1.LoginRequest{Name: name, Password: password})
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return cs, metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+resp.GetToken())
}

// Admin signs in as the first technician.
func (r *Relay) Admin(t testing.TB) (desksidev1.ConsoleServiceClient, context.Context) {
	return r.Console(t, "admin", AdminPassword)
}

// Token creates an enrollment token.
func (r *Relay) Token(t testing.TB, ttl time.Duration, uses uint32) string {
	t.Helper()
	cs, ctx := r.Admin(t)
	resp, err := cs.CreateEnrollmentToken(ctx, &desksidev1.CreateEnrollmentTokenRequest{Ttl: durationpb.New(ttl), Uses: uses})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return resp.GetToken()
}

// NewMachineID returns a machine id no other test enrollment has, so that
// each enrolled identity is a device of its own (agents on one machine
// would otherwise replace each other's device).
func NewMachineID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}

// Enroll enrolls a new agent identity into a temporary state directory.
func (r *Relay) Enroll(t testing.TB, hostname string) *enroll.State {
	t.Helper()
	st, err := enroll.Enroll(context.Background(), enroll.Options{
		Relay: r.Addr, Token: r.Token(t, time.Hour, 1), StateDir: t.TempDir(), Hostname: hostname, Version: "test",
		MachineID: NewMachineID(),
	})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return st
}

// EnrollMany enrolls n identities with one multi-use token, 16 at a time.
func (r *Relay) EnrollMany(t testing.TB, n int, hostname func(i int) string) []*enroll.State {
	t.Helper()
	tok := r.Token(t, time.Hour, uint32(n))
	out := make([]*enroll.State, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := enroll.Enroll(context.Background(), enroll.Options{
				Relay: r.Addr, Token: tok, StateDir: filepath.Join(r.Dir, "agents", strconv.Itoa(i)), Hostname: hostname(i), Version: "test",
				MachineID: NewMachineID(),
			})
			if err != nil {
				errs <- err
				return
			}
			out[i] = st
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("enroll: %v", err)
	}
	return out
}

// Agent is a running agent link.
type Agent struct {
	Link  *link.Link
	Spool *spool.Spool

	cancel context.CancelFunc
	done   chan struct{}
}

// AgentOptions configure RunAgent.
type AgentOptions struct {
	Inventory      link.InventoryReader
	Health         link.Sampler
	HealthInterval time.Duration
	InventoryEvery time.Duration
	// Hostname is what the agent says in Hello; default "test".
	Hostname string
	// Checks, Commands and Actions serve diagnostics requests (nil: the
	// agent answers "not supported").
	Checks   link.Checker
	Commands link.CommandRunner
	Actions  link.ActionRunner
	Desktop  link.DesktopRunner
	// Guard checks privileged requests (agent/orgtrust); nil runs them.
	Guard interface {
		Check(m *desksidev1.RelayMessage) error
	}
	// OnHelpUpdate gets the relay's Get help pushes (link.Config).
	OnHelpUpdate func(*desksidev1.HelpUpdate)
	// Version is what the agent says in Hello; default "test".
	Version string
	// Updates and OnUpdateInstalled install releases the relay offers
	// (link.Config).
	Updates           link.Updater
	OnUpdateInstalled func()
}

// RunAgent runs the real agent link for st until Stop or the test's end.
func RunAgent(t testing.TB, st *enroll.State, o AgentOptions) *Agent {
	t.Helper()
	sp, err := spool.Open(filepath.Join(st.Dir, "spool"), 0)
	if err != nil {
		t.Fatal(err)
	}
	l, err := link.New(link.Config{
		State: st, Spool: sp, Inventory: o.Inventory, Health: o.Health, HealthInterval: o.HealthInterval,
		Checks: o.Checks, Commands: o.Commands, Actions: o.Actions, Desktop: o.Desktop, Guard: o.Guard, OnHelpUpdate: o.OnHelpUpdate,
		InventoryInterval: o.InventoryEvery, Hostname: cmp.Or(o.Hostname, "test"), Version: cmp.Or(o.Version, "test"),
		Updates: o.Updates, OnUpdateInstalled: o.OnUpdateInstalled, Logger: DiscardLogger(),
		Backoff: link.Backoff{Base: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, Max: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{Link: l, Spool: sp, cancel: cancel, done: make(chan struct{})}
	go func() {
		l.Run(ctx)
		sp.Close()
		close(a.done)
	}()
	t.Cleanup(a.Stop)
	return a
}

// Stop stops the agent (idempotent) as if its service were stopped.
func (a *Agent) Stop() {
	a.cancel()
	<-a.done
}

// CheckFor polls f until it returns nil or the timeout passes.
var CheckFor = testpoll.CheckFor

// AwaitOnline waits up to timeout until the relay behind cs counts n
// devices online, and fails t otherwise.
func AwaitOnline(t testing.TB, cs desksidev1.ConsoleServiceClient, ctx context.Context, n int, timeout time.Duration) {
	t.Helper()
	online := true
	testpoll.CheckFor(t, timeout, 50*time.Millisecond, func() error {
		res, err := cs.ListDevices(ctx, &desksidev1.ListDevicesRequest{Online: &online, PageSize: 1})
		if err != nil {
			return err
		}
		if res.GetTotal() != int64(n) {
			return fmt.Errorf("%d of %d agents online", res.GetTotal(), n)
		}
		return nil
	})
}
