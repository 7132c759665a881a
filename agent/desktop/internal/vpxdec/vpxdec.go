//go:build linux && cgo && !novpx

package vpxdec

/*
#cgo pkg-config: vpx
#include <stdlib.h>
#include <vpx/vp8dx.h>
#include <vpx/vpx_decoder.h>

static vpx_codec_ctx_t *dsdec_new(vpx_codec_err_t *err) {
	vpx_codec_ctx_t *c = calloc(1, sizeof *c);
	if (!c) return NULL;
	*err = vpx_codec_dec_init(c, vpx_codec_vp8_dx(), NULL, 0);
	return c;
}

static void dsdec_free(vpx_codec_ctx_t *c, int inited) {
	if (inited) vpx_codec_destroy(c);
	free(c);
}

static vpx_image_t *dsdec_decode(vpx_codec_ctx_t *c, const uint8_t *data, unsigned int n, vpx_codec_err_t *err) {
	*err = vpx_codec_decode(c, data, n, NULL, 0);
	if (*err) return NULL;
	vpx_codec_iter_t it = NULL;
	return vpx_codec_get_frame(c, &it);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Decoder is a VP8 decoder. It is not safe for concurrent use.
type Decoder struct {
	c *C.vpx_codec_ctx_t
}

// New returns a VP8 decoder.
func New() (*Decoder, error) {
	var cerr C.vpx_codec_err_t
	c := C.dsdec_new(&cerr)
	if c == nil {
		return nil, errors.New("vpxdec: out of memory")
	}
	if cerr != C.VPX_CODEC_OK {
		C.dsdec_free(c, 0)
		return nil, fmt.Errorf("vpxdec: init: %s", C.GoString(C.vpx_codec_err_to_string(cerr)))
	}
	return &Decoder{c: c}, nil
}

// Decode decodes one frame; it returns nil, nil when the decoder has no
// picture to show for it.
func (d *Decoder) Decode(frame []byte) (*Frame, error) {
	if d.c == nil {
		return nil, errors.New("vpxdec: decoder closed")
	}
	if len(frame) == 0 {
		return nil, errors.New("vpxdec: empty frame")
	}
	var cerr C.vpx_codec_err_t
	img := C.dsdec_decode(d.c, (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(frame))), C.uint(len(frame)), &cerr)
	if cerr != C.VPX_CODEC_OK {
		detail := C.vpx_codec_error_detail(d.c)
		msg := C.GoString(C.vpx_codec_err_to_string(cerr))
		if detail != nil {
			msg += " (" + C.GoString(detail) + ")"
		}
		return nil, fmt.Errorf("vpxdec: decode: %s", msg)
	}
	if img == nil {
		return nil, nil
	}
	if img.fmt != C.VPX_IMG_FMT_I420 {
		return nil, fmt.Errorf("vpxdec: decoded format %d is not I420", img.fmt)
	}
	w, h := int(img.d_w), int(img.d_h)
	ch := (h + 1) / 2
	ys, us, vs := int(img.stride[0]), int(img.stride[1]), int(img.stride[2])
	if us != vs {
		return nil, fmt.Errorf("vpxdec: U stride %d differs from V stride %d", us, vs)
	}
	return &Frame{
		Width: w, Height: h,
		Y:       C.GoBytes(unsafe.Pointer(img.planes[0]), C.int(ys*h)),
		U:       C.GoBytes(unsafe.Pointer(img.planes[1]), C.int(us*ch)),
		V:       C.GoBytes(unsafe.Pointer(img.planes[2]), C.int(vs*ch)),
		YStride: ys, UVStride: us,
	}, nil
}

// Close frees the decoder; it is idempotent.
func (d *Decoder) Close() error {
	if d.c != nil {
		C.dsdec_free(d.c, 1)
		d.c = nil
	}
	return nil
}
