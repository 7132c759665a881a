package encode

import (
	"cmp"
	"fmt"
	"runtime"
	"time"
)

// Defaults applied by [Config.CheckAndSetDefaults].
const (
	DefaultFPS = 30
	// DefaultBitrateKbps is where a stream starts; the viewer's REMB
	// estimate moves it within [Config.MinBitrateKbps,
	// Config.MaxBitrateKbps] once it arrives. At 1200 kbit/s a 1080p page
	// of text scrolling 3 rows a frame at 30 fps is coded at a quantizer
	// around 28 of 63, 43 dB luma PSNR: legible (1500 kbit/s bought q 8
	// and 47 dB, 1000 kbit/s q 47, 38 dB and dropped frames;
	// BenchmarkEncode1080pBitrate). It leaves a 15 % margin under a
	// 1.5 Mbit/s budget for packet overhead and for the frames that cost
	// more when capture falls behind (a jump of several scroll steps
	// defeats cpu-used -10's motion search). A browser's estimate raises
	// it within seconds when the link allows, and a slow or relayed link
	// is not flooded before the first estimate.
	DefaultBitrateKbps      = 1200
	DefaultMinBitrateKbps   = 150
	DefaultMaxBitrateKbps   = 6000
	DefaultKeyframeInterval = 10 * time.Second

	// MaxDimension is the largest width or height VP8 can carry.
	MaxDimension = 16383
	// maxThreads bounds Config.Threads: libvpx's VP8 encoder gains nothing
	// past a thread per few macroblock rows and the agent must stay light.
	maxThreads = 8
	// maxAutoThreads is the most threads Threads=0 picks.
	maxAutoThreads = 2
)

// Config describes the stream an [Encoder] produces. Width and Height are
// required; zero values elsewhere take the defaults above.
type Config struct {
	// Width and Height are the frame size in pixels, 1 to [MaxDimension].
	// A change of screen size needs a new Encoder.
	Width, Height int
	// FPS is the nominal frame rate (default 30). Frame durations come from
	// the pts passed to Encode; FPS is used for the first frame, for the
	// key-frame distance and for the key-frame size cap.
	FPS int
	// BitrateKbps is the initial target bitrate (default 1200), clamped to
	// [MinBitrateKbps, MaxBitrateKbps].
	BitrateKbps int
	// MinBitrateKbps and MaxBitrateKbps bound SetBitrate (defaults 150 and
	// the larger of 6000 and BitrateKbps).
	MinBitrateKbps, MaxBitrateKbps int
	// KeyframeInterval is the longest time between key frames (default
	// 10 s); the viewer can ask for one sooner with a PLI.
	KeyframeInterval time.Duration
	// Threads is the number of encoder threads: 0 picks min(NumCPU, 2).
	Threads int
}

// CheckAndSetDefaults fills in the defaults and reports the first bad field,
// wrapping [ErrBadConfig].
func (c *Config) CheckAndSetDefaults() error {
	if c.Width <= 0 || c.Width > MaxDimension {
		return fmt.Errorf("%w: Width %d is not in 1..%d", ErrBadConfig, c.Width, MaxDimension)
	}
	if c.Height <= 0 || c.Height > MaxDimension {
		return fmt.Errorf("%w: Height %d is not in 1..%d", ErrBadConfig, c.Height, MaxDimension)
	}
	if c.FPS < 0 || c.FPS > 240 {
		return fmt.Errorf("%w: FPS %d is not in 1..240 (0 for %d)", ErrBadConfig, c.FPS, DefaultFPS)
	}
	c.FPS = cmp.Or(c.FPS, DefaultFPS)
	if c.BitrateKbps < 0 || c.MinBitrateKbps < 0 || c.MaxBitrateKbps < 0 {
		return fmt.Errorf("%w: negative bitrate (BitrateKbps %d, MinBitrateKbps %d, MaxBitrateKbps %d)",
			ErrBadConfig, c.BitrateKbps, c.MinBitrateKbps, c.MaxBitrateKbps)
	}
	c.BitrateKbps = cmp.Or(c.BitrateKbps, DefaultBitrateKbps)
	c.MinBitrateKbps = cmp.Or(c.MinBitrateKbps, min(DefaultMinBitrateKbps, c.BitrateKbps))
	c.MaxBitrateKbps = cmp.Or(c.MaxBitrateKbps, max(DefaultMaxBitrateKbps, c.BitrateKbps))
	if c.MinBitrateKbps > c.MaxBitrateKbps {
		return fmt.Errorf("%w: MinBitrateKbps %d is above MaxBitrateKbps %d", ErrBadConfig, c.MinBitrateKbps, c.MaxBitrateKbps)
	}
	c.BitrateKbps = min(max(c.BitrateKbps, c.MinBitrateKbps), c.MaxBitrateKbps)
	if c.KeyframeInterval < 0 {
		return fmt.Errorf("%w: KeyframeInterval %v is negative", ErrBadConfig, c.KeyframeInterval)
	}
	c.KeyframeInterval = cmp.Or(c.KeyframeInterval, DefaultKeyframeInterval)
	if c.Threads < 0 || c.Threads > maxThreads {
		return fmt.Errorf("%w: Threads %d is not in 1..%d (0 for auto)", ErrBadConfig, c.Threads, maxThreads)
	}
	c.Threads = cmp.Or(c.Threads, min(runtime.NumCPU(), maxAutoThreads))
	return nil
}

// keyframeDistance is the key-frame interval in frames at the nominal rate.
func (c *Config) keyframeDistance() int {
	return max(1, int(c.KeyframeInterval*time.Duration(c.FPS)/time.Second))
}

// Encoder compresses BGRA frames into a video stream. Its methods may be
// called from different goroutines (Encode from the capture loop,
// ForceKeyframe and SetBitrate from the RTCP reader); Encode calls are
// serialised.
type Encoder interface {
	// Encode takes one BGRA frame (stride bytes per row, at least
	// Width×4) captured at pts and returns the encoded frame, nil when
	// rate control dropped it, and whether it is a key frame. The frame is
	// the caller's to keep. pts should increase; a pts not after the
	// previous one is moved 1 ms past it. A frame that does not fit the
	// size wraps [ErrBadFrame]; after Close, Encode returns [ErrClosed].
	Encode(bgra []byte, stride int, pts time.Duration) (frame []byte, key bool, err error)
	// ForceKeyframe makes the next encoded frame a key frame (the viewer
	// sent a PLI). It stays pending across dropped frames.
	ForceKeyframe()
	// SetBitrate sets the target bitrate (the REMB or TWCC estimate),
	// clamped to [MinBitrateKbps, MaxBitrateKbps].
	SetBitrate(kbps int) error
	// Close frees the encoder. It is idempotent.
	Close() error
}

// checkFrame reports whether a BGRA buffer holds a w×h frame at stride.
func checkFrame(bgra []byte, stride, w, h int) error {
	if stride < w*4 {
		return fmt.Errorf("%w: stride %d is below width×4 = %d", ErrBadFrame, stride, w*4)
	}
	// (len-w*4)/(h-1) < stride is len < stride*(h-1)+w*4 without overflow.
	if len(bgra) < w*4 || (h > 1 && (len(bgra)-w*4)/(h-1) < stride) {
		return fmt.Errorf("%w: %d bytes is short for a %d×%d frame at stride %d", ErrBadFrame, len(bgra), w, h, stride)
	}
	return nil
}
