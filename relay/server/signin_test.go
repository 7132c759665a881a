package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/store"
)

// The attack of issue 10: 50 wrong passwords at once, over gRPC or the
// web console, from five addresses (so each address's budget of ten
// lets all of them reach the account). Exactly auth.MaxFailures are
// checked (argon2 runs that often), the account is locked, and the
// right password is refused until an admin unlocks it.
const (
	attackers = 50
	addresses = 5
)

// sourceAddr is client i's local address, 127.0.0.2 on: the attackers
// use the first addresses of them, the right password the one after.
func sourceAddr(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
}

func TestConcurrentWrongPasswordsGRPC(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	addTech(t, r, "victim", "the-victims-password", desksidev1.Role_ROLE_TIER1)
	checks := server.CountPasswordChecks(t)
	clients := make([]desksidev1.ConsoleServiceClient, addresses+1)
	for i := range clients {
		d := &net.Dialer{LocalAddr: sourceAddr(i)}
		cc, err := grpc.NewClient("passthrough:///"+r.addr,
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, ServerName: "127.0.0.1", RootCAs: r.caPool()})),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		clients[i] = desksidev1.NewConsoleServiceClient(cc)
	}
	answers := race(func(i int) (codes.Code, string) {
		_, err := clients[i%addresses].Login(t.Context(), &desksidev1.LoginRequest{Name: "victim", Password: fmt.Sprintf("guess-number-%02d", i)})
		s := status.Convert(err)
		return s.Code(), s.Message()
	})
	checkAttack(t, r, checks.Load(), answers, func() (codes.Code, string) {
		_, err := clients[addresses].Login(t.Context(), &desksidev1.LoginRequest{Name: "victim", Password: "the-victims-password"})
		s := status.Convert(err)
		return s.Code(), s.Message()
	})
}

func TestConcurrentWrongPasswordsWeb(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	addTech(t, r, "victim", "the-victims-password", desksidev1.Role_ROLE_TIER1)
	checks := server.CountPasswordChecks(t)
	base := "https://" + r.srv.WebAddr().String()
	clients := make([]*http.Client, addresses+1)
	for i := range clients {
		d := &net.Dialer{LocalAddr: sourceAddr(i)}
		tr := &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: r.caPool(), ServerName: "127.0.0.1"}}
		t.Cleanup(tr.CloseIdleConnections)
		clients[i] = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	login := func(i int, pw string) (codes.Code, string) {
		b, _ := json.Marshal(map[string]string{"name": "victim", "password": pw})
		req, _ := http.NewRequest(http.MethodPost, base+"/deskside.v1.ConsoleService/Login", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connect-Protocol-Version", "1")
		req.Header.Set("Origin", base)
		resp, err := clients[i].Do(req)
		if err != nil {
			return codes.Unknown, err.Error()
		}
		defer resp.Body.Close()
		var body struct{ Code, Message string }
		raw, _ := io.ReadAll(resp.Body)
		json.Unmarshal(raw, &body)
		switch body.Code {
		case "":
			return codes.OK, ""
		case "unauthenticated":
			return codes.Unauthenticated, body.Message
		case "resource_exhausted":
			return codes.ResourceExhausted, body.Message
		}
		return codes.Unknown, string(raw)
	}
	answers := race(func(i int) (codes.Code, string) { return login(i%addresses, fmt.Sprintf("guess-number-%02d", i)) })
	checkAttack(t, r, checks.Load(), answers, func() (codes.Code, string) { return login(addresses, "the-victims-password") })
}

type answer struct {
	code codes.Code
	msg  string
}

