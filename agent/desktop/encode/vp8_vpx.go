//go:build linux && cgo && !novpx

package encode

/*
#cgo pkg-config: vpx
#cgo CFLAGS: -O3
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <vpx/vp8cx.h>
#include <vpx/vpx_encoder.h>

typedef struct {
	int width, height, fps, bitrate_kbps, threads, kf_max_dist;
	int min_q, max_q, cpu_used, static_thresh, screen_mode, drop_thresh, profile;
} dsvp8_params;

// dsvp8 is one encoder: all of it lives in C memory.
typedef struct {
	vpx_codec_ctx_t codec;
	vpx_codec_enc_cfg_t cfg;
	vpx_image_t img;   // I420, allocated once
	int img_alloc;
	int codec_init;
	uint8_t *out;      // the packets of the last frame, concatenated
	size_t out_len, out_cap;
	int key;
} dsvp8;

static const char *dsvp8_error(dsvp8 *e) {
	const char *d = vpx_codec_error_detail(&e->codec);
	return d ? d : vpx_codec_error(&e->codec);
}

static void dsvp8_free(dsvp8 *e) {
	if (!e) return;
	if (e->codec_init) vpx_codec_destroy(&e->codec);
	if (e->img_alloc) vpx_img_free(&e->img);
	free(e->out);
	free(e);
}

// dsvp8_new returns NULL only when out of memory; otherwise *err is the
// result of vpx_codec_enc_init and the controls (see dsvp8_error).
static dsvp8 *dsvp8_new(const dsvp8_params *p, vpx_codec_err_t *err, const char **what) {
	dsvp8 *e = calloc(1, sizeof *e);
	if (!e) return NULL;
	*what = "vpx_codec_enc_config_default";
	*err = vpx_codec_enc_config_default(vpx_codec_vp8_cx(), &e->cfg, 0);
	if (*err) return e;

	vpx_codec_enc_cfg_t *c = &e->cfg;
	c->g_w = p->width;
	c->g_h = p->height;
	c->g_threads = p->threads;
	c->g_profile = p->profile;
	c->g_timebase.num = 1;        // pts in milliseconds
	c->g_timebase.den = 1000;
	c->g_pass = VPX_RC_ONE_PASS;
	c->g_lag_in_frames = 0;       // no look-ahead: a frame in, a frame out
	c->g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
	c->rc_end_usage = VPX_CBR;
	c->rc_target_bitrate = p->bitrate_kbps;
	c->rc_min_quantizer = p->min_q;
	c->rc_max_quantizer = p->max_q;
	c->rc_undershoot_pct = 100;
	c->rc_overshoot_pct = 15;
	c->rc_buf_sz = 1000;
	c->rc_buf_initial_sz = 500;
	c->rc_buf_optimal_sz = 600;
	c->rc_dropframe_thresh = p->drop_thresh;
	c->rc_resize_allowed = 0;
	c->kf_mode = VPX_KF_AUTO;
	c->kf_min_dist = 0;
	c->kf_max_dist = p->kf_max_dist;

	*what = "vpx_img_alloc";
	if (!vpx_img_alloc(&e->img, VPX_IMG_FMT_I420, p->width, p->height, 32)) {
		*err = VPX_CODEC_MEM_ERROR;
		return e;
	}
	e->img_alloc = 1;

	*what = "vpx_codec_enc_init";
	*err = vpx_codec_enc_init(&e->codec, vpx_codec_vp8_cx(), c, 0);
	if (*err) return e;
	e->codec_init = 1;

	// Token partitions let the decoder (and the encoder's packing) use
	// threads: one per thread, log2.
	int parts = p->threads >= 8 ? VP8_EIGHT_TOKENPARTITION
	          : p->threads >= 4 ? VP8_FOUR_TOKENPARTITION
	          : p->threads >= 2 ? VP8_TWO_TOKENPARTITION : VP8_ONE_TOKENPARTITION;
	// Cap key frames at half the optimal buffer, in percent of a frame's
	// share of the bitrate (what WebRTC does), so a PLI does not flood the
	// link: 600 ms * 0.5 * 30 fps / 10 = 900 %.
	unsigned int intra_pct = (unsigned int)(c->rc_buf_optimal_sz * 0.5 * p->fps / 10);
	if (intra_pct < 300) intra_pct = 300;

	*what = "VP8E_SET_CPUUSED";
	if ((*err = vpx_codec_control(&e->codec, VP8E_SET_CPUUSED, p->cpu_used))) return e;
	*what = "VP8E_SET_NOISE_SENSITIVITY";
	if ((*err = vpx_codec_control(&e->codec, VP8E_SET_NOISE_SENSITIVITY, 0u))) return e;
	*what = "VP8E_SET_STATIC_THRESHOLD";
	if ((*err = vpx_codec_control(&e->codec, VP8E_SET_STATIC_THRESHOLD, (unsigned int)p->static_thresh))) return e;
	*what = "VP8E_SET_TOKEN_PARTITIONS";
	if ((*err = vpx_codec_control(&e->codec, VP8E_SET_TOKEN_PARTITIONS, parts))) return e;
	*what = "VP8E_SET_MAX_INTRA_BITRATE_PCT";
	if ((*err = vpx_codec_control(&e->codec, VP8E_SET_MAX_INTRA_BITRATE_PCT, intra_pct))) return e;
#ifdef VPX_CTRL_VP8E_SET_SCREEN_CONTENT_MODE
	*what = "VP8E_SET_SCREEN_CONTENT_MODE";
	if ((*err = vpx_codec_control(&e->codec, VP8E_SET_SCREEN_CONTENT_MODE, (unsigned int)p->screen_mode))) return e;
#endif
	*what = "";
	return e;
}

// The colour conversion: integer BT.601 limited-range coefficients, each
// chroma sample from the average of a 2x2 block (the edge pixel repeated
// for odd sizes). The results need no clamping: Y is in 16..235 and U, V in
// 16..240 for any input. The loops are written for the vectorizer (about
// 1.5 ms for 1080p with SSE2, 1 ms with AVX2, against 3.3 ms for a
// straightforward 2x2 loop).
static inline void bgra_y_row(const uint8_t *restrict s, uint8_t *restrict d, int w) {
	for (int x = 0; x < w; x++) {
		unsigned b = s[4 * x], g = s[4 * x + 1], r = s[4 * x + 2];
		d[x] = (uint8_t)(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
	}
}

// bgra_uv_row averages rows a and b, cw pixel pairs (2*cw pixels).
static inline void bgra_uv_row(const uint8_t *restrict a, const uint8_t *restrict b,
		uint8_t *restrict u, uint8_t *restrict v, int cw) {
	for (int x = 0; x < cw; x++) {
		int bb = a[8 * x] + a[8 * x + 4] + b[8 * x] + b[8 * x + 4];
		int g = a[8 * x + 1] + a[8 * x + 5] + b[8 * x + 1] + b[8 * x + 5];
		int r = a[8 * x + 2] + a[8 * x + 6] + b[8 * x + 2] + b[8 * x + 6];
		u[x] = (uint8_t)(((-38 * r - 74 * g + 112 * bb + 512) >> 10) + 128);
		v[x] = (uint8_t)(((112 * r - 94 * g - 18 * bb + 512) >> 10) + 128);
	}
}

// An AVX2 clone, picked at load time where the CPU has it (GCC with glibc
// ifunc on amd64; elsewhere the portable build, which -O3 vectorizes with
// SSE2 or NEON).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
#define DSVP8_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DSVP8_CLONES
#endif

DSVP8_CLONES
static void bgra_to_i420(const uint8_t *src, int sstride, int w, int h, vpx_image_t *img) {
	uint8_t *Y = img->planes[VPX_PLANE_Y], *U = img->planes[VPX_PLANE_U], *V = img->planes[VPX_PLANE_V];
	const int ys = img->stride[VPX_PLANE_Y], us = img->stride[VPX_PLANE_U], vs = img->stride[VPX_PLANE_V];
	const int cw = w >> 1;
	for (int y = 0; y < h; y += 2) {
		const uint8_t *s0 = src + (size_t)y * sstride;
		const uint8_t *s1 = y + 1 < h ? s0 + sstride : s0;
		uint8_t *u = U + (size_t)(y >> 1) * us, *v = V + (size_t)(y >> 1) * vs;
		bgra_y_row(s0, Y + (size_t)y * ys, w);
		if (y + 1 < h) bgra_y_row(s1, Y + (size_t)(y + 1) * ys, w);
		bgra_uv_row(s0, s1, u, v, cw);
		if (w & 1) { // odd width: the last column pairs with itself
			const uint8_t *a = s0 + 4 * (w - 1), *b = s1 + 4 * (w - 1);
			int bb = 2 * (a[0] + b[0]), g = 2 * (a[1] + b[1]), r = 2 * (a[2] + b[2]);
			u[cw] = (uint8_t)(((-38 * r - 74 * g + 112 * bb + 512) >> 10) + 128);
			v[cw] = (uint8_t)(((112 * r - 94 * g - 18 * bb + 512) >> 10) + 128);
		}
	}
}

// dsvp8_encode converts and encodes one frame; on success e->out holds the
// frame's packets (out_len 0 when it was dropped) and e->key whether it is
// a key frame. src is read only during the call.
static vpx_codec_err_t dsvp8_encode(dsvp8 *e, const uint8_t *src, int sstride,
		int64_t pts, unsigned long duration, int force_kf) {
	bgra_to_i420(src, sstride, (int)e->cfg.g_w, (int)e->cfg.g_h, &e->img);
	e->out_len = 0;
	e->key = 0;
	vpx_codec_err_t err = vpx_codec_encode(&e->codec, &e->img, pts, duration,
		force_kf ? VPX_EFLAG_FORCE_KF : 0, VPX_DL_REALTIME);
	if (err) return err;
	vpx_codec_iter_t it = NULL;
	const vpx_codec_cx_pkt_t *pkt;
	while ((pkt = vpx_codec_get_cx_data(&e->codec, &it)) != NULL) {
		if (pkt->kind != VPX_CODEC_CX_FRAME_PKT) continue;
		size_t n = pkt->data.frame.sz;
		if (e->out_len + n > e->out_cap) {
			size_t cap = 2 * (e->out_len + n);
			uint8_t *p = realloc(e->out, cap);
			if (!p) return VPX_CODEC_MEM_ERROR;
			e->out = p;
			e->out_cap = cap;
		}
		memcpy(e->out + e->out_len, pkt->data.frame.buf, n);
		e->out_len += n;
		if (pkt->data.frame.flags & VPX_FRAME_IS_KEY) e->key = 1;
	}
	return VPX_CODEC_OK;
}

static int dsvp8_last_q(dsvp8 *e) {
	int q = -1;
	if (vpx_codec_control(&e->codec, VP8E_GET_LAST_QUANTIZER_64, &q)) return -1;
	return q;
}

static vpx_codec_err_t dsvp8_set_bitrate(dsvp8 *e, unsigned int kbps) {
	e->cfg.rc_target_bitrate = kbps;
	return vpx_codec_enc_config_set(&e->codec, &e->cfg);
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Available reports whether this build has the libvpx encoder.
const Available = true

// tuning holds the libvpx settings that are not part of Config; tests and
// benchmarks vary them.
type tuning struct {
	cpuUsed      int  // VP8E_SET_CPUUSED: negative = fixed speed -cpuUsed (0..16)
	minQ, maxQ   int  // rc_min_quantizer, rc_max_quantizer (0..63)
	staticThresh int  // VP8E_SET_STATIC_THRESHOLD: prediction SSE under which a macroblock is skipped
	screenMode   int  // VP8E_SET_SCREEN_CONTENT_MODE: 0 off, 1 on, 2 on + drop on overshoot
	dropThresh   int  // rc_dropframe_thresh: buffer fullness (%) under which frames are dropped; 0 never
	profile      int  // g_profile: 0 normal loop filter and six-tap filter; 1-3 simpler
	keepPages    bool // do not reclaim the encoder's zero pages after init (tests)
}

// defaultTuning is what NewVP8 uses. Measured on 1080p scrolling text at
// 1500 kbps (BenchmarkEncode1080pTuning, 2 cores):
//   - cpu-used -10: -8 to -16 cost about the same CPU (9.5-11 ms a frame on
//     one thread, 6.5-8 ms wall on two; -6 costs 16 ms), and -10 kept
//     closest to the target bitrate at the same PSNR (within 3 %; -12
//     overshoots by 10-20 %, -16 by 35-50 %).
//   - q 4..56: 56 rather than 63 keeps text legible when the link is poor.
//   - static threshold 1000: an RMS error of about 2 per pixel is invisible,
//     and skipping those blocks saves CPU on mostly unchanged screens.
//   - screen-content mode 1: cyclic refresh tuned for text. Mode 2 (what
//     WebRTC uses for screen sharing) also drops a frame that overshoots;
//     at the 1200 kbps start a screen that changes every frame then
//     decoded at 28.8-29.4 fps instead of 30, while mode 1 keeps 30 and
//     scrolling text at 1.17 Mbit/s (mode 2: 1.06).
//   - no buffer-level frame dropping: with it, scrolling a page fell to one
//     frame in seven, each 110 KB, because the motion search cannot bridge
//     the distance scrolled between the frames it keeps.
//   - profile 0: profile 1 saves ~10 % CPU at the same PSNR, but profile 0
//     is what every VP8 decoder (hardware ones included) is tested with.
var defaultTuning = tuning{
	cpuUsed:      -10,
	minQ:         4,
	maxQ:         56,
	staticThresh: 1000,
	screenMode:   1,
	dropThresh:   0,
	profile:      0,
}

var _ Encoder = (*vp8Encoder)(nil)

type vp8Encoder struct {
	cfg      Config
	forceKey atomic.Bool

	mu      sync.Mutex
	c       *C.dsvp8 // nil once closed
	cleanup runtime.Cleanup
	bitrate int
	lastPTS int64 // ms
	started bool
	// reclaimed is how many resident bytes reclaim gave back after init.
	reclaimed int
}

// NewVP8 returns a real-time VP8 encoder for cfg (see [Config] for the
// defaults). It wraps [ErrBadConfig] for a bad cfg; in a build without
// libvpx it returns [ErrNotCompiled].
func NewVP8(cfg Config) (Encoder, error) {
	return newVP8(cfg, defaultTuning)
}

func newVP8(cfg Config, t tuning) (*vp8Encoder, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	p := C.dsvp8_params{
		width:         C.int(cfg.Width),
		height:        C.int(cfg.Height),
		fps:           C.int(cfg.FPS),
		bitrate_kbps:  C.int(cfg.BitrateKbps),
		threads:       C.int(cfg.Threads),
		kf_max_dist:   C.int(cfg.keyframeDistance()),
		min_q:         C.int(t.minQ),
		max_q:         C.int(t.maxQ),
		cpu_used:      C.int(t.cpuUsed),
		static_thresh: C.int(t.staticThresh),
		screen_mode:   C.int(t.screenMode),
		drop_thresh:   C.int(t.dropThresh),
		profile:       C.int(t.profile),
	}
	var (
		cerr C.vpx_codec_err_t
		what *C.char
	)
	setMallocOptions()
	c := C.dsvp8_new(&p, &cerr, &what)
	if c == nil {
		return nil, fmt.Errorf("encode: vp8: out of memory")
	}
	if cerr != C.VPX_CODEC_OK {
		err := fmt.Errorf("encode: vp8: %s: %s (%s)", C.GoString(what),
			C.GoString(C.vpx_codec_err_to_string(cerr)), C.GoString(C.dsvp8_error(c)))
		C.dsvp8_free(c)
		return nil, err
	}
	e := &vp8Encoder{cfg: cfg, c: c, bitrate: cfg.BitrateKbps}
	if !t.keepPages {
		// Most of what libvpx just allocated is a zeroed token buffer that
		// a frame uses a little of (see vpxmem.go).
		e.reclaimed = reclaim(&c.codec)
	}
	// Free the C side of an encoder that was dropped without Close.
	e.cleanup = runtime.AddCleanup(e, func(c *C.dsvp8) { C.dsvp8_free(c) }, c)
	return e, nil
}

func (e *vp8Encoder) Encode(bgra []byte, stride int, pts time.Duration) ([]byte, bool, error) {
	if err := checkFrame(bgra, stride, e.cfg.Width, e.cfg.Height); err != nil {
		return nil, false, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		return nil, false, ErrClosed
	}
	ms := pts.Milliseconds()
	dur := int64(1000 / e.cfg.FPS)
	if e.started {
		if ms <= e.lastPTS {
			ms = e.lastPTS + 1
		}
		// A long pause (a static screen sends no frames) counts as at
		// most a second: the rate-control buffer holds no more.
		dur = min(ms-e.lastPTS, 1000)
	}
	e.lastPTS, e.started = ms, true

	force := e.forceKey.Swap(false)
	// Passing a pointer into a Go []byte for the duration of a call is
	// allowed (it holds no Go pointers); C does not keep it.
	cerr := C.dsvp8_encode(e.c, (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(bgra))), C.int(stride),
		C.int64_t(ms), C.ulong(dur), boolInt(force))
	if cerr != C.VPX_CODEC_OK {
		if force {
			e.forceKey.Store(true)
		}
		return nil, false, fmt.Errorf("encode: vp8: vpx_codec_encode: %s (%s)",
			C.GoString(C.vpx_codec_err_to_string(cerr)), C.GoString(C.dsvp8_error(e.c)))
	}
	if e.c.out_len == 0 {
		if force { // the forced key frame was dropped: force the next one
			e.forceKey.Store(true)
		}
		return nil, false, nil
	}
	frame := C.GoBytes(unsafe.Pointer(e.c.out), C.int(e.c.out_len))
	return frame, e.c.key != 0, nil
}

func (e *vp8Encoder) ForceKeyframe() { e.forceKey.Store(true) }

func (e *vp8Encoder) SetBitrate(kbps int) error {
	kbps = min(max(kbps, e.cfg.MinBitrateKbps), e.cfg.MaxBitrateKbps)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		return ErrClosed
	}
	if kbps == e.bitrate {
		return nil
	}
	if cerr := C.dsvp8_set_bitrate(e.c, C.uint(kbps)); cerr != C.VPX_CODEC_OK {
		return fmt.Errorf("encode: vp8: set bitrate %d kbps: %s (%s)", kbps,
			C.GoString(C.vpx_codec_err_to_string(cerr)), C.GoString(C.dsvp8_error(e.c)))
	}
	e.bitrate = kbps
	return nil
}

// Bitrate returns the current target in kbps (after clamping).
func (e *vp8Encoder) Bitrate() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bitrate
}

func (e *vp8Encoder) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		return nil
	}
	e.cleanup.Stop()
	C.dsvp8_free(e.c)
	e.c = nil
	return nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// lastQuantizer returns the quantizer (0..63) of the last encoded frame,
// or -1 (for benchmarks).
func (e *vp8Encoder) lastQuantizer() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		return -1
	}
	return int(C.dsvp8_last_q(e.c))
}

// convert runs the colour conversion alone (for BenchmarkBGRAToI420).
func (e *vp8Encoder) convert(bgra []byte, stride int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	C.bgra_to_i420((*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(bgra))), C.int(stride),
		C.int(e.cfg.Width), C.int(e.cfg.Height), &e.c.img)
}
