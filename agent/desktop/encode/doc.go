// Package encode turns captured desktop frames into a real-time VP8 video
// stream for the remote-desktop feature. Its output feeds a pion/webrtc
// video track: each call to [Encoder.Encode] returns one encoded frame that
// goes out as a media.Sample{Data: frame, Duration: …}.
//
// # Build
//
// The encoder is libvpx through cgo. It is compiled on Linux when cgo is on
// (the default for a native build) unless the novpx build tag is given; it
// needs the libvpx development files and pkg-config (Debian: libvpx-dev,
// pkg-config). Every other build (cross builds for Windows and macOS,
// CGO_ENABLED=0, -tags novpx) compiles a stub whose [NewVP8] returns
// [ErrNotCompiled]; [Available] tells which one a binary has.
//
// # Tuning
//
// The settings are those of a screen-sharing sender: one-pass CBR with a
// 1 s buffer and no look-ahead (every Encode returns the frame it was given,
// or nil when rate control dropped it), error-resilient mode so a lost
// packet does not break later frames for long, libvpx's screen-content mode
// and a static-block threshold so unchanged parts of the screen cost almost
// nothing, a fixed real-time speed (cpu-used -10), no frame dropping by
// buffer level (it collapses a scrolling page to a frame or two a second)
// but WebRTC's screen-sharing rule of dropping a frame that overshoots badly
// and coding the next one coarser, and key frames only every
// [Config.KeyframeInterval] or when the viewer asks for one
// ([Encoder.ForceKeyframe] on a PLI), capped at 9 frames' worth of bits as
// far as the quantizer range allows.
//
// After a key frame of an unchanging screen libvpx refines the picture for a
// few seconds (a 1080p page of text: about 100 KB for the key frame, then
// 2-15 KB a frame), then sends frames of a few hundred bytes.
//
// Frames are BGRA (the usual capture format of X11, Windows DXGI and macOS);
// the conversion to I420 (BT.601, limited range, 2×2 chroma average) is done
// in C into a buffer allocated once per encoder. Odd sizes are encoded as
// they are (VP8 carries any size up to 16383×16383; the last chroma sample
// covers the odd edge), so the viewer sees exactly the captured pixels.
//
// # Memory
//
// A 1080p encoder holds about 28 MB once it has encoded a few frames:
// reference, look-ahead and post-processing frames and the I420 image,
// plus the part of libvpx's 48 MiB token buffer that frames have used.
// libvpx zero-fills that buffer when the encoder is created, which makes
// all of it resident; [NewVP8] hands its untouched pages back to the
// kernel at once, and fixes glibc's mmap threshold so that libvpx's large
// blocks stay mappings of their own that Close returns (see vpxmem.go).
// Creating one still makes about 55 MB resident for a few milliseconds.
package encode
