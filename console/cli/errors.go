package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

var (
	// ErrNotSignedIn is returned when the session file holds no session.
	ErrNotSignedIn = errors.New("not signed in: run `deskside login --relay HOST:PORT`")
	// ErrSessionExpired is returned when the stored session has expired.
	ErrSessionExpired = errors.New("session expired: run `deskside login` again")
	// ErrUnauthenticated is returned when the relay refuses the session.
	ErrUnauthenticated = errors.New("not signed in or session expired: run `deskside login`")
	// ErrPermissionDenied is returned when the technician's role does not
	// allow a call; the relay's message says which role it needs.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnreachable is returned when no connection to the relay could be made.
	ErrUnreachable = errors.New("cannot reach relay")
	// ErrUntrusted is returned when the relay's certificate does not chain
	// to a trusted root.
	ErrUntrusted = errors.New("the relay's certificate is not trusted: pass --ca <data-dir>/ca.pem or --ca-pin")
	// ErrPinMismatch is returned when no certificate the relay presents
	// matches --ca-pin.
	ErrPinMismatch = errors.New("the relay's certificate authority does not match --ca-pin: check the pin and the relay address")
	// ErrNoPassword is returned by login when no password source is available.
	ErrNoPassword = errors.New("no password: pass --password-stdin (the first line of standard input) or set DESKSIDE_PASSWORD; " +
		"an interactive prompt needs a terminal")
	// ErrInsecureConfig is returned when the session file is readable by
	// other users.
	ErrInsecureConfig = errors.New("session file is readable by other users")
)

// explain turns an RPC error into one that says what went wrong and what
// to do. Messages from the relay are cleaned before they are shown.
func (c *conn) explain(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := clean(st.Message())
	if herr := c.httpAnswer(err); herr != nil {
		return herr
	}
	switch st.Code() {
	case codes.Unauthenticated:
		reason, _, _ := strings.Cut(msg, ": run `deskside login`")
		return fmt.Errorf("%w (relay: %s)", ErrUnauthenticated, reason)
	case codes.PermissionDenied:
		return fmt.Errorf("%w: %s", ErrPermissionDenied, msg)
	case codes.Unavailable, codes.DeadlineExceeded:
		if herr := c.hs.failure(); herr != nil {
			return c.certError(herr)
		}
		if !c.hs.connected() {
			if st.Code() == codes.DeadlineExceeded {
				return fmt.Errorf("%w at %s: no answer in time; is it running, and is the address right?", ErrUnreachable, c.relay)
			}
			return fmt.Errorf("%w at %s: %s; is it running, and is the address right?", ErrUnreachable, c.relay, transportDetail(msg))
		}
		if st.Code() == codes.DeadlineExceeded {
			return fmt.Errorf("the relay at %s did not answer in time: %s", c.relay, msg)
		}
		// The relay answered, then failed: it may be stopping (it ends its
		// agents' streams first, so a device looks disconnected), or the
		// device really went away.
		if gone := c.relayGone("during the call", "Check it is back with `deskside whoami`, then try again."); gone != nil {
			return gone
		}
		if strings.HasPrefix(msg, "device ") {
			return fmt.Errorf("%s: check it is online with `deskside devices list`, then try again", msg)
		}
		return fmt.Errorf("the relay at %s is unavailable: %s; try again shortly", c.relay, msg)
	case codes.Canceled:
		return errors.New("interrupted")
	case codes.Unimplemented:
		return fmt.Errorf("the relay at %s does not support this call (%s): use a deskside CLI that matches the relay's version", c.relay, msg)
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.Aborted,
		codes.AlreadyExists, codes.OutOfRange, codes.ResourceExhausted:
		// The relay's messages for these already say what to do.
		return errors.New(msg)
	default:
		return fmt.Errorf("relay error (%s): %s", st.Code(), msg)
	}
}

// defaultGRPCPort is the relay's default --listen port, the one the CLI uses
// (the web console's, 8443 by default, is for browsers).
const defaultGRPCPort = "7443"

