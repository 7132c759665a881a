package natsbus

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// TestSeedCorpus checks that testdata/fuzz/FuzzFrame holds every seed, so
// the committed corpus keeps up with the wire format; with
// DESKSIDE_WRITE_CORPUS=1 it writes them.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFrame")
	for name, b := range seedFrames() {
		file := filepath.Join(dir, name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if os.Getenv("DESKSIDE_WRITE_CORPUS") != "" {
			if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(file)
		if err != nil || string(got) != want {
			t.Errorf("seed %s is missing or stale in %s (%v): run DESKSIDE_WRITE_CORPUS=1 go test -run TestSeedCorpus ./relay/bus/natsbus", name, dir, err)
		}
	}
}

// FuzzFrame feeds a NATS message body to every decoder that reads one: the
// bytes come from the network (any client of the NATS server can publish),
// so no input may panic, and whatever a decoder accepts must survive being
// encoded again unchanged. Its seeds are in testdata/fuzz/FuzzFrame (see
// seedFrames); `go test -fuzz FuzzFrame ./relay/bus/natsbus` searches further
// (no NATS server needed).
func FuzzFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		// A request, as the serving relay reads it.
		if h, payload, err := decodeRequest(b); err == nil {
			h2, payload2, err := decodeRequest(appendRequest(nil, h, payload))
			if err != nil || h2 != h || !bytes.Equal(payload2, payload) {
				t.Fatalf("request %+v %x re-encoded decodes as %+v %x, %v", h, payload, h2, payload2, err)
			}
			if h.heartbeat <= 0 || h.missed <= 0 || h.timeout < 0 || h.winMsgs == 0 || h.winBytes == 0 {
				t.Fatalf("request header out of range accepted: %+v", h)
			}
			_ = proto.Unmarshal(payload, new(desksidev1.RelayMessage))
		}
		// A reply frame, as the caller reads it.
		if kind, seq, payload, err := decodeFrame(b); err == nil {
			k2, s2, p2, err := decodeFrame(appendFrame(nil, kind, seq, payload))
			if err != nil || k2 != kind || s2 != seq || !bytes.Equal(p2, payload) {
				t.Fatalf("frame %c %d %x re-encoded decodes as %c %d %x, %v", kind, seq, payload, k2, s2, p2, err)
			}
			switch kind {
			case kindEnd:
				checkEndPayload(t, payload)
			case kindData:
				_ = proto.Unmarshal(payload, new(desksidev1.AgentMessage))
			}
		}
		// An ack, as the serving relay reads it.
		if seq, n, err := decodeAck(b); err == nil {
			s2, n2, err := decodeAck(appendAck(nil, seq, n))
			if err != nil || s2 != seq || n2 != n {
				t.Fatalf("ack %d %d re-encoded decodes as %d %d, %v", seq, n, s2, n2, err)
			}
		}
		// A claim, yielded or announce message.
		if kind, gen, token, err := decodeRoute(b); err == nil {
			if token == "" {
				t.Fatal("route message with an empty token accepted")
			}
			k2, g2, t2, err := decodeRoute(appendRoute(kind, gen, token))
			if err != nil || k2 != kind || g2 != gen || t2 != token {
				t.Fatalf("route %c %d %q re-encoded decodes as %c %d %q, %v", kind, gen, token, k2, g2, t2, err)
			}
		}
		// An end frame's payload, as the caller reads it.
		checkEndPayload(t, b)
	})
}

// checkEndPayload decodes an end frame's payload: an error the serving
// relay sent. A well-known error must come back as itself.
func checkEndPayload(t *testing.T, b []byte) {
	err := decodeErr(b)
	if err == nil || errors.Is(err, errMoved) {
		return
	}
	if err.Error() == "" && len(b) > 1 && b[0] != endStatus {
		t.Fatalf("end payload %x decodes to an error without text", b)
	}
	_ = decodeErr(encodeErr(err))
}

// seedFrames are the seeds, by name: a valid frame of each kind, truncated
// ones, an oversized varint and garbage. testdata/fuzz/FuzzFrame holds the
// same inputs, written by TestSeedCorpus with DESKSIDE_WRITE_CORPUS=1.
func seedFrames() map[string][]byte {
	h := reqHeader{heartbeat: 2 * time.Second, missed: 3, timeout: 30 * time.Second, winMsgs: 64, winBytes: 1 << 20}
	req, _ := proto.Marshal(&desksidev1.RelayMessage{Id: 7, Body: &desksidev1.RelayMessage_CollectInventory{CollectInventory: &desksidev1.CollectInventory{}}})
	out, _ := proto.Marshal(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_CommandOutput{CommandOutput: &desksidev1.CommandOutput{Seq: 1, Data: []byte("hello\n")}}})
	request := appendRequest(nil, h, req)
	oldVersion := bytes.Clone(request)
	oldVersion[1] = 99
	return map[string][]byte{
		"request":           request,
		"request-version99": oldVersion,
		"request-truncated": request[:4],
		"accept":            appendFrame(nil, kindAccept, 0, nil),
		"data":              appendFrame(nil, kindData, 1, out),
		"heartbeat":         appendFrame(nil, kindHeartbeat, 5, nil),
		"end-ok":            appendFrame(nil, kindEnd, 5, encodeErr(nil)),
		"end-moved":         appendFrame(nil, kindEnd, 2, encodeErr(errMoved)),
		"end-status":        appendFrame(nil, kindEnd, 2, encodeErr(status.Error(codes.NotFound, "no such check"))),
		"end-other":         appendFrame(nil, kindEnd, 3, encodeErr(errors.New("agent said no"))),
		"ack":               appendAck(nil, 4, 4096),
		"done":              {kindDone},
		"cancel":            {kindCancel},
		"claim":             appendRoute(kindClaim, 3, "tok-a"),
		"yielded":           appendRoute(kindYielded, 3, "tok-a"),
		"announce":          appendRoute(kindAnnounce, 4, "tok-b"),
		"varint-oversized":  append([]byte{kindData}, bytes.Repeat([]byte{0xff}, 11)...),
		"varint-truncated":  {kindAck, 0x80},
		"empty":             {},
		"garbage":           []byte("PUB foo 5\r\nhello\r\n"),
	}
}
