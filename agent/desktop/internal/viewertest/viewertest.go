// Package viewertest is a Go WebRTC viewer for the desktop package's tests
// and benchmarks. It stands in for the browser: it starts a session through
// a relay's console API, answers the agent's offer, trickles candidates
// both ways, reassembles VP8 frames from RTP the way a browser does (the
// payloads up to the packet with the marker bit), decodes them with
// [vpxdec] and counts what it received: RTP packets and bytes, decoded
// frames, gaps, and the bytes the ICE transport delivered.
package viewertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/deskside/deskside/agent/desktop/internal/vpxdec"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Options adjust a session.
type Options struct {
	// RelayOnly asks for media through the relay's TURN server only.
	RelayOnly bool
	// ViewOnly asks for a session without control.
	ViewOnly bool
	// TicketCode names the ticket the session is for.
	TicketCode string
	// Quiet drops the connection-state log lines.
	Quiet bool
	// Control keeps the agent's "control" channel (Viewer.Control) and
	// every message on it (Viewer.CtlMsgs); the test must read them.
	Control bool
	// Sign, when set, signs the session as a technician's console does: it
	// gets the DesktopOperation the request asks for, with the viewer's
	// DTLS fingerprint, and returns the context to start the session with
	// (carrying the envelope in the call metadata).
	Sign func(ctx context.Context, op *desksidev1.DesktopOperation) (context.Context, error)
	// NoFingerprint leaves the viewer's fingerprint out of the request,
	// as a console from before fingerprint binding did.
	NoFingerprint bool
	// ClaimFingerprint, when set, is named (and signed) in the request in
	// place of this viewer's own: the viewer then answers as a relay in
	// the middle would, with a certificate the technician did not sign.
	ClaimFingerprint string
	// EditAnswer, when set, rewrites the answer's SDP before it is sent.
	EditAnswer func(sdp string) string
}

// Viewer is one session's viewing end.
type Viewer struct {
	// PC is the viewer's peer connection.
	PC *webrtc.PeerConnection
	// Session is the relay's session id.
	Session string
	// Requested is when StartDesktopSession was called.
	Requested time.Time
	// Fingerprint is the viewer's DTLS certificate fingerprint as its SDP
	// names it ("sha-256 AB:CD:…").
	Fingerprint string
	// Offers counts the agent's offers (none before the user allows an
	// attended session).
	Offers atomic.Int32
	// Answered counts the answers sent to those offers.
	Answered atomic.Int32
	// Ended receives the reason of the agent's DesktopEnded, or of the
	// end of the signaling stream.
	Ended chan string
	// SignalErrors receives the errors of the viewer's SendDesktopSignal
	// calls (the agent refusing an answer, for one).
	SignalErrors chan error
	// Input receives the agent's input data channel once it is open.
	Input chan *webrtc.DataChannel
	// With Options.Control, Control receives the control channel once it
	// is open and CtlMsgs its messages (from before the open on: none is
	// missed).
	Control chan *webrtc.DataChannel
	CtlMsgs chan []byte

	tb     testing.TB
	cancel context.CancelFunc
	frames chan *vpxdec.Frame

	packets, rtpBytes, gaps, plis atomic.Int64
	zeroPlayout                   atomic.Int64
	decMu                         sync.Mutex
	decoded                       int64
	lastDecoded                   time.Time

	firstOnce  sync.Once
	firstFrame chan struct{} // closed at the first decoded frame
	firstAt    time.Time     // set before firstFrame closes
	closeOnce  sync.Once
}

// Stats are the viewer's counters since the session started.
type Stats struct {
	// Packets and RTPBytes count the video RTP packets read (header and
	// payload, after SRTP).
	Packets, RTPBytes int64
	// Decoded counts the frames the decoder produced a picture for;
	// LastDecoded is when the last of them was.
	Decoded     int64
	LastDecoded time.Time
	// Gaps counts frames abandoned because a packet was missing or out
	// of order; PLIs the key-frame requests the viewer sent for them.
	Gaps, PLIs int64
	// TransportBytes counts what the ICE transport delivered: SRTP,
	// SRTCP and DTLS/SCTP, without IP and UDP headers.
	TransportBytes uint64
	// ZeroPlayoutDelay counts the video packets that asked for a playout
	// delay of zero (PlayoutDelayURI), as Chromium reads it.
	ZeroPlayoutDelay int64
}

