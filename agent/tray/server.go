package tray

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

//go:embed static
var staticFiles embed.FS

// cookieName is the cookie the launch secret is exchanged for.
const cookieName = "deskside_tray"

// maxBody caps a request body: a 2 MiB screenshot in base64 and the text.
const maxBody = 3 << 20

// csp allows only this page's own files: no inline script or style, no
// other origin, no framing. Images: the screenshot (data: and blob:).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// ServerOptions configure the Get help page.
type ServerOptions struct {
	Agent Agent
	// Screenshot captures the user's screen as a PNG (nil: CaptureScreen).
	Screenshot func() ([]byte, error)
	// Notify shows a desktop notification (nil: none).
	Notify func(title, body string)
	// OnUpdate is told of every push after the page's clients (the tray
	// menu counts unread replies with it).
	OnUpdate func(*desksidev1.HelpUpdate)
	// OnStateChange is called when the connection or session state
	// changes (the tray menu redraws with it).
	OnStateChange func()
	// OnConsent is called when a consent question arrives, after the
	// desktop notification (the tray opens the page's consent view).
	OnConsent func()
	Logger    *slog.Logger
}

// Server is the Get help page on loopback: a random port, a per-launch
// secret in the URL the browser opens, exchanged for an HttpOnly,
// SameSite=Strict cookie; requests are checked for the exact Host, for
// Origin and Fetch metadata, so no other origin (and no DNS rebinding)
// can call it.
type Server struct {
	o      ServerOptions
	ln     net.Listener
	srv    *http.Server
	host   string // "127.0.0.1:port"
	secret string
	token  string

	mu   sync.Mutex
	subs map[chan []byte]struct{}
	done chan struct{}
}

