// Package session runs remote-desktop sessions on the agent: a pion
// WebRTC peer connection per session with one VP8 video track fed by the
// screen capturer and encoder, and an "input" data channel whose mouse and
// keyboard events are injected when the technician has control.
//
// Signaling (the agent's offer, the viewer's answer, trickled ICE
// candidates) travels over the agent's relay stream; this package only
// sees it as callbacks. Only changed frames are encoded; an idle screen
// sends nothing. A PLI or FIR from the viewer forces a key frame and a
// REMB estimate from it sets the encoder's bitrate.
package session

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Frame is one captured image, BGRA.
type Frame struct {
	Width, Height, Stride int
	Pix                   []byte
	// Changed is false when the screen did not change since the last frame
	// (Pix may then be stale and must not be encoded).
	Changed bool
}

// Source captures the screen.
type Source interface {
	Next() (Frame, error)
	Close() error
}

// Encoder encodes BGRA frames to VP8.
type Encoder interface {
	Encode(bgra []byte, stride int, pts time.Duration) (frame []byte, key bool, err error)
	ForceKeyframe()
	SetBitrate(kbps int) error
	Close() error
}

// Input injects the technician's input.
type Input interface {
	MouseMove(x, y int) error
	MouseButton(button int, down bool) error
	Wheel(dx, dy int) error
	Key(code string, down bool) error
	ReleaseAll() error
	Close() error
}

// Config configures the Manager.
type Config struct {
	Logger *slog.Logger
	// OpenSource opens the capturer for a monitor (-1: all).
	OpenSource func(monitor int) (Source, error)
	// OpenInput opens the input injector for a monitor (only for control
	// sessions); coordinates it gets are relative to that monitor.
	OpenInput func(monitor int) (Input, error)
	// NewEncoder makes a VP8 encoder for a frame size.
	NewEncoder func(width, height int) (Encoder, error)
	// FPS is the capture rate ceiling; default 30.
	FPS int
	// MaxSessions caps concurrent sessions on this agent; default 1.
	MaxSessions int
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
}

// NewManager makes a Manager.
func NewManager(cfg Config) *Manager {
	cfg.FPS = cmp.Or(cfg.FPS, 30)
	cfg.MaxSessions = cmp.Or(cfg.MaxSessions, 1)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, log: cfg.Logger, act: map[string]*Session{}}
}

// Session is one remote-desktop session.
type Session struct {
	m       *Manager
	id      string
	control bool
	pc      *webrtc.PeerConnection
	track   *webrtc.TrackLocalStaticSample
	signal  func(*desksidev1.DesktopSignal) error
	ended   chan string
	endOnce sync.Once
	keyReq  chan struct{}
	bitrate chan int
	input   Input
	inputMu sync.Mutex

	// connected is closed when the peer connection is up: frames written
	// before that would be lost, and the first one must be a key frame.
	connected     chan struct{}
	connectedOnce sync.Once
	// Candidates that arrive before the viewer's answer wait here.
	sigMu     sync.Mutex
	answered  bool
	candQueue []webrtc.ICECandidateInit
}