// PlayoutDelayURI is the playout-delay RTP header extension, which the
// viewer offers to take as Chromium does.
const PlayoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

// newAPI is pion's default set-up (codecs, NACK, reports, TWCC) with the
// playout-delay extension accepted, as a browser's answer accepts it.
func newAPI() *webrtc.API {
	me := &webrtc.MediaEngine{}
	ir := &interceptor.Registry{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		panic(err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: PlayoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
		panic(err)
	}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		panic(err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
}

// Open starts a control session (unless o.ViewOnly) on device and returns
// once the relay has accepted it; the connection comes up in the
// background. The session ends with Close or when tb ends.
func Open(tb testing.TB, cs desksidev1.ConsoleServiceClient, ctx context.Context, device string, o Options) (*Viewer, error) {
	requested := time.Now()
	// The DTLS certificate comes first: the request names its fingerprint,
	// and the agent completes the session only with an answer carrying it.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, err
	}
	fps, err := cert.GetFingerprints()
	if err != nil || len(fps) == 0 {
		return nil, fmt.Errorf("viewertest: certificate fingerprint: %v", err)
	}
	own := fps[0].Algorithm + " " + fps[0].Value
	req := &desksidev1.StartDesktopSessionRequest{DeviceId: device, Control: !o.ViewOnly, RelayOnly: o.RelayOnly, Monitor: -1, ViewerFingerprint: own, TicketCode: o.TicketCode}
	switch {
	case o.NoFingerprint:
		req.ViewerFingerprint = ""
	case o.ClaimFingerprint != "":
		req.ViewerFingerprint = o.ClaimFingerprint
	}
	ctx, cancel := context.WithCancel(ctx)
	callCtx := ctx
	if o.Sign != nil {
		callCtx, err = o.Sign(ctx, &desksidev1.DesktopOperation{Control: req.GetControl(), Monitor: req.GetMonitor(), ViewerFingerprint: req.GetViewerFingerprint(), TicketCode: req.GetTicketCode()})
		if err != nil {
			cancel()
			return nil, err
		}
	}
	st, err := cs.StartDesktopSession(callCtx, req)
	if err != nil {
		cancel()
		return nil, err
	}
	first, err := st.Recv()
	if err != nil {
		cancel()
		return nil, err
	}
	started := first.GetStarted()
	if started == nil {
		cancel()
		return nil, fmt.Errorf("viewertest: first event %v is not Started", first)
	}
	conf := webrtc.Configuration{Certificates: []webrtc.Certificate{*cert}}
	for _, s := range started.GetIceServers() {
		conf.ICEServers = append(conf.ICEServers, webrtc.ICEServer{URLs: s.GetUrls(), Username: s.GetUsername(), Credential: s.GetCredential()})
	}
	if o.RelayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := newAPI().NewPeerConnection(conf)
	if err != nil {
		cancel()
		return nil, err
	}
	v := &Viewer{PC: pc, Session: started.GetSession().GetSessionId(), Requested: requested, Fingerprint: own,
		Ended: make(chan string, 1), SignalErrors: make(chan error, 16), Input: make(chan *webrtc.DataChannel, 1),
		Control: make(chan *webrtc.DataChannel, 1), CtlMsgs: make(chan []byte, 4096),
		tb: tb, cancel: cancel, frames: make(chan *vpxdec.Frame, 16), firstFrame: make(chan struct{})}
	tb.Cleanup(v.Close)
	logf := tb.Logf
	if o.Quiet {
		logf = func(string, ...any) {}
	}
	send := func(sig *desksidev1.DesktopSignal) {
		sig.SessionId = v.Session
		if _, err := cs.SendDesktopSignal(ctx, &desksidev1.SendDesktopSignalRequest{Signal: sig}); err != nil && ctx.Err() == nil {
			logf("viewer: send signal: %v", err)
			select {
			case v.SignalErrors <- err:
			default:
			}
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			b, _ := json.Marshal(c.ToJSON())
			send(&desksidev1.DesktopSignal{Signal: &desksidev1.DesktopSignal_Candidate{Candidate: string(b)}})
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if ctx.Err() == nil {
			logf("viewer pc: %s", s)
		}
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		switch dc.Label() {
		case "input":
			dc.OnOpen(func() {
				select {
				case v.Input <- dc:
				default:
				}
			})
		case "control": // cursor, clipboard, monitors
			if !o.Control {
				return
			}
			dc.OnMessage(func(m webrtc.DataChannelMessage) {
				select {
				case v.CtlMsgs <- m.Data:
				default:
					tb.Errorf("viewer: control message dropped: the test does not read them")
				}
			})
			dc.OnOpen(func() {
				select {
				case v.Control <- dc:
				default:
				}
			})
		default:
			tb.Errorf("viewer: unexpected data channel %q", dc.Label())
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, rc *webrtc.RTPReceiver) {
		logf("viewer: track %s", tr.Codec().MimeType)
		var playoutID uint8
		for _, e := range rc.GetParameters().HeaderExtensions {
			if e.URI == PlayoutDelayURI {
				playoutID = uint8(e.ID)
			}
		}
		v.readVideo(tr, playoutID)
	})
	go func() {
		var pending []webrtc.ICECandidateInit
		haveRemote := false
		ended := func(reason string) {
			select {
			case v.Ended <- reason:
			default:
			}
		}
		for {
			m, err := st.Recv()
			if err != nil {
				ended(err.Error())
				return
			}
			if e := m.GetEnded(); e != nil {
				ended(e.GetReason())
			}
			sig := m.GetSignal()
			switch {
			case sig.GetOffer() != "":
				v.Offers.Add(1)
				// An offer read after Close meets a closed peer
				// connection: that is the test ending, not a failure.
				// So is one (an ICE restart) after pion closed the
				// connection itself when DTLS failed, as tests of a
				// refused handshake want; a test that wants media
				// fails on its absence.
				failed := func(what string, err error) {
					if ctx.Err() == nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
						tb.Errorf("viewer: %s: %v", what, err)
					}
				}
				if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sig.GetOffer()}); err != nil {
					failed("remote offer", err)
					return
				}
				ans, err := pc.CreateAnswer(nil)
				if err != nil {
					failed("answer", err)
					return
				}
				if err := pc.SetLocalDescription(ans); err != nil {
					failed("local answer", err)
					return
				}
				answer := ans.SDP
				if o.EditAnswer != nil {
					answer = o.EditAnswer(answer)
				}
				send(&desksidev1.DesktopSignal{Signal: &desksidev1.DesktopSignal_Answer{Answer: answer}})
				v.Answered.Add(1)
				haveRemote = true
				for _, c := range pending {
					pc.AddICECandidate(c)
				}
				pending = nil
			case sig.GetCandidate() != "":
				var c webrtc.ICECandidateInit
				if json.Unmarshal([]byte(sig.GetCandidate()), &c) != nil {
					continue
				}
				if haveRemote {
					pc.AddICECandidate(c)
				} else {
					pending = append(pending, c)
				}
			}
		}
	}()
	return v, nil
}

