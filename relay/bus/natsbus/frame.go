package natsbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/relay/bus"
)

// Wire format. Every NATS message body starts with one kind byte; numbers
// are unsigned varints. Protobuf payloads are the deskside.v1 messages.
//
//	request   (caller → dev.<id>.req, reply = caller's stream inbox)
//	          'Q' version hb_ms missed timeout_ms win_msgs win_bytes RelayMessage
//	accept    (server → inbox, reply = exchange control subject)  'a' 0
//	data      'd' seq AgentMessage          seq counts from 1, no gaps
//	heartbeat 'h' seq                       seq = last data frame sent
//	end       'e' seq code message          seq = data frames sent in all
//	ack       (caller → control, reply = inbox) 'k' seq bytes   also the caller's keepalive
//	done      'o'                           recv returned true: stop
//	cancel    'c'                           the caller gave up (ctx ended, or unknown stream)
//	claim     (→ dev.<id>.claim, a NATS request)  'C' gen token
//	yielded   (answer to a claim)           'Y' gen token
//	announce  (→ dev.<id>.ann)              'A' gen token
const (
	kindRequest   byte = 'Q'
	kindAccept    byte = 'a'
	kindData      byte = 'd'
	kindHeartbeat byte = 'h'
	kindEnd       byte = 'e'
	kindAck       byte = 'k'
	kindDone      byte = 'o'
	kindCancel    byte = 'c'
	kindClaim     byte = 'C'
	kindYielded   byte = 'Y'
	kindAnnounce  byte = 'A'
)

// protocolVersion is carried in every request; a server refuses others
// with an explicit error so mixed-version relays fail loudly.
const protocolVersion = 1

// frameOverhead bounds the bytes a frame adds to its protobuf payload.
const frameOverhead = 1 + 5*binary.MaxVarintLen64 + 1

var errProtocol = errors.New("natsbus: malformed frame")

// reqHeader is what a caller tells the serving relay about an exchange.
type reqHeader struct {
	heartbeat time.Duration // both sides' keepalive period
	missed    int           // silent periods before the peer is presumed dead
	timeout   time.Duration // the caller's remaining deadline; 0 = none
	winMsgs   uint64        // flow-control window, in data frames
	winBytes  uint64        // and in payload bytes
}

func appendRequest(b []byte, h reqHeader, payload []byte) []byte {
	b = append(b, kindRequest)
	b = binary.AppendUvarint(b, protocolVersion)
	b = binary.AppendUvarint(b, uint64(h.heartbeat/time.Millisecond))
	b = binary.AppendUvarint(b, uint64(h.missed))
	b = binary.AppendUvarint(b, uint64(h.timeout/time.Millisecond))
	b = binary.AppendUvarint(b, h.winMsgs)
	b = binary.AppendUvarint(b, h.winBytes)
	return append(b, payload...)
}

func decodeRequest(b []byte) (reqHeader, []byte, error) {
	var h reqHeader
	if len(b) == 0 || b[0] != kindRequest {
		return h, nil, errProtocol
	}
	r := reader{b: b[1:]}
	if v := r.uvarint(); r.err == nil && v != protocolVersion {
		return h, nil, fmt.Errorf("natsbus: request uses bus protocol version %d, this relay speaks %d; run the same relay version everywhere", v, protocolVersion)
	}
	hb, missed, timeout := r.uvarint(), r.uvarint(), r.uvarint()
	h.winMsgs, h.winBytes = r.uvarint(), r.uvarint()
	if r.err != nil || hb == 0 || missed == 0 || h.winMsgs == 0 || h.winBytes == 0 ||
		hb > uint64(time.Hour/time.Millisecond) || missed > 1000 || timeout > uint64(1<<40) {
		return h, nil, errProtocol
	}
	h.heartbeat = time.Duration(hb) * time.Millisecond
	h.missed = int(missed)
	h.timeout = time.Duration(timeout) * time.Millisecond
	return h, r.b, nil
}

// appendFrame encodes a data, heartbeat, accept or end frame.
func appendFrame(b []byte, kind byte, seq uint64, payload []byte) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, seq)
	return append(b, payload...)
}

func decodeFrame(b []byte) (kind byte, seq uint64, payload []byte, err error) {
	if len(b) == 0 {
		return 0, 0, nil, errProtocol
	}
	r := reader{b: b[1:]}
	seq = r.uvarint()
	return b[0], seq, r.b, r.err
}

