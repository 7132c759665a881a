// Package session runs remote-desktop sessions on the agent: a pion
// WebRTC peer connection per session with one VP8 video track fed by the
// screen capturer and encoder, an "input" data channel whose mouse and
// keyboard events are injected when the technician has control, and a
// "control" data channel for everything else (monitors, pointer,
// clipboard; see control.go for its messages).
//
// Signaling (the agent's offer, the viewer's answer, trickled ICE
// candidates) travels over the agent's relay stream; this package only
// sees it as callbacks. Only changed frames are encoded; an idle screen
// sends nothing. A PLI or FIR from the viewer forces a key frame and a
// REMB estimate from it sets the encoder's bitrate.
//
// The pointer and the clipboard are optional: without Config.OpenCursor
// or Config.OpenClipboard, or when they fail (a Wayland session, another
// OS, an X server without XFIXES), sessions go without them, and the
// Manager logs why once.
package session

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// Attribute keys of the log records.
const (
	logKeySession = "session"
	logKeyError   = "err"
	logKeyReason  = "reason"
	logKeyMonitor = "monitor"
	logKeyBytes   = "bytes"
)

// Frame is one captured image, BGRA.
type Frame struct {
	Width, Height, Stride int
	// X and Y are the captured area's top-left corner on the screen.
	X, Y int
	// Monitor is the Monitor.ID the image shows, or -1 for all of them.
	Monitor int
	Pix     []byte
	// Changed is false when the screen did not change since the last frame
	// (Pix may then be stale and must not be encoded).
	Changed bool
}

// Monitor is one monitor of the desktop, in screen coordinates.
type Monitor struct {
	ID                  int
	Name                string
	X, Y, Width, Height int
	Primary             bool
}

// AllMonitors selects the whole screen.
const AllMonitors = -1

// Source captures the screen.
type Source interface {
	Next() (Frame, error)
	// Monitors lists the desktop's monitors.
	Monitors() ([]Monitor, error)
	// Select switches the capture to a monitor (AllMonitors: the whole
	// screen); the next frame shows it.
	Select(monitor int) error
	Close() error
}

// Notifier is implemented by Sources that hear of screen changes as they
// happen: the stream then captures at once (no more often than the frame
// rate) instead of polling on a tick, which takes up to a frame interval
// off the latency of every change.
type Notifier interface {
	// Changes receives a value when the screen may have changed (or the
	// source broke); nil means the source cannot tell, and is polled.
	Changes() <-chan struct{}
}

// Encoder encodes BGRA frames to VP8.
type Encoder interface {
	Encode(bgra []byte, stride int, pts time.Duration) (frame []byte, key bool, err error)
	ForceKeyframe()
	SetBitrate(kbps int) error
	Close() error
}

// Input injects the technician's input. Pointer positions are screen
// coordinates.
type Input interface {
	MouseMove(x, y int) error
	MouseButton(button int, down bool) error
	Wheel(dx, dy int) error
	Key(code string, down bool) error
	ReleaseAll() error
	Close() error
}

// Clipboard shares the desktop's clipboard text.
type Clipboard interface {
	// SetText puts the technician's text on the desktop's clipboard.
	SetText(text string) error
	Close() error
}

// CursorShape is the pointer's image.
type CursorShape struct {
	Width, Height, HotX, HotY int
	// PNG is the image with alpha.
	PNG []byte
}

// CursorEvents receive the pointer's position (screen coordinates;
// onScreen false when it is on another X screen) and image. They are
// called from the cursor follower's goroutine.
type CursorEvents struct {
	Move  func(x, y int, onScreen bool)
	Shape func(CursorShape)
}