// pliInterval spaces the viewer's key-frame requests, as browsers do.
const pliInterval = 300 * time.Millisecond

// readVideo reassembles, decodes and counts the video until the track
// ends. A missing or reordered packet abandons the frame and asks for a
// key frame (PLI), at most every pliInterval.
func (v *Viewer) readVideo(tr *webrtc.TrackRemote, playoutID uint8) {
	dec, err := vpxdec.New()
	if err != nil {
		v.tb.Errorf("viewer: decoder: %v", err)
		return
	}
	defer dec.Close()
	var frame []byte
	var last uint16
	var lastPLI time.Time
	started := false
	gap := func() {
		v.gaps.Add(1)
		if time.Since(lastPLI) >= pliInterval {
			lastPLI = time.Now()
			if v.PC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}}) == nil {
				v.plis.Add(1)
			}
		}
	}
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if playoutID != 0 { // counted before the packet: Stats never sees more packets than these
			var pd rtp.PlayoutDelayExtension
			if b := p.GetExtension(playoutID); b != nil && pd.Unmarshal(b) == nil && pd.MinDelay == 0 && pd.MaxDelay == 0 {
				v.zeroPlayout.Add(1)
			}
		}
		v.packets.Add(1)
		v.rtpBytes.Add(int64(p.MarshalSize()))
		var vp8 codecs.VP8Packet
		payload, err := vp8.Unmarshal(p.Payload)
		if err != nil {
			continue
		}
		if vp8.S == 1 && vp8.PID == 0 {
			if started {
				gap() // the previous frame never got its marker
			}
			frame, started = frame[:0], true
		} else if !started || p.SequenceNumber != last+1 {
			if started {
				gap()
			}
			started = false // wait for the next frame
			continue
		}
		last = p.SequenceNumber
		frame = append(frame, payload...)
		if !p.Marker {
			continue
		}
		started = false
		f, err := dec.Decode(frame)
		if err != nil || f == nil {
			continue
		}
		v.decMu.Lock()
		v.decoded++
		v.lastDecoded = time.Now()
		v.decMu.Unlock()
		v.firstOnce.Do(func() {
			v.firstAt = time.Now()
			close(v.firstFrame)
		})
		select {
		case v.frames <- f:
		default:
		}
	}
}