// Run runs a session until it ends (the viewer leaves, the link dies, ctx
// ends) and returns why it ended. signal sends the agent's signaling to the
// viewer. Every goroutine, file and X resource of the session is released
// before Run returns.
func (m *Manager) Run(ctx context.Context, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string {
	if m.cfg.OpenSource == nil || m.cfg.NewEncoder == nil {
		return ErrNoCapturer.Error()
	}
	s := &Session{m: m, id: req.GetSessionId(), control: req.GetControl(), signal: signal,
		ended: make(chan string, 1), keyReq: make(chan struct{}, 1), bitrate: make(chan int, 4), connected: make(chan struct{})}
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
	reason, err := s.run(ctx, req)
	if err != nil {
		m.log.Warn("desktop session failed", "session", s.id, "err", err)
		return err.Error()
	}
	m.log.Info("desktop session ended", "session", s.id, "reason", reason)
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
	switch x := sig.GetSignal().(type) {
	case *desksidev1.DesktopSignal_Answer:
		if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: x.Answer}); err != nil {
			return err
		}
		s.answered = true
		for _, c := range s.candQueue {
			if err := s.pc.AddICECandidate(c); err != nil {
				m.log.Debug("queued ICE candidate refused", "session", s.id, "err", err)
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
	s.endOnce.Do(func() { s.ended <- reason })
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
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICETimeouts(5*time.Second, 15*time.Second, 2*time.Second)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

func (s *Session) run(ctx context.Context, req *desksidev1.StartDesktop) (string, error) {
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
	s.pc = pc
	var wg sync.WaitGroup
	defer func() {
		pc.Close() // ends the RTCP reader and data channel callbacks
		wg.Wait()
		s.inputMu.Lock()
		if s.input != nil {
			s.input.ReleaseAll()
			s.input.Close()
			s.input = nil
		}
		s.inputMu.Unlock()
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

	if s.control {
		if s.m.cfg.OpenInput == nil {
			return "", errors.New("this agent cannot inject input")
		}
		in, err := s.m.cfg.OpenInput(int(req.GetMonitor()))
		if err != nil {
			return "", fmt.Errorf("open input: %w", err)
		}
		s.input = in
	}
	dc, err := pc.CreateDataChannel("input", nil)
	if err != nil {
		return "", err
	}
	dc.OnMessage(func(msg webrtc.DataChannelMessage) { s.onInput(msg.Data) })
	dc.OnClose(func() { s.releaseAll() })

	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		b, _ := json.Marshal(c.ToJSON())
		s.signal(&desksidev1.DesktopSignal{SessionId: s.id, Signal: &desksidev1.DesktopSignal_Candidate{Candidate: string(b)}})
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			s.connectedOnce.Do(func() { close(s.connected) })
		case webrtc.PeerConnectionStateFailed:
			s.end("the connection failed")
		case webrtc.PeerConnectionStateClosed:
			s.end("the connection closed")
		}
	})
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

	src, err := s.m.cfg.OpenSource(int(req.GetMonitor()))
	if err != nil {
		return "", fmt.Errorf("open screen capture: %w", err)
	}
	defer src.Close()
	streamCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
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

// readRTCP turns the viewer's feedback into key frames and bitrate.
func (s *Session) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				select {
				case s.keyReq <- struct{}{}:
				default:
				}
			case *rtcp.ReceiverEstimatedMaximumBitrate:
				select {
				case s.bitrate <- int(p.Bitrate / 1000):
				default:
				}
			}
		}
	}
}

// stream captures, encodes changed frames and writes them to the track.
func (s *Session) stream(ctx context.Context, src Source) error {
	var enc Encoder
	defer func() {
		if enc != nil {
			enc.Close()
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case <-s.connected:
	}
	// The viewer has nothing yet: start with a key frame of the screen.
	select {
	case s.keyReq <- struct{}{}:
	default:
	}
	tick := time.NewTicker(time.Second / time.Duration(s.m.cfg.FPS))
	defer tick.Stop()
	start := time.Now()
	last := start
	var w, h int
	var have bool
	var lastFrame Frame
	for {
		select {
		case <-ctx.Done():
			return nil
		case kbps := <-s.bitrate:
			if enc != nil {
				enc.SetBitrate(kbps * 9 / 10)
			}
			continue
		case <-tick.C:
		}
		f, err := src.Next()
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		forced := false
		select {
		case <-s.keyReq:
			forced = true
		default:
		}
		if !f.Changed && !forced {
			continue // idle screen: nothing to encode or send
		}
		if f.Changed {
			lastFrame, have = f, true
		}
		if !have {
			continue
		}
		if enc == nil || lastFrame.Width != w || lastFrame.Height != h {
			if enc != nil {
				enc.Close()
			}
			w, h = lastFrame.Width, lastFrame.Height
			if enc, err = s.m.cfg.NewEncoder(w, h); err != nil {
				return fmt.Errorf("encoder: %w", err)
			}
		}
		if forced {
			enc.ForceKeyframe()
		}
		now := time.Now()
		data, _, err := enc.Encode(lastFrame.Pix, lastFrame.Stride, now.Sub(start))
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		if len(data) == 0 {
			continue
		}
		if err := s.track.WriteSample(media.Sample{Data: data, Duration: now.Sub(last)}); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		last = now
	}
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
		s.m.log.Debug("input not injected", "session", s.id, "err", err)
	}
}

func (s *Session) releaseAll() {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if s.input != nil {
		s.input.ReleaseAll()
	}
}
