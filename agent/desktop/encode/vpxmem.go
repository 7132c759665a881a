//go:build linux && cgo && !novpx

package encode

// Memory of the libvpx encoder.
//
// libvpx's VP8 encoder allocates its token buffer (the coefficient tokens
// of a frame between quantization and bit packing: 24×16 tokens of 16
// bytes per macroblock, 48 MiB at 1920×1080) with vpx_calloc, which is
// malloc followed by memset, so all of it becomes resident when the
// encoder is created, although a frame uses a few megabytes of it (a
// moving picture 2-6 MB, a key frame of dense text up to 20 MB). That was
// two thirds of an encoder's 76 MB at 1080p; the rest is three reference
// frames, two look-ahead frames and a post-processing frame (3.4 MB each),
// the I420 input image (3.1 MB) and the mode and partition info (1.7 MB).
//
// reclaim gives those pages back right after vpx_codec_enc_init: in the
// large blocks that belong to the new encoder, every page that is entirely
// zero is dropped with madvise(MADV_DONTNEED). For private anonymous memory
// (all that malloc hands out) a dropped page reads back as zeros, so what
// the encoder sees does not change (TestReclaimSameStream: the same bytes
// out); the kernel maps a page again when the encoder next writes to it.
// The blocks are found without knowing libvpx's structures, like a
// conservative garbage collector: from the codec's private data
// (vpx_codec_ctx_t.priv), two levels of pointers are followed through the
// blocks vpx_memalign allocated, recognised by what it and glibc keep in
// front of them (the pointer malloc returned, 8 to 71 bytes before the
// block, and before that glibc's chunk size), in memory that
// /proc/self/maps shows to be malloc's. Only blocks in a mapping of their
// own (glibc's mmapped-chunk header [0, size|IS_MMAPPED] at a page start)
// have pages dropped. Nothing else touches those blocks meanwhile (the
// encoder has not been handed out; its worker threads wait for a frame),
// so no write can race with a drop. Where that layout does not hold
// (another libc, a libvpx that allocates differently) nothing is found and
// nothing is dropped. It takes about 7 ms at 1080p, once per encoder (it
// reads the 48 MiB once).
//
// setMallocOptions fixes glibc's mmap threshold at its initial 128 KiB. By
// default glibc raises the threshold to the largest mapped block freed so
// far (up to 32 MiB), so once a first encoder is closed the next one's
// frame buffers and (up to about 1200×900) token buffer come from malloc's
// heaps: reclaim does not drop pages there, and after Close they stay in
// the process, since heaps are trimmed only at the top. Measured with
// encoders of 1920×1080 (twice), 1280×720 (twice) and 1024×768 opened and
// closed in turn: 27, 39, 52 and 80 MB stayed resident after the second
// to fifth Close, and two of the smaller token buffers were not reclaimed;
// with the threshold fixed, 1.0-1.6 MB stayed and all were. With it every
// large libvpx block that needs new memory gets a mapping of its own,
// which Close returns to the kernel.

