package diag

import (
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// closedPort returns a loopback address nothing listens on (for both TCP
// and UDP: one was bound and released).
func closedPort(t *testing.T, network string) string {
	t.Helper()
	var addr string
	switch network {
	case "udp":
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr().String()
		pc.Close()
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		l.Close()
	}
	return addr
}

// fakeDNS serves A records for names on a loopback UDP port; other names
// get NXDOMAIN, AAAA questions an empty answer.
func fakeDNS(t *testing.T, names map[string][4]byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			ip, known := names[strings.TrimSuffix(q.Name.String(), ".")]
			rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
			if !known {
				rh.RCode = dnsmessage.RCodeNameError
			}
			b := dnsmessage.NewBuilder(nil, rh)
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if known && q.Type == dnsmessage.TypeA {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: ip})
			}
			msg, err := b.Finish()
			if err != nil {
				continue
			}
			_, _ = pc.WriteTo(msg, from)
		}
	}()
	return pc.LocalAddr().String()
}

func TestDNS(t *testing.T) {
	live := fakeDNS(t, map[string][4]byte{"relay.deskside.test": {192, 0, 2, 55}})
	dead := closedPort(t, "udp")
	tests := []struct {
		name    string
		cfg     *desksidev1.CheckConfig
		want    desksidev1.CheckStatus
		inSum   string
		evKey   string // evidence naming the server
		evValue string
	}{
		{
			name:  "dead resolver fails and is named",
			cfg:   &desksidev1.CheckConfig{DnsName: "relay.deskside.test", DnsServers: []string{dead}},
			want:  statusFail,
			inSum: "DNS server " + dead + " cannot resolve relay.deskside.test",
			evKey: "server " + dead, evValue: "refused",
		},
		{
			name:  "live resolver answers",
			cfg:   &desksidev1.CheckConfig{DnsName: "relay.deskside.test", DnsServers: []string{live}},
			want:  statusPass,
			inSum: "resolves relay.deskside.test",
			evKey: "server " + live, evValue: "192.0.2.55",
		},
		{
			name:  "one dead, one live warns",
			cfg:   &desksidev1.CheckConfig{DnsName: "relay.deskside.test", DnsServers: []string{live, dead}},
			want:  statusWarn,
			inSum: dead,
			evKey: "server " + dead, evValue: "failed",
		},
		{
			name:  "unknown name fails",
			cfg:   &desksidev1.CheckConfig{DnsName: "nothere.deskside.test", DnsServers: []string{live}},
			want:  statusFail,
			inSum: "the name does not exist",
			evKey: "server " + live, evValue: "does not exist",
		},
		{
			name:  "bad server address",
			cfg:   &desksidev1.CheckConfig{DnsName: "relay.deskside.test", DnsServers: []string{"dns.example"}},
			want:  statusFail,
			evKey: "server dns.example", evValue: "not an IP address",
		},
		{
			// localhost is in the hosts file: the system resolver answers
			// without a DNS query.
			name:  "system resolver, localhost",
			cfg:   nil,
			want:  statusPass,
			inSum: "resolves localhost",
			evKey: "name", evValue: "localhost",
		},
	}
	r := New(Options{Logger: testLogger(t)})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := r.Run(t.Context(), &desksidev1.RunChecks{Checks: []string{"network.dns"}, Config: tt.cfg})
			res := resultOf(t, rep, "network.dns")
			if res.GetStatus() != tt.want || !strings.Contains(res.GetSummary(), tt.inSum) {
				t.Errorf("got %s\nwant %v with %q", describe(res), tt.want, tt.inSum)
			}
			if v, ok := evidence(res, tt.evKey); !ok || !strings.Contains(v, tt.evValue) {
				t.Errorf("evidence %q = %q, want it to contain %q\n%s", tt.evKey, v, tt.evValue, describe(res))
			}
			if res.GetStatus() == statusFail && res.GetHint() == "" {
				t.Error("a failure without a hint")
			}
		})
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		http.NotFound(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case makes the client abort handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(plain.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	host := srv.Listener.Addr().String()
	closed := closedPort(t, "tcp")
	nearExpiry := func() time.Time { return srv.Certificate().NotAfter.Add(-48 * time.Hour) }

	tests := []struct {
		name    string
		opts    Options
		url     string
		want    desksidev1.CheckStatus
		inSum   string
		evKey   string
		evValue string
	}{
		{
			name: "relay default URL, 404 is reachable", opts: Options{RelayHost: host, RootCAs: pool},
			want: statusPass, inSum: "404 Not Found", evKey: "tls", evValue: "TLS 1.3",
		},
		{
			name: "redirects are not followed", opts: Options{RootCAs: pool}, url: srv.URL + "/moved",
			want: statusPass, inSum: "302", evKey: "status", evValue: "302 Found",
		},
		{
			name: "plain http", url: plain.URL,
			want: statusPass, inSum: "204", evKey: "protocol", evValue: "HTTP/1.1",
		},
		{
			name: "untrusted certificate", opts: Options{RelayHost: host},
			want: statusFail, inSum: "the certificate is not trusted", evKey: "error", evValue: "certificate",
		},
		{
			name: "certificate about to expire", opts: Options{RelayHost: host, RootCAs: pool, Now: nearExpiry},
			want: statusWarn, inSum: "expires in 2d0h", evKey: "certificate expires", evValue: "in 2d0h",
		},
		{
			name: "unreachable", url: "https://" + closed + "/",
			want: statusFail, inSum: "connection refused", evKey: "url", evValue: closed,
		},
		{
			name: "no URL", want: statusUnavailable, inSum: "no URL configured",
		},
		{
			name: "credentials are not echoed", opts: Options{RootCAs: pool}, url: "https://user:hunter2@" + host + "/?token=abc",
			want: statusPass, evKey: "url", evValue: "user:xxxxx@",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Logger = testLogger(t)
			rep := New(tt.opts).Run(t.Context(), &desksidev1.RunChecks{
				Checks: []string{"network.https"},
				Config: &desksidev1.CheckConfig{HttpsUrl: tt.url},
			})
			res := resultOf(t, rep, "network.https")
			if res.GetStatus() != tt.want || !strings.Contains(res.GetSummary(), tt.inSum) {
				t.Errorf("got %s\nwant %v with %q", describe(res), tt.want, tt.inSum)
			}
			if tt.evKey != "" {
				if v, ok := evidence(res, tt.evKey); !ok || !strings.Contains(v, tt.evValue) {
					t.Errorf("evidence %q = %q, want it to contain %q\n%s", tt.evKey, v, tt.evValue, describe(res))
				}
			}
			if strings.Contains(describe(res), "hunter2") || strings.Contains(describe(res), "abc") {
				t.Errorf("secret echoed: %s", describe(res))
			}
			if res.GetStatus() == statusFail && res.GetHint() == "" {
				t.Error("a failure without a hint")
			}
		})
	}
}

func TestProxyFromEnvironment(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://alice:topsecret@proxy.corp.test:3128")
	t.Setenv("NO_PROXY", "localhost,.corp.test")
	res := resultOf(t, New(Options{}).Run(t.Context(), &desksidev1.RunChecks{Checks: []string{"network.proxy"}}), "network.proxy")
	if res.GetStatus() != statusPass || !strings.Contains(res.GetSummary(), "proxy.corp.test:3128") {
		t.Errorf("got %s", describe(res))
	}
	if v, _ := evidence(res, "agent NO_PROXY"); v != "localhost,.corp.test" {
		t.Errorf("NO_PROXY evidence %q", v)
	}
	if strings.Contains(describe(res), "topsecret") {
		t.Errorf("password echoed: %s", describe(res))
	}
}
