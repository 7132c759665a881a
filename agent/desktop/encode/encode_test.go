package encode

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestConfigCheckAndSetDefaults(t *testing.T) {
	autoThreads := min(runtime.NumCPU(), 2)
	tests := []struct {
		name    string
		in      Config
		want    Config
		wantErr string // substring; "" for success
	}{
		{
			name: "defaults",
			in:   Config{Width: 1920, Height: 1080},
			want: Config{Width: 1920, Height: 1080, FPS: 30, BitrateKbps: 1200, MinBitrateKbps: 150,
				MaxBitrateKbps: 6000, KeyframeInterval: 10 * time.Second, Threads: autoThreads},
		},
		{
			name: "bitrate above default max raises max",
			in:   Config{Width: 3840, Height: 2160, BitrateKbps: 8000, Threads: 1},
			want: Config{Width: 3840, Height: 2160, FPS: 30, BitrateKbps: 8000, MinBitrateKbps: 150,
				MaxBitrateKbps: 8000, KeyframeInterval: 10 * time.Second, Threads: 1},
		},
		{
			name: "bitrate clamped into range",
			in:   Config{Width: 1, Height: 1, BitrateKbps: 50, MinBitrateKbps: 100, MaxBitrateKbps: 200, FPS: 15, KeyframeInterval: time.Second, Threads: 2},
			want: Config{Width: 1, Height: 1, FPS: 15, BitrateKbps: 100, MinBitrateKbps: 100,
				MaxBitrateKbps: 200, KeyframeInterval: time.Second, Threads: 2},
		},
		{name: "no width", in: Config{Height: 10}, wantErr: "Width"},
		{name: "too high", in: Config{Width: 10, Height: 16384}, wantErr: "Height"},
		{name: "negative fps", in: Config{Width: 10, Height: 10, FPS: -1}, wantErr: "FPS"},
		{name: "negative bitrate", in: Config{Width: 10, Height: 10, MaxBitrateKbps: -1}, wantErr: "negative bitrate"},
		{name: "min above max", in: Config{Width: 10, Height: 10, MinBitrateKbps: 900, MaxBitrateKbps: 800}, wantErr: "MinBitrateKbps"},
		{name: "negative keyframe interval", in: Config{Width: 10, Height: 10, KeyframeInterval: -time.Second}, wantErr: "KeyframeInterval"},
		{name: "too many threads", in: Config{Width: 10, Height: 10, Threads: 99}, wantErr: "Threads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			err := got.CheckAndSetDefaults()
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrBadConfig naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestKeyframeDistance(t *testing.T) {
	c := Config{Width: 2, Height: 2}
	if err := c.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	if got := c.keyframeDistance(); got != 300 {
		t.Errorf("10 s at 30 fps = %d frames, want 300", got)
	}
	c.KeyframeInterval = time.Millisecond
	if got := c.keyframeDistance(); got != 1 {
		t.Errorf("1 ms = %d frames, want 1", got)
	}
}

func TestCheckFrame(t *testing.T) {
	const w, h = 5, 3
	tests := []struct {
		name   string
		len    int
		stride int
		ok     bool
	}{
		{"tight", w * 4 * h, w * 4, true},
		{"padded stride, short last row", 32*(h-1) + w*4, 32, true},
		{"stride below width", w * 4 * h, w*4 - 1, false},
		{"zero stride", w * 4 * h, 0, false},
		{"negative stride", w * 4 * h, -20, false},
		{"one byte short", w*4*h - 1, w * 4, false},
		{"empty", 0, w * 4, false},
		{"huge stride does not overflow", w * 4 * h, int(^uint(0) >> 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkFrame(make([]byte, tt.len), tt.stride, w, h)
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok && !errors.Is(err, ErrBadFrame) {
				t.Fatalf("err = %v, want ErrBadFrame", err)
			}
		})
	}
}
