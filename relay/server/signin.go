package server

// Sign-in: ConsoleService.Login (the CLI over gRPC and the web console
// through vanguard reach the same handler), the admin's unlock and
// password reset, and the per-address throttles of sign-in and
// enrollment. The order of a password check is what makes it race-free:
// the address's budget is charged, the account's gate entered, the
// attempt counted in the store (which locks the account at the limit),
// and only then is the argon2 hash computed.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/technicians"
)

// Per-address budgets. Sign-in: ten wrong attempts, then one every six
// seconds; a right password gives its attempt back. Enrollment: twenty
// failed attempts, then one every three seconds; a good token gives its
// attempt back, so a rollout behind one NAT address is not slowed.
const (
	loginBurst    = 10
	loginRefill   = 6 * time.Second
	enrollBurst   = 20
	enrollRefill  = 3 * time.Second
	maxNameLength = 64
)

// signinGuard holds a relay's sign-in throttles.
type signinGuard struct {
	logins   *auth.Budget // per client address
	accounts *auth.Gate   // one password check at a time per technician
	enrolls  *auth.Budget // per agent address
}

func newSigninGuard(now func() time.Time) *signinGuard {
	return &signinGuard{
		logins:   auth.NewBudget(loginBurst, loginRefill, now),
		accounts: auth.NewGate(),
		enrolls:  auth.NewBudget(enrollBurst, enrollRefill, now),
	}
}

