package session

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// playoutDelayURI is the RTP header extension by which a sender tells the
// receiver how long it may hold frames before showing them
// (webrtc.org's playout-delay). A browser otherwise keeps a jitter buffer
// sized by how unevenly frames arrive, and a screen's frames arrive very
// unevenly: a full-screen change is a frame many times the size of a
// cursor blink, so the buffer grows to smooth playback that nobody
// watching a remote desktop wants smoothed. With a minimum and maximum of
// zero, Chromium shows each frame as soon as it is decoded.
const playoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

// playoutDelayFactory makes the interceptor that puts a zero playout
// delay on every outgoing video packet, once the viewer's answer accepted
// the extension.
type playoutDelayFactory struct{}

func (playoutDelayFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &playoutDelay{}, nil
}

type playoutDelay struct{ interceptor.NoOp }

// zeroPlayoutDelay is the extension's payload: minimum and maximum 0.
var zeroPlayoutDelay = func() []byte {
	b, err := rtp.PlayoutDelayExtension{}.Marshal()
	if err != nil {
		panic(err) // a fixed, valid value
	}
	return b
}()

func (*playoutDelay) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == playoutDelayURI {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		return writer // the viewer did not take it
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if err := h.SetExtension(id, zeroPlayoutDelay); err != nil {
			return 0, err
		}
		return writer.Write(h, payload, a)
	})
}