// StartServer listens on a random loopback port and serves the page.
func StartServer(o ServerOptions) (*Server, error) {
	if o.Agent == nil {
		o.Agent = Unavailable{}
	}
	if o.Screenshot == nil {
		o.Screenshot = CaptureScreen
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback for the Get help page: %w", err)
	}
	s := &Server{o: o, ln: ln, host: ln.Addr().String(), secret: randomToken(), token: randomToken(),
		subs: make(map[chan []byte]struct{}), done: make(chan struct{})}
	s.srv = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	go s.pump()
	return s, nil
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// URL is the address the browser opens for page ("" for Get help,
// "requests" for My requests): it carries the launch secret.
func (s *Server) URL(page string) string {
	u := "http://" + s.host + "/launch?k=" + s.secret
	if page != "" {
		u += "&to=" + page
	}
	return u
}

// Addr is the host:port the page listens on.
func (s *Server) Addr() string { return s.host }

// Close stops the page server.
func (s *Server) Close() error {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	return s.srv.Close()
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /launch", s.launch)
	mux.Handle("GET /app.js", files)
	mux.Handle("GET /app.css", files)
	mux.Handle("GET /icon.svg", files)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := staticFiles.ReadFile("static/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	})
	mux.HandleFunc("GET /api/state", s.state)
	mux.HandleFunc("POST /api/search", s.search)
	mux.HandleFunc("POST /api/helped", s.helped)
	mux.HandleFunc("POST /api/screenshot", s.screenshot)
	mux.HandleFunc("POST /api/file", s.file)
	mux.HandleFunc("GET /api/requests", s.requests)
	mux.HandleFunc("POST /api/reply", s.reply)
	mux.HandleFunc("POST /api/end-session", s.endSession)
	mux.HandleFunc("POST /api/consent", s.consent)
	mux.HandleFunc("GET /api/events", s.events)
	return s.guard(mux)
}

// guard refuses (403) any request for another Host, from another Origin
// or site, a state-changing request without Origin, and anything but the
// launch without the cookie.
func (s *Server) guard(next http.Handler) http.Handler {
	origin := "http://" + s.host
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		deny := func(why string) {
			s.o.Logger.Warn("Get help page: request refused", "why", why, "path", r.URL.Path)
			http.Error(w, "forbidden: "+why+"; open Get help from the Deskside tray icon", http.StatusForbidden)
		}
		if r.Host != s.host {
			deny("wrong host")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != origin {
			deny("another origin")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get("Origin") != origin {
			deny("no origin")
			return
		}
		site := r.Header.Get("Sec-Fetch-Site")
		if r.URL.Path == "/launch" {
			// Opened by the tray (a new browser navigation: "none").
			if site != "" && site != "none" && site != "same-origin" {
				deny("launched from another site")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if site != "" && site != "same-origin" && !(site == "none" && r.Method == http.MethodGet) {
			deny("cross-site request")
			return
		}
		c, err := r.Cookie(cookieName)
		if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.token)) != 1 {
			deny("no launch secret")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) launch(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("k")), []byte(s.secret)) != 1 {
		http.Error(w, "forbidden: this link is not the tray's current one; open Get help from the Deskside tray icon", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	to := "/"
	switch r.URL.Query().Get("to") {
	case "requests":
		to = "/#requests"
	case "consent":
		to = "/#consent"
	}
	// The secret leaves the address bar and history.
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// writeErr answers with the agent's error as the page shows it.
func writeErr(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeErr(w, http.StatusUnsupportedMediaType, errors.New("send JSON"))
		return false
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("bad request: %w", err))
		return false
	}
	return true
}

// agentErr answers with an agent call's failure.
func agentErr(w http.ResponseWriter, err error) {
	writeErr(w, http.StatusBadGateway, err)
}

type stateJSON struct {
	Connected  bool   `json:"connected"`
	Reachable  bool   `json:"reachable"`
	Session    bool   `json:"session"`
	Technician string `json:"technician"`
	Control    bool   `json:"control"`
	// The consent question waiting for an answer (id "": none), with its
	// deadline in Unix milliseconds, and the last that closed.
	ConsentID       string `json:"consentId"`
	ConsentText     string `json:"consentText"`
	ConsentTicket   string `json:"consentTicket"`
	ConsentControl  bool   `json:"consentControl"`
	ConsentDeadline int64  `json:"consentDeadline"`
	ClosedID        string `json:"closedId"`
	ClosedReason    string `json:"closedReason"`
}

func (s *Server) stateNow() stateJSON {
	_, unavailable := s.o.Agent.(Unavailable)
	ss := s.o.Agent.SessionState()
	st := stateJSON{Connected: s.o.Agent.Connected(), Reachable: !unavailable, Session: ss.Active, Technician: ss.Technician, Control: ss.Control}
	c := s.o.Agent.Consent()
	if q := c.Open; q.ID != 0 {
		st.ConsentID, st.ConsentText, st.ConsentTicket, st.ConsentControl = strconv.FormatUint(q.ID, 10), q.Text, q.Ticket, q.Control
		st.ConsentDeadline = q.Deadline.UnixMilli()
	}
	if c.ClosedID != 0 {
		st.ClosedID, st.ClosedReason = strconv.FormatUint(c.ClosedID, 10), c.ClosedReason
	}
	return st
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.stateNow())
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Query string `json:"query"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	q := strings.TrimSpace(req.Query)
	if len(q) > 400 {
		q = q[:400]
	}
	if q == "" {
		writeProto(w, &desksidev1.HelpArticles{})
		return
	}
	arts, err := s.o.Agent.Search(r.Context(), q)
	if err != nil {
		agentErr(w, err)
		return
	}
	writeProto(w, &desksidev1.HelpArticles{Articles: arts})
}

func (s *Server) helped(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID int64 `json:"id,string"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if err := s.o.Agent.Helped(r.Context(), req.ID); err != nil {
		agentErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}"))
}

func (s *Server) screenshot(w http.ResponseWriter, r *http.Request) {
	b, err := s.o.Screenshot()
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(b)
}

func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Category    string `json:"category"`
		Description string `json:"description"`
		Email       string `json:"email"`
		Screenshot  string `json:"screenshot"` // base64 PNG, optional
	}
	if !readJSON(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Description) == "" {
		writeErr(w, http.StatusBadRequest, errors.New("describe the problem first"))
		return
	}
	f := &desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Email: strings.TrimSpace(req.Email)}, Category: req.Category, Description: req.Description}
	if req.Screenshot != "" {
		png, err := base64.StdEncoding.DecodeString(req.Screenshot)
		if err != nil || !isPNG(png) {
			writeErr(w, http.StatusBadRequest, errors.New("the screenshot is not a PNG; take it again"))
			return
		}
		f.ScreenshotPng = png
	}
	filed, err := s.o.Agent.FileHelp(r.Context(), f)
	if err != nil {
		agentErr(w, err)
		return
	}
	writeProto(w, filed)
}