/*
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vpx/vpx_codec.h>

// A readable mapping of /proc/self/maps; anon is 1 for the private
// anonymous read-write memory malloc uses (its mappings and [heap]).
typedef struct { uintptr_t lo, hi; int anon; } dsmem_map;

typedef struct {
	dsmem_map *m;
	size_t n, cap;
} dsmem_maps;

static void dsmem_maps_free(dsmem_maps *s) {
	free(s->m);
	s->m = NULL;
	s->n = s->cap = 0;
}

// dsmem_read_maps reads the readable mappings of this process (sorted by
// address, as the kernel lists them); -1 on failure.
static int dsmem_read_maps(dsmem_maps *s) {
	memset(s, 0, sizeof *s);
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f) return -1;
	char *line = NULL;
	size_t len = 0;
	int rc = 0;
	while (getline(&line, &len, f) > 0) {
		unsigned long lo, hi, ino;
		char perms[8];
		int path = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %lu %n", &lo, &hi, perms, &ino, &path) < 4) continue;
		if (perms[0] != 'r') continue;
		if (s->n == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 256;
			dsmem_map *m = realloc(s->m, cap * sizeof *m);
			if (!m) { rc = -1; break; }
			s->m = m;
			s->cap = cap;
		}
		// malloc's memory: its own mappings (unnamed) and the brk heap
		const char *name = path > 0 ? line + path : "";
		int heap = name[0] == '\0' || name[0] == '\n' || strncmp(name, "[heap]", 6) == 0;
		s->m[s->n++] = (dsmem_map){lo, hi, strcmp(perms, "rw-p") == 0 && ino == 0 && heap};
	}
	free(line);
	fclose(f);
	if (rc) dsmem_maps_free(s);
	return rc;
}

// dsmem_find returns the readable mapping holding [p, p+n), or NULL.
static const dsmem_map *dsmem_find(const dsmem_maps *s, uintptr_t p, size_t n) {
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->m[mid].hi <= p) lo = mid + 1;
		else hi = mid;
	}
	if (lo < s->n && s->m[lo].lo <= p && p + n >= p && p + n <= s->m[lo].hi) return &s->m[lo];
	return NULL;
}

// A block that vpx_memalign handed out at x, in memory up to end; mapped
// when it is a glibc chunk in a mapping of its own.
typedef struct {
	uintptr_t x, end;
	int mapped;
} dsmem_blk;

// dsmem_block recognises a block that vpx_memalign handed out at x: just
// before x it stores the pointer malloc returned (16-byte aligned, 8 to 71
// bytes before x), and just before that glibc keeps the chunk's size with
// its flag bits. A chunk in a mapping of its own (IS_MMAPPED) starts at a
// page boundary with [0, size|IS_MMAPPED].
static int dsmem_block(const dsmem_maps *s, uintptr_t x, size_t page, dsmem_blk *b) {
	if (x % 8 != 0 || x < 128) return 0;
	const dsmem_map *m = dsmem_find(s, x - 8, 8);
	if (!m || !m->anon) return 0;
	uintptr_t real = *(const uintptr_t *)(x - 8);
	if (real % 16 != 0 || real + 8 > x || x - real >= 8 + 64 || real < m->lo + 16) return 0;
	uintptr_t chunk = real - 16;
	size_t head = *(const size_t *)(real - 8), n = head & ~(size_t)7;
	if (n < 32 || n % 16 != 0 || chunk + n < chunk || chunk + n > m->hi || chunk + n <= x) return 0;
	b->x = x;
	b->end = chunk + n;
	b->mapped = (head & 7) == 2 && chunk % page == 0 && n % page == 0 && *(const size_t *)chunk == 0;
	return 1;
}

static int dsmem_zero_page(const unsigned char *p, size_t page) {
	const uint64_t *w = (const uint64_t *)p;
	uint64_t acc = 0;
	for (size_t i = 0; i < page / 8; i++) acc |= w[i];
	return acc == 0;
}

// dsmem_drop_zero drops the pages of [lo, hi) (page aligned) that are
// entirely zero and returns how many bytes of them were resident. Pages
// that are not resident count as zero (they read as zeros) but are not
// read, which would map them.
static size_t dsmem_drop_zero(uintptr_t lo, uintptr_t hi, size_t page) {
	if (hi <= lo) return 0;
	size_t np = (hi - lo) / page, dropped = 0;
	unsigned char *vec = malloc(np);
	if (!vec) return 0;
	if (mincore((void *)lo, hi - lo, vec) != 0) {
		free(vec);
		return 0;
	}
	size_t run = 0, runres = 0; // the run of zero pages that ends before page i
	for (size_t i = 0; i <= np; i++) {
		int resident = i < np && (vec[i] & 1);
		if (i < np && (!resident || dsmem_zero_page((const unsigned char *)(lo + i * page), page))) {
			run++;
			runres += resident;
			continue;
		}
		if (runres > 0 && madvise((void *)(lo + (i - run) * page), run * page, MADV_DONTNEED) == 0)
			dropped += runres * page;
		run = runres = 0;
	}
	free(vec);
	// A block that was mostly zero (the token buffer) is written sparsely:
	// with transparent huge pages always on, each token row would bring
	// back 2 MiB.
	if (dropped >= (hi - lo) / 2) madvise((void *)lo, hi - lo, MADV_NOHUGEPAGE);
	return dropped;
}

enum {
	DSMEM_MAX_BLOCKS = 64,
	DSMEM_DEPTH = 2,            // codec data -> VP8_COMP -> token buffer
	DSMEM_MAX_SCAN = 1 << 20,   // blocks scanned for pointers: structures, not pictures
	DSMEM_MIN_DROP = 2 << 20,   // blocks whose zero pages are dropped
};

// dsmem_scan appends to blk the vpx_memalign blocks that the words of
// [lo, hi) point to.
static void dsmem_scan(const dsmem_maps *s, uintptr_t lo, uintptr_t hi, size_t page, uintptr_t root,
		dsmem_blk *blk, size_t *nblk) {
	for (uintptr_t q = (lo + 7) & ~(uintptr_t)7; q + 8 <= hi; q += 8) {
		dsmem_blk b;
		uintptr_t x = *(const uintptr_t *)q;
		if (x == root || !dsmem_block(s, x, page, &b)) continue;
		int seen = 0;
		for (size_t k = 0; k < *nblk; k++) seen |= blk[k].x == x;
		if (!seen && *nblk < DSMEM_MAX_BLOCKS) blk[(*nblk)++] = b;
	}
}

// dsmem_reclaim_from follows pointers from the block at root, DSMEM_DEPTH
// levels deep through vpx_memalign blocks, and drops the zero pages of
// those of DSMEM_MIN_DROP bytes or more that are mappings of their own; it
// returns the resident bytes dropped. Nothing may use the memory
// meanwhile.
static size_t dsmem_reclaim_from(const dsmem_maps *s, uintptr_t root) {
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	dsmem_blk blk[DSMEM_MAX_BLOCKS], r;
	size_t nblk = 0;
	if (!dsmem_block(s, root, page, &r)) return 0;
	dsmem_scan(s, r.x, r.end, page, root, blk, &nblk);
	for (size_t depth = 1, from = 0; depth < DSMEM_DEPTH; depth++) {
		size_t to = nblk;
		for (size_t b = from; b < to; b++)
			if (blk[b].end - blk[b].x <= DSMEM_MAX_SCAN) dsmem_scan(s, blk[b].x, blk[b].end, page, root, blk, &nblk);
		from = to;
	}
	size_t dropped = 0;
	for (size_t k = 0; k < nblk; k++) {
		if (!blk[k].mapped || blk[k].end - blk[k].x < DSMEM_MIN_DROP) continue;
		uintptr_t lo = (blk[k].x + page - 1) & ~(uintptr_t)(page - 1); // past the header
		dropped += dsmem_drop_zero(lo, blk[k].end, page);
	}
	return dropped;
}

// dsmem_reclaim drops the zero pages of the encoder's large blocks (see the
// Go comment), starting from the codec's private data, a vpx_calloc block.
static size_t dsmem_reclaim(vpx_codec_ctx_t *ctx) {
	dsmem_maps s;
	if (!ctx->priv || dsmem_read_maps(&s) != 0) return 0;
	size_t dropped = dsmem_reclaim_from(&s, (uintptr_t)ctx->priv);
	dsmem_maps_free(&s);
	return dropped;
}

// dsmem_reclaim_test runs dsmem_reclaim_from on memory laid out by a test.
static size_t dsmem_reclaim_test(uintptr_t root) {
	dsmem_maps s;
	if (dsmem_read_maps(&s) != 0) return 0;
	size_t dropped = dsmem_reclaim_from(&s, root);
	dsmem_maps_free(&s);
	return dropped;
}

static void dsmem_set_malloc_options(void) {
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
}
*/
import "C"

import "sync"

var mallocOptions sync.Once

// setMallocOptions fixes glibc's mmap threshold (see above). It affects the
// whole process, whose only large C allocations are libvpx's.
func setMallocOptions() {
	mallocOptions.Do(func() { C.dsmem_set_malloc_options() })
}

// reclaim drops the all-zero pages of the large blocks of the encoder ctx,
// which must be idle, and returns how many resident bytes that freed.
func reclaim(ctx *C.vpx_codec_ctx_t) int {
	return int(C.dsmem_reclaim(ctx))
}

// reclaimFrom runs the block search and drop from the vpx_memalign block
// at root (for tests, on memory laid out like libvpx's).
func reclaimFrom(root uintptr) int {
	return int(C.dsmem_reclaim_test(C.uintptr_t(root)))
}