// ErrNoFrame is returned when no frame was decoded in time.
var ErrNoFrame = errors.New("viewertest: no decoded video frame")

// Frame returns the next buffered decoded frame (frames that find the
// buffer full are dropped), waiting at most timeout.
func (v *Viewer) Frame(timeout time.Duration) (*vpxdec.Frame, error) {
	select {
	case f := <-v.frames:
		return f, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("%w in %v (%d RTP packets)", ErrNoFrame, timeout, v.packets.Load())
	}
}

// FirstFrame waits at most timeout for the first decoded frame and returns
// when it was decoded.
func (v *Viewer) FirstFrame(timeout time.Duration) (time.Time, error) {
	select {
	case <-v.firstFrame:
		return v.firstAt, nil
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("%w in %v (%d RTP packets)", ErrNoFrame, timeout, v.packets.Load())
	}
}

// Stats returns the counters.
func (v *Viewer) Stats() Stats {
	s := Stats{Packets: v.packets.Load(), RTPBytes: v.rtpBytes.Load(), Gaps: v.gaps.Load(), PLIs: v.plis.Load(), ZeroPlayoutDelay: v.zeroPlayout.Load()}
	v.decMu.Lock()
	s.Decoded, s.LastDecoded = v.decoded, v.lastDecoded
	v.decMu.Unlock()
	if sctp := v.PC.SCTP(); sctp != nil {
		if dtls := sctp.Transport(); dtls != nil {
			if ice := dtls.ICETransport(); ice != nil {
				s.TransportBytes = ice.Stats().BytesReceived
			}
		}
	}
	return s
}

// Sub returns the counters' growth from earlier to s (LastDecoded stays
// s's).
func (s Stats) Sub(earlier Stats) Stats {
	return Stats{
		Packets: s.Packets - earlier.Packets, RTPBytes: s.RTPBytes - earlier.RTPBytes,
		Decoded: s.Decoded - earlier.Decoded, LastDecoded: s.LastDecoded,
		Gaps: s.Gaps - earlier.Gaps, PLIs: s.PLIs - earlier.PLIs, TransportBytes: s.TransportBytes - earlier.TransportBytes,
	}
}

// FrameRate is the decoded frame rate between earlier and s: the frames
// decoded after earlier's last one, up to and including s's last one,
// over the time between those two, so that a window's edges do not
// count a frame interval more or less. It is 0 without two frames.
func (s Stats) FrameRate(earlier Stats) float64 {
	span := s.LastDecoded.Sub(earlier.LastDecoded)
	if earlier.LastDecoded.IsZero() || span <= 0 {
		return 0
	}
	return float64(s.Decoded-earlier.Decoded) / span.Seconds()
}

// Close ends the session: the signaling stream (so the relay tells the
// agent) and the peer connection. It is idempotent.
func (v *Viewer) Close() {
	v.closeOnce.Do(func() {
		v.cancel()
		v.PC.Close()
	})
}
