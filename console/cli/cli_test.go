package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/console/cli"
	"github.com/deskside/deskside/internal/pemfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store"
)

const adminPassword = "correct-horse-battery"

// relay is a real relay on 127.0.0.1:0 with real TLS.
type relay struct {
	srv     *server.Server
	addr    string
	caPath  string
	outputs *bytes.Buffer // everything any CLI run printed
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	srv, err := service.New(ctx, service.Config{TURNListen: "off", Config: server.Config{
		DataDir: dir, Listen: "127.0.0.1:0", AdminListen: "off", WebListen: "off", AdminPassword: adminPassword,
		Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler),
	}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
	return &relay{srv: srv, addr: srv.Addr().String(), caPath: filepath.Join(dir, pki.CAFile), outputs: new(bytes.Buffer)}
}

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cliEnv runs the CLI with its own session file.
type cliEnv struct {
	t     *testing.T
	r     *relay
	cfg   string
	env   map[string]string
	stdin string
}

func (r *relay) cli(t *testing.T) *cliEnv {
	return &cliEnv{t: t, r: r, cfg: filepath.Join(t.TempDir(), "conf", "cli.json"), env: map[string]string{}}
}

func (c *cliEnv) run(args ...string) result {
	c.t.Helper()
	env := func(k string) string {
		if k == "DESKSIDE_CONFIG" {
			return c.cfg
		}
		return c.env[k]
	}
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), args, strings.NewReader(c.stdin), &stdout, &stderr, env)
	c.stdin = ""
	c.r.outputs.Write(stdout.Bytes())
	c.r.outputs.Write(stderr.Bytes())
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// must runs the CLI and fails the test unless it exits 0.
func (c *cliEnv) must(args ...string) result {
	c.t.Helper()
	res := c.run(args...)
	if res.code != 0 {
		c.t.Fatalf("deskside %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// fails runs the CLI and checks it exits with code and says want on stderr.
func (c *cliEnv) fails(code int, want string, args ...string) result {
	c.t.Helper()
	res := c.run(args...)
	if res.code != code || !strings.Contains(res.stderr, want) {
		c.t.Fatalf("deskside %s: want exit %d and %q on stderr, got %s", strings.Join(args, " "), code, want, res)
	}
	return res
}

func (c *cliEnv) login(user, password string, extra ...string) result {
	c.t.Helper()
	c.stdin = password + "\n"
	return c.must(append([]string{"login", "--relay", c.r.addr, "--ca", c.r.caPath, "--user", user, "--password-stdin"}, extra...)...)
}

func (c *cliEnv) token() string {
	c.t.Helper()
	b, err := os.ReadFile(c.cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	var v struct {
		Token string `json:"session_token"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		c.t.Fatal(err)
	}
	return v.Token
}

// noSecret checks no run printed the session token.
func (r *relay) noSecret(t *testing.T, token string) {
	t.Helper()
	if token == "" {
		t.Fatal("no session token to check for")
	}
	if strings.Contains(r.outputs.String(), token) {
		t.Error("the session token was printed")
	}
}

func TestLogin(t *testing.T) {
	r := startRelay(t)
	ca, err := pemfile.ReadCertificate(r.caPath)
	if err != nil {
		t.Fatal(err)
	}
	pin := wire.CAPin(ca.Raw)

	t.Run("ca file", func(t *testing.T) {
		c := r.cli(t)
		res := c.login("admin", adminPassword)
		if !strings.Contains(res.stdout, "Signed in to "+r.addr+" as admin (role admin)") {
			t.Errorf("login output: %s", res)
		}
		if runtime.GOOS != "windows" {
			fi, err := os.Stat(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("session file mode %04o, want 0600", fi.Mode().Perm())
			}
			di, err := os.Stat(filepath.Dir(c.cfg))
			if err != nil {
				t.Fatal(err)
			}
			if di.Mode().Perm() != 0o700 {
				t.Errorf("session directory mode %04o, want 0700", di.Mode().Perm())
			}
		}
		res = c.must("whoami")
		if !strings.Contains(res.stdout, "admin (role admin) on relay "+r.addr) {
			t.Errorf("whoami: %s", res)
		}
		// Signing in again to the same relay reuses the saved CA.
		c.env["DESKSIDE_PASSWORD"] = adminPassword
		c.must("login")
		r.noSecret(t, c.token())
	})

	t.Run("wrong password", func(t *testing.T) {
		c := r.cli(t)
		c.stdin = "not-the-password\n"
		c.fails(1, "wrong name, password or TOTP code", "login", "--relay", r.addr, "--ca", r.caPath, "--password-stdin")
		if _, err := os.Stat(c.cfg); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed login wrote the session file: %v", err)
		}
	})

	t.Run("no ca", func(t *testing.T) {
		c := r.cli(t)
		c.env["DESKSIDE_PASSWORD"] = adminPassword
		res := c.fails(1, "the relay's certificate is not trusted: pass --ca <data-dir>/ca.pem or --ca-pin", "login", "--relay", r.addr)
		if strings.Contains(res.stderr, "cannot reach") {
			t.Errorf("a certificate error reported as unreachable: %s", res)
		}
	})

	t.Run("ca pin", func(t *testing.T) {
		c := r.cli(t)
		c.env["DESKSIDE_PASSWORD"] = adminPassword
		c.must("login", "--relay", r.addr, "--ca-pin", pin)
		// Later calls trust the CA that matched the pin.
		c.must("whoami")
	})

	t.Run("wrong pin", func(t *testing.T) {
		c := r.cli(t)
		c.env["DESKSIDE_PASSWORD"] = adminPassword
		other := wire.CAPin([]byte("some other certificate"))
		c.fails(1, "does not match --ca-pin", "login", "--relay", r.addr, "--ca-pin", other)
		c.fails(1, "--ca-pin must be", "login", "--relay", r.addr, "--ca-pin", "nonsense")
	})

	t.Run("wrong ca", func(t *testing.T) {
		other, err := pki.LoadOrCreate(t.TempDir(), pki.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c := r.cli(t)
		c.env["DESKSIDE_PASSWORD"] = adminPassword
		c.fails(1, "did not sign the certificate", "login", "--relay", r.addr, "--ca", other.CAPath())
	})

	t.Run("no password", func(t *testing.T) {
		c := r.cli(t)
		c.fails(1, "--password-stdin", "login", "--relay", r.addr, "--ca", r.caPath)
		c.stdin = ""
		c.fails(1, "standard input is empty", "login", "--relay", r.addr, "--ca", r.caPath, "--password-stdin")
	})

	t.Run("unreachable", func(t *testing.T) {
		c := r.cli(t)
		c.env["DESKSIDE_PASSWORD"] = adminPassword
		c.fails(1, "cannot reach relay at 127.0.0.1:1", "login", "--relay", "127.0.0.1:1", "--ca", r.caPath)
	})

	t.Run("insecure session file", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("mode bits mean nothing on Windows")
		}
		c := r.cli(t)
		c.login("admin", adminPassword)
		if err := os.Chmod(c.cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		c.fails(1, "chmod 600", "whoami")
	})

	t.Run("not signed in", func(t *testing.T) {
		c := r.cli(t)
		c.fails(1, "not signed in", "devices", "list")
	})
}

func TestLogout(t *testing.T) {
	r := startRelay(t)
	c := r.cli(t)
	c.login("admin", adminPassword)
	tok := c.token()
	res := c.must("logout")
	if !strings.Contains(res.stdout, "Signed out of "+r.addr) {
		t.Errorf("logout: %s", res)
	}
	c.fails(1, "deskside login", "devices", "list")
	// The relay ended the session too: a copy of the old token is refused.
	other := r.cli(t)
	other.login("admin", adminPassword)
	b, _ := os.ReadFile(other.cfg)
	if err := os.WriteFile(other.cfg, bytes.Replace(b, []byte(other.token()), []byte(tok), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	other.fails(1, "not signed in or session expired: run `deskside login`", "devices", "list")
	r.noSecret(t, tok)
}

func TestToken(t *testing.T) {
	r := startRelay(t)
	c := r.cli(t)
	c.login("admin", adminPassword)

	res := c.must("token", "create", "--ttl", "2h", "--uses", "3")
	var tokLine string
	for _, l := range strings.Split(res.stdout, "\n") {
		if strings.HasPrefix(l, "  deskside-agent enroll ") {
			tokLine = l
		}
	}
	want := "  deskside-agent enroll --relay " + r.addr + " --token "
	if !strings.HasPrefix(tokLine, want) {
		t.Fatalf("no enroll command line in: %s", res)
	}
	tok, err := wire.ParseToken(strings.TrimPrefix(tokLine, want))
	if err != nil {
		t.Fatalf("token from the enroll line: %v", err)
	}
	if tok.Pin != r.srv.CA().Pin() {
		t.Errorf("token pin %s, relay CA pin %s", tok.Pin, r.srv.CA().Pin())
	}
	if !strings.Contains(res.stdout, "valid 3 uses") {
		t.Errorf("token create output: %s", res)
	}

	res = c.must("token", "create", "-q")
	if _, err := wire.ParseToken(res.stdout); err != nil || strings.Count(res.stdout, "\n") != 1 {
		t.Errorf("token create -q printed %q: %v", res.stdout, err)
	}
	c.fails(2, "--ttl must be", "token", "create", "--ttl", "1000h")

	res = c.must("audit", "--limit", "10")
	if !strings.Contains(res.stdout, "token.create") || !strings.Contains(res.stdout, "ACTION") {
		t.Errorf("audit: %s", res)
	}

	// A tier-1 technician may not create tokens.
	hash, err := auth.HashPassword("tier-one-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Store().CreateTechnician(context.Background(), store.Technician{
		Name: "tier1", PasswordHash: hash, Role: int(desksidev1.Role_ROLE_TIER1), CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	t1 := r.cli(t)
	t1.login("tier1", "tier-one-password")
	res = t1.fails(1, "permission denied", "token", "create")
	if !strings.Contains(res.stderr, "needs role admin; you are tier1") {
		t.Errorf("permission error does not say which role is needed: %s", res)
	}
	t1.fails(1, "permission denied", "audit")
	t1.must("devices", "list") // tier 1 sees the fleet
	r.noSecret(t, c.token())
	r.noSecret(t, t1.token())
}

// Hostile strings an agent might report.
const (
	formula = `=cmd|' /C calc'!A0`
	script  = `<script>alert(1)</script>`
	ansi    = "\x1b[31mred\x1b[0m"
	title   = "\x1b]0;pwned\x07"
)

// seed adds devices straight to the relay's store.
func seed(t *testing.T, r *relay) (hostileID, plainID string) {
	t.Helper()
	ctx := context.Background()
	st := r.srv.Store()
	now := time.Now()
	add := func(d store.Device, inv *desksidev1.Inventory, changes []store.InventoryChange) {
		t.Helper()
		if err := st.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		if inv == nil {
			return
		}
		data, err := proto.Marshal(inv)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutInventory(ctx, store.Inventory{DeviceID: d.ID, CollectedAt: now, ReceivedAt: now, Data: data},
			server.Summarize(inv), changes); err != nil {
			t.Fatal(err)
		}
	}
	hostileID, plainID = "dev-00000000000000000001", "dev-00000000000000000002"
	hostile := &desksidev1.Inventory{
		Hostname: formula,
		Os:       &desksidev1.OperatingSystem{Name: "Ubuntu" + ansi, Version: "+24.04", Kernel: "-6.8", Arch: "amd64"},
		Cpu:      &desksidev1.Cpu{Model: "@SUM(1+1)", Cores: 4, Threads: 8},
		Memory:   &desksidev1.Memory{TotalBytes: 16 << 30, SwapTotalBytes: 2 << 30},
		System:   &desksidev1.SystemInfo{Manufacturer: script, Model: "\tModel" + title, Serial: "\rSER"},
		Bios:     &desksidev1.Bios{Vendor: "AMI", Version: "=1+2"},
		Partitions: []*desksidev1.Partition{
			{Device: "/dev/sda1", Mountpoint: "/", Fstype: "ext4", TotalBytes: 100 << 30, UsedBytes: 40 << 30, FreeBytes: 60 << 30},
		},
		Disks: []*desksidev1.Disk{{Name: "sda", Model: ansi, Serial: "S1", SizeBytes: 128 << 30}},
		Nics: []*desksidev1.NetworkInterface{
			{Name: "lo", Addresses: []string{"127.0.0.1/8", "::1/128"}, Up: true},
			{Name: "eth0", Mac: "aa:bb:cc:dd:ee:ff", Addresses: []string{"10.0.0.5/24", "fe80::1/64"}, Up: true, SpeedMbps: 1000, Mtu: 1500},
		},
		Users: []*desksidev1.LoggedInUser{{Name: "bob" + ansi, Terminal: "tty1"}},
		Software: func() []*desksidev1.Software {
			var s []*desksidev1.Software
			for i := range 15 {
				s = append(s, &desksidev1.Software{Name: fmt.Sprintf("pkg%02d", i), Version: "1.0", Source: "dpkg"})
			}
			return append(s, &desksidev1.Software{Name: "evil" + title, Version: ansi, Source: "dpkg"})
		}(),
		Gpus:      []*desksidev1.Gpu{{Vendor: "Intel", Model: script}},
		Batteries: []*desksidev1.Battery{{Name: "BAT0", ChargePercent: 80, State: "charging", FullWh: 45, DesignWh: 50}},
	}
	add(store.Device{
		ID: hostileID, Hostname: formula, AgentVersion: "1.0" + ansi, OS: "linux" + ansi, Arch: "amd64",
		FirstSeen: now.Add(-48 * time.Hour), LastSeen: now.Add(-3 * time.Minute), Online: true,
	}, hostile, []store.InventoryChange{
		{Time: now.Add(-time.Hour), Field: "memory.total", From: "8 GiB", To: "16 GiB"},
		{Time: now.Add(-time.Hour), Field: "software[evil" + title + "]", From: "", To: ansi},
	})
	add(store.Device{
		ID: plainID, Hostname: "zz-plain-host", AgentVersion: "1.0", OS: "windows", Arch: "amd64",
		FirstSeen: now.Add(-time.Hour), LastSeen: now.Add(-2 * time.Hour),
	}, &desksidev1.Inventory{
		Hostname: "zz-plain-host",
		Os:       &desksidev1.OperatingSystem{Name: "Windows 11", Version: "23H2", Arch: "amd64"},
		Memory:   &desksidev1.Memory{TotalBytes: 8 << 30},
	}, nil)
	add(store.Device{ID: "dev-00000000000000000003", Hostname: "no-inventory", OS: "darwin", LastSeen: now}, nil, nil)

	h := &desksidev1.HealthSample{
		Id: 1, Time: timestamppb.New(now.Add(-time.Minute)), CpuPercent: 12.5, Load1: 0.5, Load5: 0.4, Load15: 0.3,
		MemUsedBytes: 6 << 30, MemAvailableBytes: 10 << 30, MemTotalBytes: 16 << 30, SwapTotalBytes: 2 << 30,
		Mounts:       []*desksidev1.MountUsage{{Mountpoint: "/" + ansi, UsedPercent: 40, FreeBytes: 60 << 30, TotalBytes: 100 << 30}},
		TopCpu:       []*desksidev1.ProcessUsage{{Pid: 42, Name: "miner" + ansi, User: "root", CpuPercent: 90, RssBytes: 1 << 30}},
		TopMemory:    []*desksidev1.ProcessUsage{{Pid: 43, Name: "chrome", User: "bob", RssBytes: 2 << 30}},
		Temperatures: []*desksidev1.Temperature{{Sensor: "cpu" + ansi, Celsius: 55}},
	}
	detail, err := proto.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddHealthSamples(ctx, hostileID, []store.HealthSample{{
		ID: 1, Time: h.GetTime().AsTime(), CPUPercent: 12.5, Load1: 0.5, MemUsedBytes: 6 << 30, Detail: detail,
	}}); err != nil {
		t.Fatal(err)
	}
	return hostileID, plainID
}

// noEscapes fails when terminal output holds control characters other
// than newlines.
func noEscapes(t *testing.T, what string, res result) {
	t.Helper()
	for _, s := range []string{res.stdout, res.stderr} {
		if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r < 0xa0 }); i >= 0 {
			t.Errorf("%s: control character %q in output: %q", what, s[i], s)
		}
	}
}

func TestFleet(t *testing.T) {
	r := startRelay(t)
	c := r.cli(t)
	c.login("admin", adminPassword)

	res := c.must("devices", "list")
	if !strings.Contains(res.stdout, "No devices enrolled yet") || !strings.Contains(res.stdout, "deskside token create") {
		t.Errorf("empty fleet: %s", res)
	}
	res = c.must("devices", "list", "--json")
	if strings.TrimSpace(res.stdout) != "[]" {
		t.Errorf("empty fleet as JSON: %s", res)
	}
	res = c.must("inventory", "export", "--format", "csv")
	if strings.TrimSpace(res.stdout) != strings.Join(csvHeaderForTest, ",") {
		t.Errorf("empty export: %s", res)
	}

	hostileID, plainID := seed(t, r)

	t.Run("list", func(t *testing.T) {
		res := c.must("devices", "list")
		noEscapes(t, "devices list", res)
		for _, want := range []string{"ID", "HOSTNAME", "LAST SEEN", "DISK FREE", hostileID, plainID, formula, "3m ago", "2h ago", "16 GiB", "60 GiB", "yes", "no"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("devices list lacks %q:\n%s", want, res.stdout)
			}
		}
		if lines := strings.Count(res.stdout, "\n"); lines != 4 {
			t.Errorf("devices list: %d lines, want header + 3:\n%s", lines, res.stdout)
		}

		res = c.must("devices", "list", "--os", "windows")
		if !strings.Contains(res.stdout, plainID) || strings.Contains(res.stdout, hostileID) {
			t.Errorf("--os windows: %s", res)
		}
		res = c.must("devices", "list", "--online")
		if !strings.Contains(res.stdout, hostileID) || strings.Contains(res.stdout, plainID) {
			t.Errorf("--online: %s", res)
		}
		res = c.must("devices", "list", "--hostname", "no-such-host")
		if !strings.Contains(res.stdout, "No devices match") {
			t.Errorf("no match: %s", res)
		}
		c.fails(2, "not both", "devices", "list", "--online", "--offline")

		res = c.must("devices", "list", "--limit", "2")
		if strings.Count(res.stdout, "dev-") != 2 || !strings.Contains(res.stderr, "Showing 2 of 3 devices: pass --all") {
			t.Errorf("one page: %s", res)
		}
		res = c.must("devices", "list", "--limit", "1", "--all", "--json")
		var devs []json.RawMessage
		if err := json.Unmarshal([]byte(res.stdout), &devs); err != nil || len(devs) != 3 {
			t.Fatalf("--all --json: %v: %s", err, res)
		}
		d := new(desksidev1.Device)
		if err := protojson.Unmarshal(devs[0], d); err != nil || d.GetHostname() != formula {
			t.Errorf("first device %v: %v", d, err)
		}
	})

	t.Run("show", func(t *testing.T) {
		res := c.must("devices", "show", hostileID)
		noEscapes(t, "devices show", res)
		for _, want := range []string{
			"Device " + hostileID, formula, "System", "Operating system", "CPU", "Memory", "Disks", "Partitions",
			"Network", "Users", "Software (16 packages)", "pkg00", "… and 6 more: pass --software", "GPUs", "Batteries",
			"Health, sampled", "12.5%", "0.50 0.40 0.30", "6 GiB used of 16 GiB", "Top processes by CPU", "miner",
			"Temperatures", "55 °C", script, "100 GiB", "40%", "10.0.0.5/24", "4 cores, 8 threads", "90% (45.0 of 50.0 Wh)",
		} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("devices show lacks %q", want)
			}
		}
		if t.Failed() {
			t.Log(res.stdout)
		}
		res = c.must("devices", "show", "--software", hostileID)
		noEscapes(t, "devices show --software", res)
		if !strings.Contains(res.stdout, "pkg14") || !strings.Contains(res.stdout, "evil") || strings.Contains(res.stdout, "more: pass --software") {
			t.Errorf("--software: %s", res)
		}
		res = c.must("devices", "show", "dev-00000000000000000003")
		if !strings.Contains(res.stdout, "No inventory received yet") || !strings.Contains(res.stdout, "No health samples yet") {
			t.Errorf("device without inventory: %s", res)
		}
		res = c.must("devices", "show", hostileID, "--json")
		got := new(desksidev1.GetDeviceResponse)
		if err := protojson.Unmarshal([]byte(res.stdout), got); err != nil {
			t.Fatalf("show --json: %v", err)
		}
		if got.GetInventory().GetSystem().GetManufacturer() != script || len(got.GetInventory().GetSoftware()) != 16 {
			t.Errorf("show --json: %v", got)
		}
		c.fails(1, "no device", "devices", "show", "dev-nope")
		c.fails(2, "a device ID is required", "devices", "show")
	})

	t.Run("history", func(t *testing.T) {
		res := c.must("inventory", "history", hostileID)
		noEscapes(t, "inventory history", res)
		for _, want := range []string{"TIME", "FIELD", "FROM", "TO", "memory.total", "8 GiB", "→", "16 GiB", "(none)", "software[evil"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("history lacks %q:\n%s", want, res.stdout)
			}
		}
		res = c.must("inventory", "history", hostileID, "--limit", "1", "--json")
		var ch []json.RawMessage
		if err := json.Unmarshal([]byte(res.stdout), &ch); err != nil || len(ch) != 1 {
			t.Errorf("history --json: %v: %s", err, res)
		}
		res = c.must("inventory", "history", plainID)
		if !strings.Contains(res.stdout, "No inventory changes recorded") {
			t.Errorf("empty history: %s", res)
		}
	})

	t.Run("export csv", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "fleet.csv")
		res := c.must("inventory", "export", "--format", "csv", "-o", out)
		if !strings.Contains(res.stderr, "Exported 3 devices to "+out) {
			t.Errorf("export: %s", res)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.ContainsRune(b, 0x1b) || bytes.ContainsRune(b, 0x07) {
			t.Errorf("control characters in the CSV: %q", b)
		}
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 4 {
			t.Fatalf("%d CSV records, want header + 3", len(recs))
		}
		if strings.Join(recs[0], ",") != strings.Join(csvHeaderForTest, ",") {
			t.Errorf("header %q", recs[0])
		}
		col := map[string]int{}
		for i, h := range recs[0] {
			col[h] = i
		}
		var row []string
		for _, rec := range recs[1:] {
			if rec[col["id"]] == hostileID {
				row = rec
			}
		}
		if row == nil {
			t.Fatalf("no row for %s", hostileID)
		}
		for field, want := range map[string]string{
			"hostname": "'" + formula, "online": "true", "os_name": "Ubuntured", "os_version": "'+24.04", "kernel": "'-6.8",
			"arch": "amd64", "manufacturer": script, "model": "' Model", "serial": "' SER", "bios_version": "'=1+2",
			"cpu_model": "'@SUM(1+1)", "cores": "4", "threads": "8", "memory_bytes": "17179869184",
			"disk_total_bytes": "107374182400", "disk_used_bytes": "42949672960", "disk_free_bytes": "64424509440", "ip_addresses": "10.0.0.5 fe80::1",
			"mac_addresses": "aa:bb:cc:dd:ee:ff", "user": "bobred", "agent_version": "1.0red", "software_count": "16",
		} {
			if got := row[col[field]]; got != want {
				t.Errorf("%s = %q, want %q", field, got, want)
			}
		}
		if _, err := time.Parse(time.RFC3339, row[col["last_seen"]]); err != nil {
			t.Errorf("last_seen: %v", err)
		}
		for _, rec := range recs[1:] {
			for i, cell := range rec {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("%s of %s starts a formula: %q", recs[0][i], rec[0], cell)
				}
			}
		}
		if runtime.GOOS != "windows" {
			if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("export file: %v, %v", fi.Mode(), err)
			}
		}

		res = c.must("inventory", "export", "--online")
		recs, err = csv.NewReader(strings.NewReader(res.stdout)).ReadAll()
		if err != nil || len(recs) != 2 || recs[1][0] != hostileID {
			t.Errorf("export --online: %v: %q", err, recs)
		}
	})

	t.Run("export json", func(t *testing.T) {
		res := c.must("inventory", "export", "--format", "json", "--hostname", "plain")
		var items []json.RawMessage
		if err := json.Unmarshal([]byte(res.stdout), &items); err != nil || len(items) != 1 {
			t.Fatalf("export json: %v: %s", err, res)
		}
		got := new(desksidev1.ExportInventoryResponse)
		if err := protojson.Unmarshal(items[0], got); err != nil {
			t.Fatal(err)
		}
		if got.GetDevice().GetId() != plainID || got.GetInventory().GetOs().GetName() != "Windows 11" {
			t.Errorf("export json: %v", got)
		}
		c.fails(2, "--format must be csv or json", "inventory", "export", "--format", "xml")
	})

	t.Run("agent actions", func(t *testing.T) {
		// No agent is connected, so the relay says the device is offline.
		c.fails(1, "is offline", "devices", "ping", hostileID)
		c.fails(1, "is offline", "devices", "refresh", hostileID)
		res := c.must("devices", "revoke", plainID)
		if !strings.Contains(res.stdout, "Revoked "+plainID) {
			t.Errorf("revoke: %s", res)
		}
		res = c.must("devices", "list")
		if strings.Contains(res.stdout, plainID) {
			t.Errorf("revoked device listed by default: %s", res)
		}
		res = c.must("devices", "list", "--include-revoked")
		if !strings.Contains(res.stdout, "revoked") {
			t.Errorf("--include-revoked: %s", res)
		}
		res = c.must("audit")
		noEscapes(t, "audit", res)
		if !strings.Contains(res.stdout, "device.revoke") || !strings.Contains(res.stdout, "inventory.export") {
			t.Errorf("audit: %s", res)
		}
	})
	r.noSecret(t, c.token())
}

var csvHeaderForTest = []string{
	"id", "hostname", "online", "last_seen", "os_name", "os_version", "kernel", "arch",
	"manufacturer", "model", "serial", "bios_version", "cpu_model", "cores", "threads",
	"memory_bytes", "disk_total_bytes", "disk_used_bytes", "disk_free_bytes", "ip_addresses", "mac_addresses",
	"user", "agent_version", "software_count",
}

func TestUsage(t *testing.T) {
	run := func(args ...string) result {
		var stdout, stderr bytes.Buffer
		env := func(string) string { return filepath.Join(t.TempDir(), "cli.json") }
		code := cli.Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr, env)
		return result{code, stdout.String(), stderr.String()}
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stream string // "out" or "err"
		want   string
	}{
		{nil, 2, "err", "Commands:"},
		{[]string{"-h"}, 0, "out", "Commands:"},
		{[]string{"help"}, 0, "out", "devices list"},
		{[]string{"frobnicate"}, 2, "err", `unknown command "frobnicate"`},
		{[]string{"devices"}, 2, "err", "devices needs a subcommand"},
		{[]string{"devices", "frob"}, 2, "err", `unknown command "devices frob"`},
		{[]string{"devices", "-h"}, 0, "out", "devices show"},
		{[]string{"login", "--bogus"}, 2, "err", "flag provided but not defined"},
		{[]string{"login", "--ca", "a", "--ca-pin", "b", "--relay", "x:1"}, 2, "err", "not both"},
		{[]string{"whoami", "extra"}, 2, "err", `unexpected argument "extra"`},
		{[]string{"version"}, 0, "out", "deskside dev ("},
		{[]string{"help", "token", "create"}, 0, "err", "deskside-agent enroll"},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			res := run(tc.args...)
			got := res.stdout
			if tc.stream == "err" {
				got = res.stderr
			}
			if res.code != tc.code || !strings.Contains(got, tc.want) {
				t.Errorf("want exit %d and %q on std%s, got %s", tc.code, tc.want, tc.stream, res)
			}
		})
	}
	// Every command has -h help.
	for _, args := range [][]string{
		{"login"}, {"logout"}, {"whoami"}, {"devices", "list"}, {"devices", "show"}, {"devices", "ping"},
		{"devices", "refresh"}, {"devices", "revoke"}, {"inventory", "history"}, {"inventory", "export"},
		{"token", "create"}, {"audit"}, {"version"}, {"devices", "group"}, {"diag"}, {"diag", "history"},
		{"run"}, {"action"}, {"group", "thresholds"},
	} {
		t.Run(strings.Join(args, "_")+"_help", func(t *testing.T) {
			res := run(append(args, "-h")...)
			if res.code != 0 || !strings.Contains(res.stderr, "Usage:\n  deskside "+strings.Join(args, " ")) {
				t.Errorf("-h: %s", res)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	app := &cli.App{Version: "1.2.3"}
	if code := app.Main(context.Background(), []string{"version"}, nil, &stdout, io.Discard, nil); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(stdout.String(), "deskside 1.2.3 (go") {
		t.Errorf("version: %q", stdout.String())
	}
}
