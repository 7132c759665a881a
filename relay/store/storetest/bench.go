package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// Samples returns n health samples with ids from firstID, one second apart
// from start, each with detail bytes of the given size.
func Samples(firstID uint64, n int, start time.Time, detail int) []store.HealthSample {
	out := make([]store.HealthSample, n)
	for i := range out {
		d := make([]byte, detail)
		for j := range d {
			d[j] = byte(i*31 + j*7)
		}
		out[i] = store.HealthSample{
			ID:              firstID + uint64(i),
			Time:            start.Add(time.Duration(i) * time.Second),
			CPUPercent:      float64(i%100) + 0.5,
			Load1:           float64(i%8) / 4,
			MemUsedBytes:    uint64(8<<30 + i*4096),
			MemAvailBytes:   uint64(8<<30 - i*4096),
			SwapUsedBytes:   uint64(i * 512),
			DiskUsedPercent: 71.25,
			NetRxBps:        float64(i * 1000),
			NetTxBps:        float64(i * 100),
			Detail:          d,
		}
	}
	return out
}

// BenchHealthIngest measures a backend's AddHealthSamples throughput
// (sub-benchmarks batch=500 and batch=100, metric samples/s; target 20,000
// or more): each op is one batch for one of a few devices, with every
// sample new. open returns a new, empty store.
func BenchHealthIngest(b *testing.B, open func(testing.TB) store.Store) {
	for _, batch := range []int{500, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := open(b)
			ctx := b.Context()
			const devices = 4
			for d := range devices {
				if err := s.CreateDevice(ctx, store.Device{ID: fmt.Sprintf("dev-%d", d), Hostname: fmt.Sprintf("pc-%d", d)}); err != nil {
					b.Fatal(err)
				}
			}
			// Ids and times advance per op so every sample is new. A
			// realistic detail (mounts, top processes) is ~256 bytes.
			start := time.Unix(1_800_000_000, 0)
			template := Samples(0, batch, start, 256)
			samples := make([]store.HealthSample, batch)

			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				// Renumbering costs well under 1% of an op.
				for k := range samples {
					h := template[k]
					h.ID = uint64(i*batch + k)
					h.Time = start.Add(time.Duration(i*batch+k) * time.Second)
					samples[k] = h
				}
				n, err := s.AddHealthSamples(ctx, fmt.Sprintf("dev-%d", i%devices), samples)
				if err != nil {
					b.Fatal(err)
				}
				if n != batch {
					b.Fatalf("stored %d of %d", n, batch)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// kbVocabulary is n made-up words ("bakodi", "tenura"…), deterministic.
func kbVocabulary(n int) []string {
	syll := []string{"ba", "ko", "di", "te", "nu", "ra", "mi", "so", "lu", "fe", "ga", "po", "ri", "va", "ze", "chi", "mo", "ne", "ta", "ul"}
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		w := ""
		for range 2 + r.IntN(3) {
			w += syll[r.IntN(len(syll))]
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// BenchKBSearch measures SearchArticles over 10,000 articles (titles of 3
// to 8 words, bodies of about 300, 2 tags, over a vocabulary of 5,000
// words drawn with a Zipf distribution, so common words match thousands
// of articles), with queries of one to three words drawn the same way,
// limit 20, half of them published only. It reports the latency
// percentiles p50-ms and p99-ms (target p99 ≤ 20 ms). open returns a new,
// empty store; settle, if given, runs after the articles are stored, to do
// what a running relay's database would have done by then on its own (for
// PostgreSQL: autovacuum's ANALYZE, whose statistics the search reads).
func BenchKBSearch(b *testing.B, open func(tb testing.TB) store.Store, settle ...func(tb testing.TB, s store.Store)) {
	s := open(b)
	b.Cleanup(func() { s.Close() })
	ctx := b.Context()
	SeedKB(b, s)
	for _, f := range settle {
		f(b, s)
	}
	queries := KBQueries()
	// Warm the caches as a running relay's would be.
	for _, q := range queries[:50] {
		if _, err := s.SearchArticles(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := s.SearchArticles(ctx, queries[i%len(queries)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// kbWords draws n words of the benchmark's vocabulary.
type kbWords struct {
	vocab []string
	r     *rand.Rand
	zipf  *rand.Zipf
}

func newKBWords(seed uint64) *kbWords {
	r := rand.New(rand.NewPCG(seed, 4))
	vocab := kbVocabulary(5000)
	return &kbWords{vocab: vocab, r: r, zipf: rand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))}
}

func (w *kbWords) words(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = w.vocab[w.zipf.Uint64()]
	}
	return strings.Join(ws, " ")
}

// SeedKB stores BenchKBSearch's 10,000 articles in s.
func SeedKB(tb testing.TB, s store.Store) {
	w := newKBWords(3)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10_000 {
		a := store.Article{Slug: fmt.Sprintf("article-%d", i), Title: w.words(3 + w.r.IntN(6)), Body: w.words(250 + w.r.IntN(100)),
			Category: fmt.Sprintf("cat%d", i%12), Tags: []string{w.vocab[w.r.IntN(200)], w.vocab[w.r.IntN(200)]}, Published: i%2 == 0,
			Author: "bench", UpdatedBy: "bench", Created: t0, Updated: t0.Add(time.Duration(i) * time.Minute)}
		if _, err := s.CreateArticle(context.Background(), a); err != nil {
			tb.Fatal(err)
		}
	}
}

// KBQueries are BenchKBSearch's 1,000 queries.
func KBQueries() []store.ArticleSearch {
	w := newKBWords(5)
	qs := make([]store.ArticleSearch, 1000)
	for i := range qs {
		qs[i] = store.ArticleSearch{Terms: strings.Fields(w.words(1 + w.r.IntN(3))), PublishedOnly: i%2 == 0, Limit: 20}
	}
	return qs
}
