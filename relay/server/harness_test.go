package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/link"
	"github.com/deskside/deskside/agent/spool"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/service"
)

const adminPassword = "correct-horse-battery-staple"

// testWebFiles stands in for the console build in relay tests (the browser
// tests use the real one).
var testWebFiles = fstest.MapFS{
	"index.html": {Data: []byte("<!doctype html><title>Deskside</title><script src=\"app.js\"></script>")},
	"app.js":     {Data: []byte("console.log('deskside')")},
}

// clock is a settable clock for expiry tests.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

type relay struct {
	srv    *server.Server
	addr   string
	dir    string
	cancel context.CancelFunc
	done   chan error
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startRelay runs a real relay on addr (127.0.0.1:0 for a fresh port) with
// its data in dir.
func startRelay(t testing.TB, dir, addr string, mod func(*server.Config)) *relay {
	t.Helper()
	cfg := service.Config{
		Config: server.Config{
			DataDir: dir, Listen: addr, AdminListen: "off", AdminPassword: adminPassword,
			WebListen: "127.0.0.1:0", WebFiles: testWebFiles,
			Stdout: io.Discard, Logger: discardLogger(),
		},
		TURNListen: "127.0.0.1:0",
	}
	if mod != nil {
		mod(&cfg.Config)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := service.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start relay: %v", err)
	}
	r := &relay{srv: srv, addr: srv.Addr().String(), dir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *relay) stop() {
	r.cancel()
	<-r.done
	r.done <- nil // let a second stop return
}

// console signs in as name/password and returns an authenticated client.
func (r *relay) console(t testing.TB, name, password string) (desksidev1.ConsoleServiceClient, context.Context) {
	t.Helper()
	cs := desksidev1.NewConsoleServiceClient(r.dial(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	resp, err := cs.Login(ctx, &desksidev1.LoginRequest{Name: name, Password: password})
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return cs, metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+resp.GetToken())
}

func (r *relay) admin(t testing.TB) (desksidev1.ConsoleServiceClient, context.Context) {
	return r.console(t, "admin", adminPassword)
}

// dial opens a TLS 1.3 connection trusting the relay CA, with an optional
// client certificate.
func (r *relay) dial(t testing.TB, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "127.0.0.1"}
	cfg.RootCAs = r.caPool()
	if cert != nil {
		// Always present the certificate, even one whose issuer the relay
		// does not list as acceptable, so refusals are the relay's doing.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	cc, err := grpc.NewClient("passthrough:///"+r.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func (r *relay) caPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(r.srv.CA().CA())
	return p
}

func cloneInv(inv *desksidev1.Inventory) *desksidev1.Inventory {
	return proto.Clone(inv).(*desksidev1.Inventory)
}

func (r *relay) token(t testing.TB, ttl time.Duration, uses uint32) string {
	t.Helper()
	cs, ctx := r.admin(t)
	resp, err := cs.CreateEnrollmentToken(ctx, &desksidev1.CreateEnrollmentTokenRequest{Ttl: durationpb.New(ttl), Uses: uses})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return resp.GetToken()
}

func (r *relay) enroll(t testing.TB, token string) (*enroll.State, error) {
	t.Helper()
	return enroll.Enroll(context.Background(), enroll.Options{
		Relay: r.addr, Token: token, StateDir: t.TempDir(), Hostname: "test-host", Version: "test",
		MachineID: servertest.NewMachineID(),
	})
}

func (r *relay) mustEnroll(t testing.TB) *enroll.State {
	t.Helper()
	st, err := r.enroll(t, r.token(t, time.Hour, 1))
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return st
}

// fakeInventory is an inventory reader whose answer the test controls.
type fakeInventory struct {
	mu  sync.Mutex
	inv *desksidev1.Inventory
}

func (f *fakeInventory) Read(context.Context) (*desksidev1.Inventory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := cloneInv(f.inv)
	c.CollectedAt = timestamppb.Now()
	return c, nil
}

func (f *fakeInventory) Set(inv *desksidev1.Inventory) {
	f.mu.Lock()
	f.inv = inv
	f.mu.Unlock()
}

func sampleInventory() *desksidev1.Inventory {
	return &desksidev1.Inventory{
		Hostname: "test-host",
		Os:       &desksidev1.OperatingSystem{Name: "debian", Version: "12", Kernel: "6.1.0", Arch: "x86_64"},
		Cpu:      &desksidev1.Cpu{Model: "Test CPU", Cores: 2, Threads: 4},
		Memory:   &desksidev1.Memory{TotalBytes: 16 << 30},
		Partitions: []*desksidev1.Partition{
			{Device: "/dev/sda1", Mountpoint: "/", Fstype: "ext4", TotalBytes: 100 << 30, UsedBytes: 40 << 30, FreeBytes: 60 << 30},
		},
		System: &desksidev1.SystemInfo{Manufacturer: "Acme", Model: "Desk 3000"},
	}
}

// fakeSampler returns plain health samples.
type fakeSampler struct{}

func (fakeSampler) Sample(context.Context) (*desksidev1.HealthSample, error) {
	return &desksidev1.HealthSample{
		Time: timestamppb.Now(), CpuPercent: 12.5, Load1: 0.5, MemUsedBytes: 4 << 30, MemAvailableBytes: 12 << 30,
		MemTotalBytes: 16 << 30, Mounts: []*desksidev1.MountUsage{{Mountpoint: "/", UsedPercent: 40}},
	}, nil
}

type agentOpts struct {
	inv      link.InventoryReader
	sampler  link.Sampler
	interval time.Duration
	invEvery time.Duration
}

type runningAgent struct {
	link   *link.Link
	spool  *spool.Spool
	cancel context.CancelFunc
	done   chan error
}

// runAgent runs a real agent link for st until the test ends.
func runAgent(t testing.TB, st *enroll.State, o agentOpts) *runningAgent {
	t.Helper()
	if o.inv == nil {
		o.inv = &fakeInventory{inv: sampleInventory()}
	}
	if o.sampler == nil {
		o.sampler = fakeSampler{}
	}
	sp, err := spool.Open(filepath.Join(st.Dir, "spool"), 0)
	if err != nil {
		t.Fatal(err)
	}
	l, err := link.New(link.Config{
		State: st, Spool: sp, Inventory: o.inv, Health: o.sampler, HealthInterval: o.interval,
		InventoryInterval: o.invEvery, Hostname: "test-host", Version: "test", Logger: discardLogger(),
		Backoff: link.Backoff{Base: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, Max: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &runningAgent{link: l, spool: sp, cancel: cancel, done: make(chan error, 1)}
	go func() { a.done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-a.done
		sp.Close()
	})
	return a
}

// checkFor polls f until it returns nil or the timeout passes.
var checkFor = servertest.CheckFor

var errNotYet = errors.New("not yet")

type netListenConfig struct{}

func (netListenConfig) listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func newPoolFor(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}
