package session

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// notifyingSource is a Source that reports changes: Next returns a changed
// frame when the test marked one, and counts its calls.
type notifyingSource struct {
	changes chan struct{}
	mu      sync.Mutex
	dirty   bool
	nexts   int
}

func (s *notifyingSource) Changes() <-chan struct{} { return s.changes }

func (s *notifyingSource) change() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
	s.changes <- struct{}{}
}

func (s *notifyingSource) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nexts
}

func (s *notifyingSource) Next() (Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nexts++
	f := Frame{Width: 16, Height: 16, Stride: 64, Pix: make([]byte, 16*64), Changed: s.dirty || s.nexts == 1, Monitor: AllMonitors}
	s.dirty = false
	return f, nil
}

func (s *notifyingSource) Monitors() ([]Monitor, error) {
	return []Monitor{{Width: 16, Height: 16}}, nil
}
func (s *notifyingSource) Select(int) error { return nil }
func (s *notifyingSource) Close() error     { return nil }

// encoded records what the stream encoded.
type encoded struct{ key bool }

type recordingEncoder struct {
	out   chan encoded
	force bool
}

func (e *recordingEncoder) Encode([]byte, int, time.Duration) ([]byte, bool, error) {
	key := e.force
	e.force = false
	e.out <- encoded{key: key}
	return []byte{0x10, 0, 0}, key, nil
}
func (e *recordingEncoder) ForceKeyframe()       { e.force = true }
func (e *recordingEncoder) SetBitrate(int) error { return nil }
func (e *recordingEncoder) Close() error         { return nil }

// TestStreamCapturesOnChange checks the stream loop with a source that
// reports changes: it captures only when told (no polling of an idle
// screen), encodes each change, and answers a key-frame request on an
// idle screen with the last picture.
func TestStreamCapturesOnChange(t *testing.T) {
	out := make(chan encoded, 16)
	m := NewManager(Config{Logger: slog.New(slog.DiscardHandler), NewEncoder: func(w, h int) (Encoder, error) {
		return &recordingEncoder{out: out}, nil
	}})
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "screen", "test")
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{m: m, log: m.log, id: "s", keyReq: make(chan struct{}, 1), bitrate: make(chan int, 4),
		monitorReq: make(chan int, 1), connected: make(chan struct{}), track: track, ended: make(chan string, 1)}
	close(s.connected)
	src := &notifyingSource{changes: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.stream(ctx, src) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stream: %v", err)
		}
	}()
	next := func(what string) encoded {
		t.Helper()
		select {
		case e := <-out:
			return e
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing encoded for %s", what)
		}
		return encoded{}
	}

	if e := next("the start"); !e.key {
		t.Error("the first frame is not a key frame")
	}
	// Idle: no change reported, no capture. (Several frame intervals.)
	idle := src.calls()
	time.Sleep(200 * time.Millisecond)
	if n := src.calls(); n != idle {
		t.Errorf("the idle screen was captured %d more times without a change reported", n-idle)
	}
	src.change()
	if e := next("a reported change"); e.key {
		t.Error("a change was sent as a key frame")
	}
	s.requestKeyframe()
	if e := next("a key-frame request on an idle screen"); !e.key {
		t.Error("a key-frame request gave a delta frame")
	}
	select {
	case e := <-out:
		t.Errorf("an extra frame was encoded (%+v)", e)
	default:
	}
}