// Config configures the Manager.
type Config struct {
	Logger *slog.Logger
	// OpenSource opens the capturer for a monitor (-1: all).
	OpenSource func(monitor int) (Source, error)
	// OpenInput opens the input injector (only for control sessions).
	OpenInput func() (Input, error)
	// NewEncoder makes a VP8 encoder for a frame size.
	NewEncoder func(width, height int) (Encoder, error)
	// OpenCursor starts following the pointer for a session (optional).
	OpenCursor func(CursorEvents) (io.Closer, error)
	// OpenClipboard starts sharing the clipboard for a control session
	// (optional); onChange gets the desktop's new text.
	OpenClipboard func(onChange func(text string)) (Clipboard, error)
	// FPS is the capture rate ceiling; default 30.
	FPS int
	// MaxSessions caps concurrent sessions on this agent; default 1.
	MaxSessions int
	// Consent asks the logged-in user before an attended session and
	// tells them of an unattended-with-notice one (consent.go); without
	// it, only unattended sessions run.
	Consent Consent
	// ConsentTimeout is how long the user has to answer; default
	// DefaultConsentTimeout.
	ConsentTimeout time.Duration
	// OpenBanner shows the user an on-screen indicator while a session
	// runs, with a button that ends it (optional; banner.go). It is
	// opened once the session may go on and closed when it ends.
	OpenBanner func(Banner) (io.Closer, error)
}

// Errors.
var (
	ErrBusy       = errors.New("session: another remote session is already running on this device")
	ErrNoSession  = errors.New("session: no such session")
	ErrNoCapturer = errors.New("session: this agent has no screen capturer")
)

// Manager runs the agent's sessions.
type Manager struct {
	cfg Config
	log *slog.Logger
	mu  sync.Mutex
	act map[string]*Session

	// cursorLogged, clipLogged and bannerLogged make a missing feature
	// logged once.
	cursorLogged, clipLogged, bannerLogged sync.Once
}

// NewManager makes a Manager.
func NewManager(cfg Config) *Manager {
	cfg.FPS = cmp.Or(cfg.FPS, 30)
	cfg.MaxSessions = cmp.Or(cfg.MaxSessions, 1)
	cfg.ConsentTimeout = cmp.Or(cfg.ConsentTimeout, DefaultConsentTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, log: cfg.Logger, act: map[string]*Session{}}
}

// Session is one remote-desktop session.
type Session struct {
	m       *Manager
	log     *slog.Logger
	id      string
	control bool
	// viewerFP is the viewer's DTLS fingerprint from StartDesktop (signed
	// in its envelope when the device pins an organisation key); when set,
	// only an answer carrying it is accepted.
	viewerFP string
	pc       *webrtc.PeerConnection
	track    *webrtc.TrackLocalStaticSample
	signal   func(*desksidev1.DesktopSignal) error
	ended    chan string
	endOnce  sync.Once
	// stop is closed when the session ends (nil in tests that build a
	// Session by hand).
	stop    chan struct{}
	keyReq  chan struct{}
	bitrate chan int
	// monitorReq carries the viewer's monitor choice to the stream loop.
	monitorReq chan int
	input      Input
	inputMu    sync.Mutex
	clip       Clipboard // nil without clipboard sharing

	// connected is closed when the peer connection is up: frames written
	// before that would be lost, and the first one must be a key frame.
	connected     chan struct{}
	connectedOnce sync.Once
	// Candidates that arrive before the viewer's answer wait here.
	sigMu     sync.Mutex
	answered  bool
	candQueue []webrtc.ICECandidateInit

	// mu guards the control channel and the view state it reports.
	mu       sync.Mutex
	ctl      *webrtc.DataChannel
	ctlOpen  bool
	monitors []Monitor       // nil until known
	current  int             // selected Monitor.ID or AllMonitors
	area     image.Rectangle // captured area on the screen; empty before the first frame
	pointer  pointerState
	shape    []byte // the last "cursorshape" message; nil before the first
	lastClip string // the clipboard text last sent or received
	haveClip bool
}

// pointerState is the pointer as last seen and as last sent.
type pointerState struct {
	known    bool
	x, y     int
	onScreen bool

	sent         bool
	sentX, sentY int
	sentVisible  bool
	pending      bool // a position waits for the channel to drain
}

