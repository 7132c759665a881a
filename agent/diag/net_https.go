package diag

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	// httpsTimeout bounds the request (within the run's budget).
	httpsTimeout = 10 * time.Second
	// httpsSlow is the latency above which a response warns.
	httpsSlow = 2 * time.Second
	// certExpiryWarn is how close to its expiry the server's certificate
	// makes the check warn.
	certExpiryWarn = 7 * 24 * time.Hour
	// maxHTTPSBody is what is read of the body (then discarded).
	maxHTTPSBody = 4 << 10
)

func checkHTTPS(ctx context.Context, e *checkEnv) *result {
	r := new(result)
	if e.cfg.httpsURL == "" {
		return r.unavailable("no URL configured (no https_url, and the agent knows no relay)")
	}
	u, err := url.Parse(e.cfg.httpsURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return r.unavailable("invalid https_url: want an absolute http(s) URL")
	}
	r.add("url", redactURL(u))
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err == nil && p != nil {
		r.add("proxy", redactURL(p))
	}

	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       &tls.Config{RootCAs: e.opts.RootCAs, MinVersion: tls.VersionTLS12},
		DisableKeepAlives:     true, // a fresh connection each time: that is what is measured
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   httpsTimeout,
		ResponseHeaderTimeout: httpsTimeout,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		Timeout:   httpsTimeout,
		// A redirect is an answer: do not follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	ctx, cancel := e.early(ctx)
	defer cancel()
	var tm timings
	trace := &httptrace.ClientTrace{
		ConnectStart:      func(string, string) { tm.mark(&tm.connStart) },
		ConnectDone:       func(string, string, error) { tm.mark(&tm.connDone) },
		TLSHandshakeStart: func() { tm.mark(&tm.tlsStart) },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { tm.mark(&tm.tlsDone) },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u.String(), nil)
	if err != nil {
		return r.unavailable("invalid https_url: " + firstLine(err.Error()))
	}
	req.Header.Set("User-Agent", "deskside-agent-diag")
	start := time.Now()
	resp, err := client.Do(req)
	latency := time.Since(start)
	if err != nil {
		r.add("error", firstLine(err.Error()))
		r.add("after", fmtDur(latency))
		why, hint := httpsFailure(err)
		return r.fail("cannot reach "+u.Host+": "+why, hint)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHTTPSBody))
	resp.Body.Close()

	r.add("status", resp.Status)
	r.add("latency", fmtDur(latency))
	r.add("protocol", resp.Proto)
	tm.mu.Lock()
	if !tm.connStart.IsZero() && !tm.connDone.IsZero() {
		r.add("connect", fmtDur(tm.connDone.Sub(tm.connStart)))
	}
	if !tm.tlsStart.IsZero() && !tm.tlsDone.IsZero() {
		r.add("tls handshake", fmtDur(tm.tlsDone.Sub(tm.tlsStart)))
	}
	tm.mu.Unlock()
	var expiring string
	if cs := resp.TLS; cs != nil {
		r.add("tls", tls.VersionName(cs.Version)+", "+tls.CipherSuiteName(cs.CipherSuite))
		if len(cs.PeerCertificates) > 0 {
			c := cs.PeerCertificates[0]
			r.add("certificate", certName(c)+" issued by "+issuerName(c))
			left := c.NotAfter.Sub(e.opts.Now())
			r.add("certificate expires", c.NotAfter.UTC().Format(time.DateOnly)+" (in "+fmtDur(left)+")")
			if left < certExpiryWarn {
				expiring = fmtDur(left)
			}
		}
	}
	switch {
	case expiring != "":
		return r.warn(fmt.Sprintf("%s answers, but its certificate expires in %s", u.Host, expiring),
			"Tell the server's administrator: the certificate must be renewed, or connections will fail.")
	case latency > httpsSlow:
		return r.warn(fmt.Sprintf("%s answers slowly (%s, over %v)", u.Host, fmtDur(latency), httpsSlow),
			"Slow but working: check the link quality and a proxy or security software inspecting HTTPS.")
	}
	return r.pass(fmt.Sprintf("%s answers (%s) in %s", u.Host, resp.Status, fmtDur(latency)))
}

// timings are the phases of a request, set from the transport's
// goroutines.
type timings struct {
	mu                                     sync.Mutex
	connStart, connDone, tlsStart, tlsDone time.Time
}

func (t *timings) mark(at *time.Time) {
	t.mu.Lock()
	*at = time.Now()
	t.mu.Unlock()
}

// httpsFailure explains a request error in a technician's words.
func httpsFailure(err error) (why, hint string) {
	var (
		dnsErr   *net.DNSError
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		record   tls.RecordHeaderError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &dnsErr):
		return "the name does not resolve", "See network.dns: the relay's name cannot be resolved."
	case errors.As(err, &unknown):
		return "the certificate is not trusted",
			"Something intercepts HTTPS (antivirus web shield, company proxy doing TLS inspection) or the system's root certificates are outdated."
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "the certificate is expired or not yet valid",
			"Check the clock first (time.sync): a wrong date makes valid certificates look expired."
	case errors.As(err, &hostname):
		return "the certificate is for another name",
			"A proxy, captive portal (hotel/guest Wi-Fi login page) or wrong DNS answer sent the connection elsewhere."
	case errors.As(err, &verify) || errors.As(err, &invalid):
		return "the certificate was refused",
			"Check the clock (time.sync), then for HTTPS interception by security software or a proxy."
	case errors.As(err, &record):
		return "the server does not speak TLS",
			"Wrong port, or a captive portal or proxy answered: open a browser to check for a login page."
	case isConnRefused(err):
		return "connection refused",
			"Nothing listens there, or a firewall rejects the connection: check the URL/port and that the server is up."
	case isConnReset(err):
		return "connection reset",
			"A firewall or proxy cut the connection: check security software and the network's filtering."
	case isUnreachable(err):
		return "no route to the server", "See network.interfaces and network.gateway."
	case isTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return "timed out",
			"A firewall or proxy may be silently dropping the traffic; check network.gateway and the proxy settings (network.proxy)."
	}
	msg := firstLine(err.Error())
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg, "Check network.dns, network.gateway and network.proxy."
}

func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	if len(c.Issuer.Organization) > 0 {
		return c.Issuer.Organization[0]
	}
	return c.Issuer.String()
}

// redactURL renders u without its password (and query, which may hold
// tokens).
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
		if _, has := u.User.Password(); has {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		}
	}
	if c.RawQuery != "" {
		c.RawQuery = "…"
	}
	c.Fragment = ""
	return c.String()
}