// peerHost is the caller's address without its port: budgets are per
// host.
func peerHost(ctx context.Context) string {
	a := peerAddr(ctx)
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

// verifyPassword is auth.VerifyPassword; the tests count the calls.
var verifyPassword = auth.VerifyPassword

// dummyHash is verified against for unknown names (timing equalisation).
var dummyHash, _ = auth.HashPassword("not-a-real-password-at-all")

// errSignIn is the one answer to every refused sign-in: unknown name,
// wrong password, missing, wrong or replayed TOTP code, locked account.
// It says nothing about which, so it cannot confirm a password.
var errSignIn = status.Errorf(codes.Unauthenticated,
	"wrong name, password or TOTP code (an account with a second factor needs --totp CODE), or the account is locked "+
		"after %d wrong attempts: it unlocks %d minutes after the last one, or an admin runs `deskside technician unlock NAME`",
	auth.MaxFailures, int(auth.LockoutPeriod/time.Minute))

// Login implements ConsoleService.Login.
func (c *consoleService) Login(ctx context.Context, req *desksidev1.LoginRequest) (*desksidev1.LoginResponse, error) {
	s := c.s
	name := wire.CleanString(req.GetName(), maxNameLength)
	from, host := peerAddr(ctx), peerHost(ctx)
	if !s.guard.logins.Take(host) {
		// Logged and counted, not audited: attempts past the budget cost
		// nothing else, and must not grow the audit log either.
		s.metrics.logins.WithLabelValues("rate_limited").Inc()
		s.log.Warn("sign-in refused: address over its attempt budget", logKeyTech, name, logKeyPeer, from)
		return nil, status.Error(codes.ResourceExhausted, "too many sign-in attempts from this address; wait a minute and try again")
	}
	leave, err := s.guard.accounts.Enter(ctx, name)
	if err != nil {
		return nil, status.FromContextError(err).Err()
	}
	defer leave()

	now := s.cfg.Now()
	charge, err := s.store.ChargeLogin(ctx, name, now, auth.MaxFailures, auth.LockoutPeriod)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Spend the same time as a real check so names cannot be probed.
		verifyPassword(dummyHash, req.GetPassword())
		s.metrics.logins.WithLabelValues("unknown").Inc()
		s.audit(ctx, name, "login.failed", name, "unknown technician from "+from)
		return nil, errSignIn
	case errors.Is(err, store.ErrLocked):
		// No argon2 here: a locked account costs an attacker's guesses
		// nothing. The quicker answer can tell that an account is locked
		// (not whether a password was right); the text is the same.
		s.metrics.logins.WithLabelValues("locked").Inc()
		s.audit(ctx, name, "login.locked", name, fmt.Sprintf("attempt while locked until %s from %s",
			charge.Technician.LockedUntil.UTC().Format(time.RFC3339), from))
		return nil, errSignIn
	case err != nil:
		return nil, storeErr(err)
	}
	tech := charge.Technician
	ok, err := verifyPassword(tech.PasswordHash, req.GetPassword())
	if err != nil {
		s.log.Error("stored password hash is unreadable", logKeyTech, name, logKeyError, err)
	}
	why := "wrong password"
	if err == nil && ok && tech.TOTPSecret != "" {
		step, valid := auth.TOTPStep(tech.TOTPSecret, req.GetTotpCode(), now)
		switch {
		case req.GetTotpCode() == "":
			ok, why = false, "no TOTP code"
		case !valid:
			ok, why = false, "wrong TOTP code"
		default:
			switch err := s.store.UseTOTPStep(ctx, name, step); {
			case errors.Is(err, store.ErrTOTPReused):
				ok, why = false, "TOTP code used before"
			case err != nil:
				return nil, storeErr(err)
			}
		}
	}
	if err != nil || !ok {
		if charge.Locked {
			s.audit(ctx, name, "account.locked", name, fmt.Sprintf("%d wrong sign-ins; locked until %s",
				auth.MaxFailures, tech.LockedUntil.UTC().Format(time.RFC3339)))
		}
		s.metrics.logins.WithLabelValues("failed").Inc()
		s.audit(ctx, name, "login.failed", name, fmt.Sprintf("%s (%d of %d) from %s", why, charge.Failures, auth.MaxFailures, from))
		return nil, errSignIn
	}
	s.guard.logins.Refund(host)
	if err := s.store.SetLoginState(ctx, name, 0, time.Time{}); err != nil {
		s.log.Error("reset login failures", logKeyTech, name, logKeyError, err)
	}
	if tech.Disabled {
		// Said only after the right password (and code): it confirms
		// nothing an attacker could use.
		s.metrics.logins.WithLabelValues("disabled").Inc()
		s.audit(ctx, name, "login.disabled", name, "right password, account disabled, from "+from)
		return nil, status.Error(codes.PermissionDenied, "this account is disabled; an admin can enable it (`deskside technician enable NAME`)")
	}
	token, hash := auth.NewSessionToken()
	exp := now.Add(auth.SessionTTL)
	if err := s.store.CreateSession(ctx, store.Session{TokenHash: hash, Technician: tech.Name, CreatedAt: now, ExpiresAt: exp}); err != nil {
		return nil, storeErr(err)
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	detail := "from " + from
	if tech.MustChangePassword {
		detail += "; must change the password first"
	}
	s.audit(ctx, tech.Name, "login", tech.Name, detail)
	if viaWeb(ctx) {
		// Browsers get the session as an HttpOnly cookie, never in the body.
		if err := grpc.SetHeader(ctx, metadata.Pairs(sessionHeader, sessionHeaderValue(token, exp))); err != nil {
			return nil, status.Errorf(codes.Internal, "set session: %v", err)
		}
		token = ""
	}
	return &desksidev1.LoginResponse{Token: token, ExpiresAt: timestamppb.New(exp), Technician: techProto(tech)}, nil
}

// technician returns a technician by name for an admin RPC.
func (c *consoleService) technician(ctx context.Context, raw string) (store.Technician, error) {
	name := wire.CleanString(raw, maxNameLength)
	if name == "" {
		return store.Technician{}, status.Error(codes.InvalidArgument, "technician name is required")
	}
	t, err := c.s.store.GetTechnician(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return t, status.Errorf(codes.NotFound, "no technician %q: check the name (`deskside technician list`)", name)
	} else if err != nil {
		return t, storeErr(err)
	}
	return t, nil
}

// UnlockTechnician implements ConsoleService.UnlockTechnician.
func (c *consoleService) UnlockTechnician(ctx context.Context, req *desksidev1.UnlockTechnicianRequest) (*desksidev1.UnlockTechnicianResponse, error) {
	who := callerFrom(ctx)
	t, err := c.technician(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := c.s.store.SetLoginState(ctx, t.Name, 0, time.Time{}); err != nil {
		return nil, storeErr(err)
	}
	locked := c.s.cfg.Now().Before(t.LockedUntil)
	detail := fmt.Sprintf("not locked; %d wrong sign-ins cleared", t.FailedLogins)
	if locked {
		detail = "was locked until " + t.LockedUntil.UTC().Format(time.RFC3339)
	}
	c.s.audit(ctx, who.Name, "technician.unlock", t.Name, detail)
	return &desksidev1.UnlockTechnicianResponse{WasLocked: locked, Failures: uint32(max(t.FailedLogins, 0))}, nil
}

// ResetTechnicianPassword implements ConsoleService.ResetTechnicianPassword
// (relay/technicians.ResetPassword): the new password is the request's,
// or a generated one returned once; the technician must change it at
// their next sign-in; the account is unlocked and its sessions end. The
// TOTP second factor stays as it is.
func (c *consoleService) ResetTechnicianPassword(ctx context.Context, req *desksidev1.ResetTechnicianPasswordRequest) (*desksidev1.ResetTechnicianPasswordResponse, error) {
	who := callerFrom(ctx)
	t, err := c.technician(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	r, err := c.s.accounts.ResetPassword(ctx, t.Name, req.GetNewPassword())
	if err != nil {
		c.s.audit(ctx, who.Name, "technician.password_reset.refused", t.Name, err.Error())
		if errors.Is(err, technicians.ErrWeakPassword) {
			return nil, status.Errorf(codes.InvalidArgument, "%v; or leave it out and the relay generates one", err)
		}
		return nil, accountsErr(err)
	}
	how := "given by the admin"
	if r.Generated != "" {
		how = "generated"
	}
	c.s.audit(ctx, who.Name, "technician.password_reset", t.Name,
		fmt.Sprintf("password %s, to be changed at the next sign-in; unlocked; %d sessions ended", how, r.SessionsEnded))
	return &desksidev1.ResetTechnicianPasswordResponse{SessionsEnded: uint32(r.SessionsEnded), Password: r.Generated}, nil
}