func isPNG(b []byte) bool { return len(b) > 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n" }

func (s *Server) requests(w http.ResponseWriter, r *http.Request) {
	list, err := s.o.Agent.MyRequests(r.Context())
	if err != nil {
		agentErr(w, err)
		return
	}
	writeProto(w, &desksidev1.MyRequests{Requests: list})
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
		Text string `json:"text"`
		// Chat sends a live chat line rather than a reply.
		Chat bool `json:"chat"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Text) == "" {
		what := "a reply"
		if req.Chat {
			what = "a chat line"
		}
		writeErr(w, http.StatusBadRequest, errors.New("write "+what+" first"))
		return
	}
	m, err := s.o.Agent.Reply(r.Context(), req.Code, req.Text, req.Chat)
	if err != nil {
		agentErr(w, err)
		return
	}
	writeProto(w, m)
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	if err := s.o.Agent.EndSession(r.Context()); err != nil {
		agentErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}"))
}

// consent answers the open consent question the page shows: the id must
// be the open one's, so an answer meant for a question that closed never
// answers the next.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     uint64 `json:"id,string"`
		Answer string `json:"answer"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.Answer != "allow" && req.Answer != "deny" {
		writeErr(w, http.StatusBadRequest, errors.New(`answer "allow" or "deny"`))
		return
	}
	if q := s.o.Agent.Consent().Open; q.ID == 0 || q.ID != req.ID {
		writeErr(w, http.StatusConflict, errors.New("this request is no longer open (it was answered, timed out, or the session ended)"))
		return
	}
	if err := s.o.Agent.AnswerConsent(r.Context(), req.ID, req.Answer == "allow"); err != nil {
		agentErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}"))
}

// events streams server-sent events: "request" with a changed request
// (protojson MyRequest) and "state" with the connection/session state.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan []byte, 32)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	st, _ := json.Marshal(s.stateNow())
	fmt.Fprintf(w, "event: state\ndata: %s\n\n", st)
	fl.Flush()
	keep := time.NewTicker(25 * time.Second)
	defer keep.Stop()
	for {
		select {
		case b := <-ch:
			w.Write(b)
			fl.Flush()
		case <-keep.C:
			w.Write([]byte(": keep-alive\n\n"))
			fl.Flush()
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

func (s *Server) broadcast(event string, data []byte) {
	msg := []byte("event: " + event + "\ndata: " + string(data) + "\n\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- msg:
		default: // a stuck page reloads the list when it reconnects
		}
	}
}

// pump passes the agent's pushes and state changes to the pages, and
// notifies the desktop of a technician's reply or pick-up.
func (s *Server) pump() {
	updates, changes := s.o.Agent.Updates(), s.o.Agent.SessionChanges()
	poll := time.NewTicker(2 * time.Second) // the connection state has no push
	defer poll.Stop()
	last := s.stateNow()
	for {
		select {
		case <-s.done:
			return
		case u, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(u.GetRequest())
			if err == nil {
				s.broadcast("request", b)
			}
			if s.o.Notify != nil {
				if title, body, ok := notification(u); ok {
					s.o.Notify(title, body)
				}
			}
			if s.o.OnUpdate != nil {
				s.o.OnUpdate(u)
			}
		case <-changes:
		case <-poll.C:
		}
		if now := s.stateNow(); now != last {
			if now.ConsentID != "" && now.ConsentID != last.ConsentID {
				if s.o.Notify != nil {
					s.o.Notify(consentNotification(now.ConsentText))
				}
				if s.o.OnConsent != nil {
					s.o.OnConsent()
				}
			}
			last = now
			b, _ := json.Marshal(now)
			s.broadcast("state", b)
			if s.o.OnStateChange != nil {
				s.o.OnStateChange()
			}
		}
	}
}

// consentNotification is the desktop notification of a consent question.
func consentNotification(text string) (title, body string) {
	if text == "" {
		text = "A technician wants to see your screen."
	}
	return "Deskside: " + strings.TrimSuffix(text, "."), "Open Deskside to answer: Allow or Deny. No answer denies."
}

// notification is the desktop notification for u, if it calls for one: a
// technician's reply or chat line, or a pick-up.
func notification(u *desksidev1.HelpUpdate) (title, body string, ok bool) {
	r, e := u.GetRequest(), u.GetEntry()
	switch {
	case e == nil && r.GetPickedUp():
		who := r.GetTechnician()
		if who == "" {
			who = "A technician"
		}
		return who + " picked up " + r.GetCode(), r.GetSubject(), true
	case e != nil && !e.GetFromUser() && (e.GetKind() == "reply" || e.GetKind() == "chat"):
		who := e.GetTechnician()
		if who == "" {
			who = "Your IT team"
		}
		text := e.GetText()
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		return who + " replied on " + r.GetCode(), text, true
	}
	return "", "", false
}
