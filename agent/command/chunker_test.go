package command

import (
	"testing"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const (
	out  = desksidev1.CommandStream_COMMAND_STREAM_STDOUT
	errS = desksidev1.CommandStream_COMMAND_STREAM_STDERR
)

func TestChunker(t *testing.T) {
	type read struct {
		s    desksidev1.CommandStream
		data string
	}
	type chunk struct {
		s    desksidev1.CommandStream
		data string
	}
	tests := []struct {
		name      string
		max       int
		limit     uint64
		reads     []read
		want      []chunk
		truncated bool
		total     uint64
	}{
		{"one small read", 4, 100, []read{{out, "ab"}}, []chunk{{out, "ab"}}, false, 2},
		{"coalesced reads", 8, 100, []read{{out, "ab"}, {out, "cd"}}, []chunk{{out, "abcd"}}, false, 4},
		{"split at max", 4, 100, []read{{out, "abcdefghij"}}, []chunk{{out, "abcd"}, {out, "efgh"}, {out, "ij"}}, false, 10},
		{"exactly max", 4, 100, []read{{out, "ab"}, {out, "cd"}}, []chunk{{out, "abcd"}}, false, 4},
		{"stream switch flushes", 8, 100, []read{{out, "ab"}, {errS, "cd"}, {out, "ef"}}, []chunk{{out, "ab"}, {errS, "cd"}, {out, "ef"}}, false, 6},
		{"cap inside a read", 8, 5, []read{{out, "abc"}, {out, "defg"}}, []chunk{{out, "abcde"}}, true, 7},
		{"cap at a read boundary", 8, 3, []read{{out, "abc"}, {errS, "x"}}, []chunk{{out, "abc"}}, true, 4},
		{"cap exactly reached", 8, 3, []read{{out, "abc"}}, []chunk{{out, "abc"}}, false, 3},
		{"empty read", 8, 3, []read{{out, ""}}, nil, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChunker(tt.max, tt.limit)
			var got []*desksidev1.CommandOutput
			for _, r := range tt.reads {
				got = append(got, c.add(r.s, []byte(r.data))...)
			}
			if m := c.flush(); m != nil {
				got = append(got, m)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d chunks %v, want %d", len(got), got, len(tt.want))
			}
			for i, m := range got {
				if m.GetStream() != tt.want[i].s || string(m.GetData()) != tt.want[i].data || m.GetSeq() != uint64(i+1) {
					t.Errorf("chunk %d = %v %q seq %d, want %v %q seq %d", i, m.GetStream(), m.GetData(), m.GetSeq(), tt.want[i].s, tt.want[i].data, i+1)
				}
			}
			if c.truncated != tt.truncated || c.total != tt.total {
				t.Errorf("truncated %v total %d, want %v %d", c.truncated, c.total, tt.truncated, tt.total)
			}
			if c.pending() {
				t.Error("data still pending after flush")
			}
		})
	}
}

func TestChunkerMarker(t *testing.T) {
	c := newChunker(8, 3)
	c.add(out, []byte("abcdef"))
	c.flush()
	m := c.marker()
	if m.GetStream() != errS || m.GetSeq() != 2 ||
		string(m.GetData()) != "\n[deskside: output truncated at 3 bytes; the command kept running until it ended]\n" {
		t.Errorf("marker = %v seq %d %q", m.GetStream(), m.GetSeq(), m.GetData())
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{DefaultTimeout: 48 * MaxTimeout}.withDefaults()
	if o.Logger == nil || o.DefaultTimeout != MaxTimeout || o.DefaultMaxOutput != DefaultMaxOutput ||
		o.ChunkBytes != DefaultChunkBytes || o.FlushInterval != DefaultFlushInterval || o.KillGrace != DefaultKillGrace {
		t.Errorf("withDefaults = %+v", o)
	}
}