// Run runs a session until it ends (the viewer leaves, the link dies, ctx
// ends) and returns why it ended. signal sends the agent's signaling to the
// viewer. Every goroutine, file and X resource of the session is released
// before Run returns.
func (m *Manager) Run(ctx context.Context, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string {
	if m.cfg.OpenSource == nil || m.cfg.NewEncoder == nil {
		return ErrNoCapturer.Error()
	}
	s := &Session{m: m, log: m.log, id: req.GetSessionId(), control: req.GetControl(), viewerFP: req.GetViewerFingerprint(), signal: signal,
		ended: make(chan string, 1), keyReq: make(chan struct{}, 1), bitrate: make(chan int, 4),
		monitorReq: make(chan int, 1), connected: make(chan struct{}), current: int(req.GetMonitor()), stop: make(chan struct{})}
	m.mu.Lock()
	if len(m.act) >= m.cfg.MaxSessions {
		m.mu.Unlock()
		return ErrBusy.Error()
	}
	m.act[s.id] = s
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.act, s.id)
		m.mu.Unlock()
	}()
	// No media before the user allowed it (or was told, as the policy
	// says).
	if r := s.consent(ctx, req); r != "" {
		m.log.Info("desktop session refused", logKeySession, s.id, logKeyReason, r)
		return r
	}
	if b := s.openBanner(req); b != nil {
		defer b.Close()
	}
	reason, err := s.run(ctx, req)
	if err != nil {
		m.log.Warn("desktop session failed", logKeySession, s.id, logKeyError, err)
		return err.Error()
	}
	m.log.Info("desktop session ended", logKeySession, s.id, logKeyReason, reason)
	return reason
}

// Signal passes the viewer's answer or ICE candidate to its session.
func (m *Manager) Signal(sig *desksidev1.DesktopSignal) error {
	m.mu.Lock()
	s := m.act[sig.GetSessionId()]
	m.mu.Unlock()
	if s == nil {
		return ErrNoSession
	}
	s.sigMu.Lock()
	defer s.sigMu.Unlock()
	if s.pc == nil {
		return errors.New("session: not ready for signaling yet")
	}
	switch x := sig.GetSignal().(type) {
	case *desksidev1.DesktopSignal_Answer:
		if err := s.checkAnswer(x.Answer); err != nil {
			m.log.Warn("desktop answer refused", logKeySession, s.id, logKeyReason, err.Error())
			s.end(err.Error())
			return err
		}
		if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: x.Answer}); err != nil {
			return err
		}
		s.answered = true
		for _, c := range s.candQueue {
			if err := s.pc.AddICECandidate(c); err != nil {
				m.log.Debug("queued ICE candidate refused", logKeySession, s.id, logKeyError, err)
			}
		}
		s.candQueue = nil
		return nil
	case *desksidev1.DesktopSignal_Candidate:
		var c webrtc.ICECandidateInit
		if err := json.Unmarshal([]byte(x.Candidate), &c); err != nil {
			return fmt.Errorf("session: bad ICE candidate: %w", err)
		}
		if !s.answered {
			if len(s.candQueue) >= 64 {
				return errors.New("session: too many ICE candidates before the answer")
			}
			s.candQueue = append(s.candQueue, c)
			return nil
		}
		return s.pc.AddICECandidate(c)
	}
	return errors.New("session: the viewer may send only an answer or candidates")
}