func appendAck(b []byte, seq, bytes uint64) []byte {
	b = append(b, kindAck)
	b = binary.AppendUvarint(b, seq)
	return binary.AppendUvarint(b, bytes)
}

func decodeAck(b []byte) (seq, bytes uint64, err error) {
	if len(b) == 0 || b[0] != kindAck {
		return 0, 0, errProtocol
	}
	r := reader{b: b[1:]}
	seq, bytes = r.uvarint(), r.uvarint()
	return seq, bytes, r.err
}

// claim, yielded and announce carry a route generation and the
// registration's token.
func appendRoute(kind byte, gen uint64, token string) []byte {
	b := []byte{kind}
	b = binary.AppendUvarint(b, gen)
	return append(b, token...)
}

func decodeRoute(b []byte) (kind byte, gen uint64, token string, err error) {
	if len(b) == 0 {
		return 0, 0, "", errProtocol
	}
	r := reader{b: b[1:]}
	gen = r.uvarint()
	if r.err != nil || len(r.b) == 0 {
		return 0, 0, "", errProtocol
	}
	return b[0], gen, string(r.b), nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errProtocol
		return 0
	}
	r.b = r.b[n:]
	return v
}

// End codes: how a handler's error crosses the bus. Sentinels keep
// errors.Is working on the caller's side, gRPC status errors keep their
// code and message.
const (
	endOK         byte = 0
	endAgentGone  byte = 1
	endNoRoute    byte = 2
	endCanceled   byte = 3
	endDeadline   byte = 4
	endStatus     byte = 5
	endTooLarge   byte = 6
	endOther      byte = 7
	endMoved      byte = 8 // the route moved to a newer stream: try again
	endBadRequest byte = 9
)

// errMoved tells Stream to send the request again: it reached a
// registration that a newer stream had just replaced.
var errMoved = errors.New("natsbus: route moved")

// encodeErr turns a handler's error into an end frame's payload.
func encodeErr(err error) []byte {
	code := endOther
	switch {
	case err == nil:
		return []byte{endOK}
	case errors.Is(err, errMoved):
		return []byte{endMoved}
	case errors.Is(err, bus.ErrAgentGone):
		code = endAgentGone
	case errors.Is(err, bus.ErrNoRoute):
		code = endNoRoute
	case errors.Is(err, ErrTooLarge):
		code = endTooLarge
	case errors.Is(err, errBadRequest):
		code = endBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		code = endDeadline
	case errors.Is(err, context.Canceled):
		code = endCanceled
	default:
		if st, ok := status.FromError(err); ok {
			if b, merr := proto.Marshal(st.Proto()); merr == nil {
				return append([]byte{endStatus}, b...)
			}
		}
	}
	return append([]byte{code}, err.Error()...)
}

// decodeErr is encodeErr's inverse.
func decodeErr(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty end frame", bus.ErrAgentGone)
	}
	msg := string(b[1:])
	var sentinel error
	switch b[0] {
	case endOK:
		return nil
	case endMoved:
		return errMoved
	case endStatus:
		p := new(spb.Status)
		if err := proto.Unmarshal(b[1:], p); err != nil {
			return &RemoteError{Msg: "natsbus: unreadable status from the serving relay: " + err.Error()}
		}
		return status.ErrorProto(p)
	case endAgentGone:
		sentinel = bus.ErrAgentGone
	case endNoRoute:
		sentinel = bus.ErrNoRoute
	case endCanceled:
		sentinel = context.Canceled
	case endDeadline:
		sentinel = context.DeadlineExceeded
	case endTooLarge:
		sentinel = ErrTooLarge
	case endBadRequest:
		sentinel = errBadRequest
	}
	if sentinel != nil && msg == sentinel.Error() {
		return sentinel
	}
	return &RemoteError{Msg: msg, Err: sentinel}
}

// RemoteError is an error the serving relay's handler returned, carried
// across the bus. Err is the well-known error it wrapped (bus.ErrAgentGone,
// bus.ErrNoRoute, context errors, ErrTooLarge), if any, so errors.Is keeps
// working; Msg is the original text.
type RemoteError struct {
	Msg string
	Err error
}

func (e *RemoteError) Error() string { return e.Msg }
func (e *RemoteError) Unwrap() error { return e.Err }