// httpAnswer recognises a call answered by a plain HTTPS server rather than
// the relay's gRPC listener, most often the relay's own web console port,
// and says which port to use instead; nil for any other error.
func (c *conn) httpAnswer(err error) error {
	msg := status.Convert(err).Message()
	if !strings.Contains(msg, "unexpected HTTP status code received from server") && !strings.Contains(msg, "received unexpected content-type") {
		return nil
	}
	try := net.JoinHostPort(c.host, defaultGRPCPort)
	// The web console refuses API calls from elsewhere, or serves its page.
	if strings.Contains(msg, "cross-origin request refused") || strings.Contains(msg, "text/html") {
		return fmt.Errorf("%s is the relay's web console port (HTTPS, for browsers), not the port the CLI uses: "+
			"sign in with `deskside login --relay %s` (the relay's --listen address; port %s unless it was changed)", c.relay, try, defaultGRPCPort)
	}
	return fmt.Errorf("%s answered as a web server, not as a Deskside relay (%s): use the relay's --listen address, "+
		"e.g. `deskside login --relay %s` (port %s unless it was changed)", c.relay, transportDetail(clean(msg)), try, defaultGRPCPort)
}

// relayGone asks the relay, briefly, whether it still answers after a call
// failed in a way that can also mean the relay went away: a stopping relay
// ends its agents' streams first, so a command in flight reports its device
// as disconnected. It returns the error to show when the relay is gone (what
// says during what, next what to do then), and nil when the relay answers.
func (c *conn) relayGone(what, next string) error {
	// A stopping relay closes its connections right after it ended the
	// agents': give that a moment to show (a relay that stays up keeps the
	// connection ready, and this waits the whole moment).
	wait, cancelWait := context.WithTimeout(context.Background(), 500*time.Millisecond)
	if st := c.cc.GetState(); st == connectivity.Ready {
		c.cc.WaitForStateChange(wait, st)
	}
	cancelWait()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := c.client.WhoAmI(ctx, &desksidev1.WhoAmIRequest{})
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		return nil
	}
	return fmt.Errorf("lost the connection to the relay at %s %s (%s): the relay stopped or restarted. %s",
		c.relay, what, transportDetail(clean(status.Convert(err).Message())), next)
}

// certError explains a failed TLS handshake.
func (c *conn) certError(err error) error {
	var (
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, ErrPinMismatch):
		return fmt.Errorf("%w (relay %s)", ErrPinMismatch, c.relay)
	case errors.As(err, &host):
		return fmt.Errorf("the relay's certificate is not valid for %q (%s): connect with a name or address it covers, "+
			"or add this one to the relay's certificate names", c.host, clean(host.Error()))
	case errors.As(err, &unknown):
		issuer := ""
		if unknown.Cert != nil {
			issuer = clean(unknown.Cert.Issuer.String())
		}
		switch {
		case c.trust.caFile != "":
			return fmt.Errorf("%w: the CA in %s did not sign the certificate of the relay at %s (issued by %q); "+
				"is it this relay's <data-dir>/ca.pem?", ErrUntrusted, c.trust.caFile, c.relay, issuer)
		case len(c.trust.caPEM) > 0:
			return fmt.Errorf("%w: the relay at %s no longer presents a certificate signed by the CA saved at login "+
				"(issued by %q; was its data directory replaced?). If that is expected, sign in again with `deskside login --ca <data-dir>/ca.pem`",
				ErrUntrusted, c.relay, issuer)
		default:
			return fmt.Errorf("%w (the relay at %s presented a certificate issued by %q, which the system does not trust)",
				ErrUntrusted, c.relay, issuer)
		}
	case errors.As(err, &invalid):
		return fmt.Errorf("the relay's certificate is invalid: %s (check the clocks here and on the relay)", clean(invalid.Error()))
	default:
		return fmt.Errorf("TLS handshake with the relay at %s failed: %s", c.relay, clean(err.Error()))
	}
}

// transportDetail trims gRPC's wrapping from a dial error:
// `connection error: desc = "transport: Error while dialing: dial tcp …: connection refused"`.
func transportDetail(msg string) string {
	const marker = "Error while dialing: "
	if i := strings.Index(msg, marker); i >= 0 {
		return strings.TrimSuffix(msg[i+len(marker):], `"`)
	}
	return msg
}