// checkAnswer refuses an answer that does not carry the viewer's
// fingerprint from the session request, at session level and in every
// media section, so that nobody but the viewer that asked (and, for a
// signed session, signed) can complete the session; pion then checks that
// the DTLS certificate matches the answer's fingerprint.
func (s *Session) checkAnswer(answer string) error {
	if s.viewerFP == "" {
		return nil
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return fmt.Errorf("session: the viewer's answer is not valid SDP (%v); the session ends", err)
	}
	var fps []string
	collect := func(attrs []sdp.Attribute) {
		for _, a := range attrs {
			if a.Key == "fingerprint" {
				fps = append(fps, a.Value)
			}
		}
	}
	collect(d.Attributes)
	for _, md := range d.MediaDescriptions {
		collect(md.Attributes)
	}
	if len(fps) == 0 {
		return errors.New("session: the answer carries no DTLS fingerprint, but the session was requested for viewer " + s.viewerFP + "; the session ends (start it again from the console)")
	}
	for _, fp := range fps {
		if !wire.SameDTLSFingerprint(fp, s.viewerFP) {
			return fmt.Errorf("session: the answer's DTLS fingerprint %.120q is not the viewer's %s the session was requested (and signed) for: someone else answered in the viewer's place; the session ends (start it again from the console)", fp, s.viewerFP)
		}
	}
	return nil
}

// Sessions returns how many sessions are running.
func (m *Manager) Sessions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.act)
}

// End ends a session.
func (m *Manager) End(id, reason string) {
	m.mu.Lock()
	s := m.act[id]
	m.mu.Unlock()
	if s != nil {
		s.end(reason)
	}
}

func (s *Session) end(reason string) {
	s.endOnce.Do(func() {
		s.ended <- reason
		if s.stop != nil {
			close(s.stop)
		}
	})
}

func (s *Session) newAPI(req *desksidev1.StartDesktop) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	// VP8 with REMB (receiver-estimated bitrate drives the encoder), NACK,
	// PLI and FIR; no transport-cc, so browsers send REMB.
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}},
		PayloadType: 96,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: playoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	ir.Add(playoutDelayFactory{})
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	// Disconnected after 4 s without a packet (keepalives every 2 s), failed
	// 15 s later; restartAfter a disconnection the agent restarts ICE.
	se.SetICETimeouts(4*time.Second, 15*time.Second, 2*time.Second)
	// The largest data-channel message the viewer may send (advertised in
	// the offer's max-message-size): a clipboard text and its escaping.
	se.SetSCTPMaxMessageSize(MaxControlMessage)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// restartAfter is how long the ICE connection may stay disconnected before
// the agent restarts ICE; a shorter interruption usually heals by itself.
const restartAfter = 2 * time.Second