// race runs attackers calls at once.
func race(call func(i int) (codes.Code, string)) []answer {
	out := make([]answer, attackers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i].code, out[i].msg = call(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func checkAttack(t *testing.T, r *relay, checks int64, answers []answer, right func() (codes.Code, string)) {
	t.Helper()
	for i, a := range answers {
		if a.code != codes.Unauthenticated || a.msg != answers[0].msg {
			t.Errorf("attempt %d: %v %q; want every attempt to get the same Unauthenticated answer", i, a.code, a.msg)
		}
	}
	if checks != auth.MaxFailures {
		t.Errorf("%d attempts ran %d password checks, want exactly %d", attackers, checks, auth.MaxFailures)
	}
	tech, err := r.srv.Store().GetTechnician(t.Context(), "victim")
	if err != nil {
		t.Fatal(err)
	}
	if !time.Now().Before(tech.LockedUntil) {
		t.Errorf("account not locked after %d wrong passwords: %+v", attackers, tech)
	}
	// Locked: the right password gets the same answer, without a check.
	if c, msg := right(); c != codes.Unauthenticated || msg != answers[0].msg {
		t.Errorf("right password while locked: %v %q", c, msg)
	}
	counts := auditCounts(t, r)
	if counts["account.locked"] != 1 || counts["login.failed"] != auth.MaxFailures || counts["login.locked"] != attackers-auth.MaxFailures+1 {
		t.Errorf("audit: %v; want 1 account.locked, %d login.failed, %d login.locked", counts, auth.MaxFailures, attackers-auth.MaxFailures+1)
	}
}

func auditCounts(t *testing.T, r *relay) map[string]int {
	t.Helper()
	evs, err := r.srv.Store().ListAudit(t.Context(), store.AuditFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range evs {
		counts[e.Action]++
	}
	return counts
}

// lastAudit returns the newest audit event of action.
func lastAudit(t *testing.T, r *relay, action string) store.AuditEvent {
	t.Helper()
	evs, err := r.srv.Store().ListAudit(t.Context(), store.AuditFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Action == action {
			return e
		}
	}
	t.Fatalf("no %s audit event", action)
	return store.AuditEvent{}
}

func TestUnlockAndResetPassword(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	addTech(t, r, "tier1", "tier-one-password", desksidev1.Role_ROLE_TIER1)
	addTech(t, r, "tier3", "tier-three-password", desksidev1.Role_ROLE_TIER3)
	cs, ctx := r.admin(t)
	t1, t1ctx := r.console(t, "tier1", "tier-one-password")
	t3, t3ctx := r.console(t, "tier3", "tier-three-password")

	// Non-admins are refused, and the refusal is audited.
	for name, c := range map[string]struct {
		cs  desksidev1.ConsoleServiceClient
		ctx context.Context
	}{"tier1": {t1, t1ctx}, "tier3": {t3, t3ctx}} {
		if _, err := c.cs.UnlockTechnician(c.ctx, &desksidev1.UnlockTechnicianRequest{Name: "tier1"}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s unlock: %v", name, err)
		}
		if _, err := c.cs.ResetTechnicianPassword(c.ctx, &desksidev1.ResetTechnicianPasswordRequest{Name: "admin", NewPassword: "the attacker's choice"}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s reset: %v", name, err)
		}
	}
	if n := auditCounts(t, r)["access.denied"]; n != 4 {
		t.Errorf("%d access.denied events, want 4", n)
	}

	// Lock tier1, then unlock it.
	anon := desksidev1.NewConsoleServiceClient(r.dial(t, nil))
	for i := range auth.MaxFailures {
		anon.Login(t.Context(), &desksidev1.LoginRequest{Name: "tier1", Password: fmt.Sprintf("wrong-%d", i)})
	}
	if _, err := anon.Login(t.Context(), &desksidev1.LoginRequest{Name: "tier1", Password: "tier-one-password"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("locked account signed in: %v", err)
	}
	un, err := cs.UnlockTechnician(ctx, &desksidev1.UnlockTechnicianRequest{Name: "tier1"})
	if err != nil || !un.GetWasLocked() {
		t.Fatalf("unlock: %v, %v", un, err)
	}
	if e := lastAudit(t, r, "technician.unlock"); e.Actor != "admin" || e.Target != "tier1" || !strings.Contains(e.Detail, "was locked until") {
		t.Errorf("unlock audit: %+v", e)
	}
	if _, err := anon.Login(t.Context(), &desksidev1.LoginRequest{Name: "tier1", Password: "tier-one-password"}); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	if _, err := cs.UnlockTechnician(ctx, &desksidev1.UnlockTechnicianRequest{Name: "nobody"}); status.Code(err) != codes.NotFound {
		t.Errorf("unlock unknown: %v", err)
	}

	// Reset with a generated password: shown once, the old one and the
	// technician's sessions stop working.
	reset, err := cs.ResetTechnicianPassword(ctx, &desksidev1.ResetTechnicianPasswordRequest{Name: "tier1"})
	if err != nil || len(reset.GetPassword()) < 20 || reset.GetSessionsEnded() != 2 {
		t.Fatalf("reset: %v, %v", reset, err)
	}
	if _, err := t1.WhoAmI(t1ctx, &desksidev1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("session after reset: %v", err)
	}
	if _, err := anon.Login(t.Context(), &desksidev1.LoginRequest{Name: "tier1", Password: "tier-one-password"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("old password after reset: %v", err)
	}
	if _, err := anon.Login(t.Context(), &desksidev1.LoginRequest{Name: "tier1", Password: reset.GetPassword()}); err != nil {
		t.Errorf("generated password: %v", err)
	}
	e := lastAudit(t, r, "technician.password_reset")
	if e.Actor != "admin" || e.Target != "tier1" || !strings.Contains(e.Detail, "generated") || strings.Contains(e.Detail, reset.GetPassword()) {
		t.Errorf("reset audit: %+v", e)
	}
	// A given password; a short one is refused.
	if _, err := cs.ResetTechnicianPassword(ctx, &desksidev1.ResetTechnicianPasswordRequest{Name: "tier1", NewPassword: "short"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("short password: %v", err)
	}
	given, err := cs.ResetTechnicianPassword(ctx, &desksidev1.ResetTechnicianPasswordRequest{Name: "tier1", NewPassword: "a chosen new password"})
	if err != nil || given.GetPassword() != "" {
		t.Fatalf("reset with a given password: %v, %v", given, err)
	}
	if _, err := anon.Login(t.Context(), &desksidev1.LoginRequest{Name: "tier1", Password: "a chosen new password"}); err != nil {
		t.Errorf("given password: %v", err)
	}
}

// TestEnrollThrottledAndAudited tries enrollment tokens from one address
// until it is refused: every failure before that is audited, and another
// address still enrolls.
func TestEnrollThrottledAndAudited(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	used := r.token(t, time.Hour, 1)
	if _, err := r.enroll(t, used); err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 20)}}
	cc, err := grpc.NewClient("passthrough:///"+r.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, ServerName: "127.0.0.1", RootCAs: r.caPool()})),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	agent := desksidev1.NewAgentServiceClient(cc)
	try := func(tok string) error {
		_, err := agent.Enroll(t.Context(), &desksidev1.EnrollRequest{ProtocolVersion: wire.ProtocolVersion, Token: tok})
		return err
	}
	refusedAt := -1
	for i := range 100 {
		tok := used
		if i%2 == 1 {
			tok = wire.NewToken(r.srv.CA().Pin()).String() // unknown
		}
		err := try(tok)
		if status.Code(err) == codes.ResourceExhausted {
			refusedAt = i
			break
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if refusedAt < 10 || refusedAt > 30 {
		t.Fatalf("refused after %d failed enrollments from one address; want a throttle between 10 and 30", refusedAt)
	}
	evs, err := r.srv.Store().ListAudit(t.Context(), store.AuditFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]int{}
	for _, e := range evs {
		if e.Action == "device.enroll.failed" {
			if !strings.Contains(e.Detail, "from 127.0.0.20:") {
				t.Errorf("audit detail %q does not name the address", e.Detail)
			}
			results[strings.Fields(e.Detail)[0]]++
		}
	}
	if results["used"]+results["unknown"] != refusedAt || results["used"] == 0 || results["unknown"] == 0 {
		t.Errorf("audited failures %v, want %d (used and unknown tokens)", results, refusedAt)
	}
	// Another address is not affected.
	if _, err := r.enroll(t, r.token(t, time.Hour, 1)); err != nil {
		t.Errorf("enroll from another address: %v", err)
	}
}
