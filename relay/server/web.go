package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"connectrpc.com/vanguard"
	"google.golang.org/grpc"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/downloads"
)

// Web console wiring. The browser speaks the Connect protocol to the same
// ConsoleService, OrgService, TechnicianService, TicketService,
// KnowledgeService, ReportService, NotificationService and UpdateService
// (all but UploadRelease, which stays with the CLI) the CLI calls over
// gRPC: vanguard transcodes each request into gRPC for a second
// grpc.Server that has only those registered (agents never reach it) and
// the same interceptors. The
// session travels in an HttpOnly cookie that this layer turns into the
// usual bearer metadata; scripts never see it.
const (
	sessionCookie = "deskside_session"
	// webHeader marks a call as coming through the web layer (set here,
	// never trusted from the client) so Login answers with a cookie.
	webHeader = "x-deskside-web"
	// sessionHeader carries a new session (or "clear") from the Login and
	// Logout handlers out to this layer, which turns it into Set-Cookie.
	sessionHeader = "x-deskside-session"
	apiPrefix     = "/deskside.v1.ConsoleService/"
	orgAPIPrefix  = "/deskside.v1.OrgService/"
	techAPIPrefix = "/deskside.v1.TechnicianService/"
	ticketPrefix  = "/deskside.v1.TicketService/"
	kbAPIPrefix   = "/deskside.v1.KnowledgeService/"
	reportPrefix  = "/deskside.v1.ReportService/"
	notifyPrefix  = "/deskside.v1.NotificationService/"
	updatePrefix  = "/deskside.v1.UpdateService/"
)

// contentSecurityPolicy allows only the console's own files: no inline
// script or style, no eval, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

// newWebHandler builds the console's HTTP handler: API (Connect via
// vanguard onto webGRPC) and the embedded files.
func (s *Server) newWebHandler(webGRPC *grpc.Server, files fs.FS) (http.Handler, error) {
	var svcs []*vanguard.Service
	for _, name := range []string{desksidev1.ConsoleService_ServiceDesc.ServiceName, desksidev1.OrgService_ServiceDesc.ServiceName,
		desksidev1.TechnicianService_ServiceDesc.ServiceName, desksidev1.TicketService_ServiceDesc.ServiceName,
		desksidev1.KnowledgeService_ServiceDesc.ServiceName, desksidev1.ReportService_ServiceDesc.ServiceName,
		desksidev1.NotificationService_ServiceDesc.ServiceName, desksidev1.UpdateService_ServiceDesc.ServiceName} {
		svcs = append(svcs, vanguard.NewService(name, webGRPC,
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC), vanguard.WithTargetCodecs(vanguard.CodecProto)))
	}
	tc, err := vanguard.NewTranscoder(svcs)
	if err != nil {
		return nil, fmt.Errorf("relay: web transcoder: %w", err)
	}
	static := http.FileServerFS(files)
	mux := http.NewServeMux()
	api := s.webAPI(tc)
	mux.Handle(apiPrefix, api)
	mux.Handle(orgAPIPrefix, api)
	mux.Handle(techAPIPrefix, api)
	mux.Handle(ticketPrefix, api)
	mux.Handle(kbAPIPrefix, api)
	mux.Handle(reportPrefix, api)
	mux.Handle(notifyPrefix, api)
	mux.Handle(updatePrefix, api)
	// Releases are uploaded with the CLI (a signed build is a file on the
	// machine that built it).
	mux.HandleFunc(desksidev1.UpdateService_UploadRelease_FullMethodName, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upload releases with the CLI: deskside release upload FILE", http.StatusNotFound)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if p == "" {
			p = "index.html"
		}
		if _, err := fs.Stat(files, p); err != nil {
			// Client-side routes (#/…) only ever ask for "/", but serve
			// the app for unknown paths too so a reload never 404s.
			r = r.Clone(r.Context())
			r.URL.Path = "/"
			p = "index.html"
		}
		switch {
		case p == "index.html":
			w.Header().Set("Cache-Control", "no-cache")
		case r.URL.Query().Get("v") != "":
			// index.html names assets by content hash (?v=…).
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		default:
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		static.ServeHTTP(w, r)
	})
	dl := &downloads.Handler{Dir: &downloads.Dir{Path: s.cfg.DownloadsDir}, Relay: s.downloadAddrs, Log: s.log}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		// Downloads before the mux, which would clean the path and
		// redirect: their handler refuses any name that is not one clean
		// package name itself.
		if r.URL.Path == "/download" || strings.HasPrefix(r.URL.Path, downloads.Prefix) {
			dl.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// downloadAddrs are the agent address and the downloads' base URL for a
// request to the web listener: the configured web_url's host, else the
// host the request reached, with the agent listener's port.
func (s *Server) downloadAddrs(r *http.Request) (relay, base string) {
	host, base := r.Host, "https://"+r.Host+"/"
	if s.cfg.WebURL != "" {
		if u, err := url.Parse(s.cfg.WebURL); err == nil {
			host, base = u.Host, strings.TrimSuffix(s.cfg.WebURL, "/")+"/"
		}
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	port := ""
	if s.lis != nil {
		_, port, _ = net.SplitHostPort(s.lis.Addr().String())
	} else {
		_, port, _ = net.SplitHostPort(s.cfg.Listen)
	}
	return net.JoinHostPort(host, port), base + strings.TrimPrefix(downloads.Prefix, "/")
}

// sameOrigin reports whether the request's Origin is this server.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err == nil && u.Scheme == "https" && strings.EqualFold(u.Host, r.Host)
}

// webAPI guards the API: only POST, same origin for every call (all of
// them, streaming ones included, can carry the session cookie), the cookie
// turned into bearer metadata, and session headers turned into cookies.
func (s *Server) webAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "the console API takes POST requests", http.StatusMethodNotAllowed)
			return
		}
		if !sameOrigin(r) {
			s.log.Warn("cross-origin console request refused", "origin", r.Header.Get("Origin"), "path", r.URL.Path, logKeyPeer, r.RemoteAddr)
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		r.Header.Del(webHeader)
		r.Header.Del(sessionHeader)
		r.Header.Set(webHeader, "1")
		if c, err := r.Cookie(sessionCookie); err == nil && r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+c.Value)
		}
		next.ServeHTTP(&cookieWriter{ResponseWriter: w}, r)
	})
}

// cookieWriter turns the session header into a Set-Cookie before the
// response headers go out.
type cookieWriter struct {
	http.ResponseWriter
	wrote bool
}

func (c *cookieWriter) WriteHeader(code int) {
	if !c.wrote {
		c.wrote = true
		h := c.Header()
		if v := h.Get(sessionHeader); v != "" {
			h.Del(sessionHeader)
			ck := &http.Cookie{Name: sessionCookie, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
			if tok, exp, ok := strings.Cut(v, ";"); ok && tok != "clear" {
				ck.Value = tok
				if t, err := time.Parse(time.RFC3339, exp); err == nil {
					ck.Expires = t
				}
			} else {
				ck.MaxAge = -1
			}
			http.SetCookie(c.ResponseWriter, ck)
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *cookieWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

// Flush lets streaming responses (WatchDevices) reach the browser as they
// are written.
func (c *cookieWriter) Flush() {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *cookieWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// serveWeb runs the console's HTTPS server until it is shut down.
func (s *Server) serveWeb() error {
	if err := s.web.Serve(s.webL); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("relay: web serve: %w", err)
	}
	return nil
}

// sessionHeaderValue is what Login hands the web layer.
func sessionHeaderValue(token string, exp time.Time) string {
	return token + ";" + exp.UTC().Format(time.RFC3339)
}