func (s *Session) run(ctx context.Context, req *desksidev1.StartDesktop) (_ string, err error) {
	api, err := s.newAPI(req)
	if err != nil {
		return "", err
	}
	conf := webrtc.Configuration{}
	for _, is := range req.GetIceServers() {
		conf.ICEServers = append(conf.ICEServers, webrtc.ICEServer{URLs: is.GetUrls(), Username: is.GetUsername(), Credential: is.GetCredential()})
	}
	if req.GetRelayOnly() {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(conf)
	if err != nil {
		return "", err
	}
	s.sigMu.Lock()
	s.pc = pc
	s.sigMu.Unlock()

	// Teardown, in order: the stream loop (it uses the source), the peer
	// connection (ends the RTCP reader and the data-channel callbacks), the
	// pointer and clipboard (their callbacks send on the control channel),
	// input, and last the source.
	var (
		wg         sync.WaitGroup
		src        Source
		stopStream context.CancelFunc = func() {}
		streamDone                    = make(chan struct{})
		cur        io.Closer
	)
	close(streamDone) // replaced once the stream loop starts
	defer func() {
		stopStream()
		<-streamDone
		pc.Close()
		if cur != nil {
			cur.Close()
		}
		if s.clip != nil {
			s.clip.Close()
		}
		wg.Wait()
		s.inputMu.Lock()
		if s.input != nil {
			s.input.ReleaseAll()
			s.input.Close()
			s.input = nil
		}
		s.inputMu.Unlock()
		if src != nil {
			src.Close()
		}
	}()

	s.track, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "screen", "deskside")
	if err != nil {
		return "", err
	}
	sender, err := pc.AddTrack(s.track)
	if err != nil {
		return "", err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.readRTCP(sender)
	}()

	src, err = s.m.cfg.OpenSource(int(req.GetMonitor()))
	if err != nil {
		return "", fmt.Errorf("open screen capture: %w", err)
	}
	if mons, err := src.Monitors(); err != nil {
		s.log.Debug("monitor list unavailable", logKeySession, s.id, logKeyError, err)
	} else {
		s.mu.Lock()
		s.monitors = mons
		s.mu.Unlock()
	}

	if s.control {
		if s.m.cfg.OpenInput == nil {
			return "", errors.New("this agent cannot inject input")
		}
		in, err := s.m.cfg.OpenInput()
		if err != nil {
			return "", fmt.Errorf("open input: %w", err)
		}
		s.input = in
	}
	cur = s.openCursor()
	if s.control {
		s.clip = s.openClipboard()
	}

	dc, err := pc.CreateDataChannel("input", nil)
	if err != nil {
		return "", err
	}
	dc.OnMessage(func(msg webrtc.DataChannelMessage) { s.onInput(msg.Data) })
	dc.OnClose(func() { s.releaseAll() })
	if err := s.createControl(pc); err != nil {
		return "", err
	}

	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		b, _ := json.Marshal(c.ToJSON())
		s.signal(&desksidev1.DesktopSignal{SessionId: s.id, Signal: &desksidev1.DesktopSignal_Candidate{Candidate: string(b)}})
	})
	// A network blip: the agent, as the offerer, restarts ICE (a new offer
	// with fresh credentials through the relay; the viewer answers it).
	// Two attempts, then the session ends.
	var restartMu sync.Mutex
	restarts := 0
	restartICE := func(why string) bool {
		restartMu.Lock()
		defer restartMu.Unlock()
		if restarts >= 2 || pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
			return false
		}
		restarts++
		offer, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
		if err == nil {
			err = pc.SetLocalDescription(offer)
		}
		if err == nil {
			s.sigMu.Lock()
			s.answered = false // candidates of the new generation wait for its answer
			s.sigMu.Unlock()
			err = s.signal(&desksidev1.DesktopSignal{SessionId: s.id, Signal: &desksidev1.DesktopSignal_Offer{Offer: offer.SDP}})
		}
		if err != nil {
			s.m.log.Warn("ICE restart failed", "session", s.id, "err", err)
			return false
		}
		s.m.log.Info("ICE restart", "session", s.id, "reason", why, "attempt", restarts)
		return true
	}
	var disconnectTimer *time.Timer
	down := false // the path was interrupted since it was last connected
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		restartMu.Lock()
		if disconnectTimer != nil {
			disconnectTimer.Stop()
			disconnectTimer = nil
		}
		if st == webrtc.ICEConnectionStateDisconnected {
			disconnectTimer = time.AfterFunc(restartAfter, func() {
				if pc.ICEConnectionState() == webrtc.ICEConnectionStateDisconnected {
					restartICE("disconnected for " + restartAfter.String())
				}
			})
		}
		switch st {
		case webrtc.ICEConnectionStateDisconnected, webrtc.ICEConnectionStateFailed, webrtc.ICEConnectionStateChecking:
			down = true
		case webrtc.ICEConnectionStateConnected:
			restarts = 0
			if down {
				// Frames sent while the path was down are lost, and an idle
				// screen sends nothing that would reveal the gap: send the
				// picture again.
				down = false
				s.requestKeyframe()
			}
		}
		restartMu.Unlock()
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			s.connectedOnce.Do(func() { close(s.connected) })
		case webrtc.PeerConnectionStateFailed:
			if !restartICE("connection failed") {
				s.end("the connection failed")
			}
		case webrtc.PeerConnectionStateClosed:
			s.end("the connection closed")
		}
	})
	defer func() {
		restartMu.Lock()
		if disconnectTimer != nil {
			disconnectTimer.Stop()
		}
		restartMu.Unlock()
	}()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	if err := s.signal(&desksidev1.DesktopSignal{SessionId: s.id, Signal: &desksidev1.DesktopSignal_Offer{Offer: offer.SDP}}); err != nil {
		return "", err
	}

	streamCtx, stop := context.WithCancel(ctx)
	stopStream = stop
	streamDone = make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(streamDone)
		errc <- s.stream(streamCtx, src)
	}()
	select {
	case <-ctx.Done():
		return "the session was closed", nil
	case r := <-s.ended:
		return r, nil
	case err := <-errc:
		return "", err
	}
}

// openCursor starts following the pointer; nil when this agent cannot.
func (s *Session) openCursor() io.Closer {
	if s.m.cfg.OpenCursor == nil {
		return nil
	}
	c, err := s.m.cfg.OpenCursor(CursorEvents{Move: s.onPointer, Shape: s.onCursorShape})
	if err != nil {
		logged := false
		s.m.cursorLogged.Do(func() {
			logged = true
			s.log.Warn("remote sessions go without the pointer: it cannot be followed here", logKeyError, err)
		})
		if !logged {
			s.log.Debug("no pointer updates", logKeySession, s.id, logKeyError, err)
		}
		return nil
	}
	return c
}

// openClipboard starts sharing the clipboard; nil when this agent cannot.
func (s *Session) openClipboard() Clipboard {
	if s.m.cfg.OpenClipboard == nil {
		return nil
	}
	c, err := s.m.cfg.OpenClipboard(s.onDesktopClipboard)
	if err != nil {
		logged := false
		s.m.clipLogged.Do(func() {
			logged = true
			s.log.Warn("remote sessions go without clipboard sharing: the clipboard cannot be used here", logKeyError, err)
		})
		if !logged {
			s.log.Debug("no clipboard sharing", logKeySession, s.id, logKeyError, err)
		}
		return nil
	}
	return c
}

// inputEvent is one message on the input channel.
type inputEvent struct {
	T  string `json:"t"` // m: move, b: button, w: wheel, k: key, r: release all
	X  int    `json:"x,omitempty"`
	Y  int    `json:"y,omitempty"`
	B  int    `json:"b,omitempty"`
	D  bool   `json:"d,omitempty"` // down
	DX int    `json:"dx,omitempty"`
	DY int    `json:"dy,omitempty"`
	C  string `json:"c,omitempty"` // KeyboardEvent.code
}

func (s *Session) onInput(data []byte) {
	if !s.control {
		return // view-only session: input is ignored
	}
	var ev inputEvent
	if len(data) > 1024 || json.Unmarshal(data, &ev) != nil {
		return
	}
	if ev.T == "m" {
		ev.X, ev.Y = s.toScreen(ev.X, ev.Y)
	}
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	in := s.input
	if in == nil {
		return
	}
	var err error
	switch ev.T {
	case "m":
		err = in.MouseMove(ev.X, ev.Y)
	case "b":
		if ev.B >= 1 && ev.B <= 3 {
			err = in.MouseButton(ev.B, ev.D)
		}
	case "w":
		err = in.Wheel(max(-10, min(10, ev.DX)), max(-10, min(10, ev.DY)))
	case "k":
		err = in.Key(ev.C, ev.D)
	case "r":
		err = in.ReleaseAll()
	}
	if err != nil {
		s.log.Debug("input not injected", logKeySession, s.id, logKeyError, err)
	}
}

// toScreen maps a position in the video (the captured area) to the
// screen, keeping it inside the area.
func (s *Session) toScreen(x, y int) (int, int) {
	s.mu.Lock()
	a := s.area
	s.mu.Unlock()
	if a.Empty() {
		return x, y
	}
	return a.Min.X + max(0, min(x, a.Dx()-1)), a.Min.Y + max(0, min(y, a.Dy()-1))
}

func (s *Session) releaseAll() {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if s.input != nil {
		s.input.ReleaseAll()
	}
}
