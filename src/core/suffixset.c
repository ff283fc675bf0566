/* SPDX-License-Identifier: MIT */
/*
 * The suffix set: every blocklist domain of a policy snapshot in one
 * immutable open-addressing hash table, looked up once per query.
 *
 * Layout. Names live once each in one contiguous arena, in lowercase wire
 * form, each entry being [self:u16][below:u16][len:u8][wire name: len octets].
 * The table is a power-of-two array of 8-octet slots {arena offset + 1, hash
 * tag}, linear probing, load at most 0.7; a zero slot is empty. The 32-bit tag
 * comes from hash bits the slot index does not use, so a probe that is not the
 * name it looks for almost never touches the arena.
 *
 * Hashing. The hash of a name is built label by label from the right: the
 * hash of the root is a per-set key, and the hash of "label.suffix" mixes the
 * label's octets (length octet included) into the hash of "suffix". One pass
 * over a query therefore yields the hash of every one of its suffixes, and the
 * builder hashes a stored name with the very same function. The keys come from
 * getrandom() for each set, so a list author cannot pick names that collide.
 * The mixing step is a 64x64->128-bit multiply folded to 64 bits, which is
 * cheap on every 64-bit machine we care about and spreads each input bit over
 * the whole output.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "dnsink/name.h"
#include "dnsink/suffixset.h"

/* Octets in front of each name in the arena: self, below, length. */
#define ENTRY_HDR 5
/* Smallest table; keeps the probe loop's "an empty slot exists" true. */
#define MIN_SLOTS 8
/* Blocks from this size on are backed by huge pages when the kernel agrees. */
#define HUGE_PAGE (UINT64_C(2) << 20)
#define HUGE_MIN  (2 * HUGE_PAGE)

struct slot {
	uint32_t ref; /* arena offset of the entry plus one; 0: empty slot */
	uint32_t tag; /* upper half of the name's hash */
};

struct keys {
	uint64_t k0;
	uint64_t k1;
	uint64_t root; /* the hash of the root name */
};

/* A block of memory: from malloc when small, from mmap when large. */
struct block {
	void *p;
	size_t bytes; /* allocated */
	bool mapped;  /* from mmap: release with munmap */
};

struct dk_suffixset {
	struct slot *slots; /* table.p */
	size_t mask;        /* slots - 1 */
	uint8_t *arena;     /* arena_blk.p */
	size_t arena_len;   /* octets of the arena in use */
	size_t count;       /* distinct names */
	struct keys keys;
	struct block table;
	struct block arena_blk;
};

/* An added name waiting for its slot's cache line (see dk_suffixset_builder_add_slots()). */
struct pending {
	uint64_t h;
	uint16_t value;
	uint8_t slots;
	uint8_t len;
	uint8_t name[DK_NAME_MAX];
};

/* Names in flight between hashing and insertion. */
#define PIPE 16

struct dk_suffixset_builder {
	struct dk_suffixset set; /* the set under construction */
	dk_suffixset_merge_fn merge;
	void *ctx;
	int err;         /* the first failed insertion; every later call returns it */
	unsigned n_pend; /* names in pend[] */
	unsigned head;   /* the oldest of them */
	struct pending pend[PIPE];
};

static size_t huge_round(size_t size)
{
	return (size + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
}

/*
 * Gets a zeroed block of @size octets for the table or the arena. Lookups hit
 * both at random, so with a million names nearly every probe would also miss
 * the TLB on 4 KiB pages: large blocks are therefore mapped 2 MiB aligned and
 * advised for transparent huge pages (best effort; without THP they are just
 * ordinary pages). Mapped memory that is never touched costs no RAM, which
 * also lets the builder reserve its arena generously and trim it at the end.
 */
static int block_get(struct block *b, size_t size)
{
	if (size >= HUGE_MIN) {
		size_t sz = huge_round(size);
		uint8_t *m = mmap(NULL, sz + HUGE_PAGE, PROT_READ | PROT_WRITE,
		                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m != MAP_FAILED) {
			uintptr_t a = ((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
			uint8_t *p = (uint8_t *)a;
			size_t head = (size_t)(p - m);

			if (head)
				munmap(m, head);
			if (HUGE_PAGE - head)
				munmap(p + sz, HUGE_PAGE - head);
			(void)madvise(p, sz, MADV_HUGEPAGE);
			*b = (struct block){p, sz, true};
			return 0;
		}
	}
	b->p = calloc(1, size ? size : 1);
	if (!b->p)
		return -ENOMEM;
	b->bytes = size ? size : 1;
	b->mapped = false;
	return 0;
}

static void block_put(struct block *b)
{
	if (b->mapped)
		munmap(b->p, b->bytes);
	else
		free(b->p);
	*b = (struct block){NULL, 0, false};
}

/* Resizes @b to @size octets, keeping its first @keep octets. */
static int block_resize(struct block *b, size_t size, size_t keep)
{
	struct block n;

	if (b->mapped && size >= HUGE_MIN && size <= b->bytes) {
		size_t sz = huge_round(size);
		if (sz < b->bytes) {
			munmap((uint8_t *)b->p + sz, b->bytes - sz);
			b->bytes = sz;
		}
		return 0;
	}
	if (!b->mapped && size < HUGE_MIN) {
		void *p = realloc(b->p, size ? size : 1);
		if (!p)
			return size <= b->bytes ? 0 : -ENOMEM;
		b->p = p;
		b->bytes = size ? size : 1;
		return 0;
	}
	if (block_get(&n, size) < 0)
		return -ENOMEM;
	memcpy(n.p, b->p, keep);
	block_put(b);
	*b = n;
	return 0;
}

static inline uint64_t mix(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/*
 * Loads the @n (1..8) octets at @p as a little-endian number, upper octets
 * zero. [begin, end) is the buffer @p lies in: when 8 octets from @p would
 * leave it, the load is taken from end - 8 and shifted, so we never read a
 * byte we were not given and rarely fall back to a byte loop.
 */
static inline uint64_t load_tail(const uint8_t *p, size_t n, const uint8_t *begin,
                                 const uint8_t *end)
{
	uint64_t v;

	if (end - p >= 8) {
		v = load64(p);
	} else if (end - begin >= 8) {
		v = load64(end - 8) >> (8 * (8 - (end - p)));
	} else {
		v = 0;
		for (size_t i = 0; i < n; i++)
			v |= (uint64_t)p[i] << (8 * i);
		return v;
	}
	return n == 8 ? v : v & ((UINT64_C(1) << (8 * n)) - 1);
}

/*
 * The hash of the name whose first label is at @p, given the hash @h of the
 * name that follows that label. [begin, end) bounds the buffer for loads.
 */
static inline uint64_t hash_label(const struct keys *k, uint64_t h, const uint8_t *p,
                                  const uint8_t *begin, const uint8_t *end)
{
	size_t n = 1 + (size_t)p[0];

	while (n > 16) {
		h = mix(load64(p) ^ k->k0 ^ h, load64(p + 8) ^ k->k1);
		p += 16;
		n -= 16;
	}
	uint64_t a = load_tail(p, n > 8 ? 8 : n, begin, end);
	uint64_t b = n > 8 ? load_tail(p + 8, n - 8, begin, end) : 0;
	return mix(a ^ k->k0 ^ h, b ^ k->k1 ^ (h >> 32 | h << 32));
}

/*
 * Label offsets of wire name @wire, leftmost first, and the root's offset in
 * offs[n]. Returns the label count n, or -1 when @wire is not a well-formed
 * name of exactly @len octets.
 */
static inline int walk(const uint8_t *wire, size_t len, uint8_t offs[DK_LABELS_MAX + 1])
{
	size_t p = 0;
	int n = 0;

	if (len == 0 || len > DK_NAME_MAX)
		return -1;
	while (wire[p] != 0) {
		if (n == DK_LABELS_MAX || wire[p] > DK_LABEL_MAX)
			return -1;
		offs[n++] = (uint8_t)p;
		p += 1 + (size_t)wire[p];
		if (p >= len)
			return -1;
	}
	if (p != len - 1)
		return -1;
	offs[n] = (uint8_t)p;
	return n;
}

static uint64_t hash_name(const struct keys *k, const uint8_t *wire, size_t len)
{
	uint8_t offs[DK_LABELS_MAX + 1];
	int n = walk(wire, len, offs);
	uint64_t h = k->root;

	while (n-- > 0)
		h = hash_label(k, h, wire + offs[n], wire, wire + len);
	return h;
}

static inline uint16_t entry_get(const uint8_t *e, size_t i)
{
	uint16_t v;
	memcpy(&v, e + 2 * i, sizeof(v));
	return v;
}

static inline void entry_put(uint8_t *e, size_t i, uint16_t v)
{
	memcpy(e + 2 * i, &v, sizeof(v));
}

/* The arena entry for @wire (@len octets) with hash @h, or NULL. */
static inline const uint8_t *find(const struct dk_suffixset *s, uint64_t h, const uint8_t *wire,
                                  size_t len)
{
	size_t i = (size_t)h & s->mask;
	uint32_t tag = (uint32_t)(h >> 32);

	for (;;) {
		struct slot sl = s->slots[i];

		if (sl.ref == 0)
			return NULL;
		if (sl.tag == tag) {
			const uint8_t *e = s->arena + sl.ref - 1;
			if (e[4] == len && memcmp(e + ENTRY_HDR, wire, len) == 0)
				return e;
		}
		i = (i + 1) & s->mask;
	}
}

/*
 * The slot of @wire (@len octets, hash @h): *found set when the name is in the
 * table, else the empty slot that ends its probe run, where it would go.
 */
static size_t seek(const struct dk_suffixset *s, uint64_t h, const uint8_t *wire, size_t len,
                   bool *found)
{
	size_t i = (size_t)h & s->mask;
	uint32_t tag = (uint32_t)(h >> 32);

	for (;; i = (i + 1) & s->mask) {
		struct slot sl = s->slots[i];

		if (sl.ref == 0) {
			*found = false;
			return i;
		}
		if (sl.tag == tag) {
			const uint8_t *e = s->arena + sl.ref - 1;
			if (e[4] == len && memcmp(e + ENTRY_HDR, wire, len) == 0) {
				*found = true;
				return i;
			}
		}
	}
}

/* Puts entry @off with hash @h into the first free slot of its probe run. */
static void place(struct slot *slots, size_t mask, uint64_t h, size_t off)
{
	size_t i = (size_t)h & mask;

	while (slots[i].ref != 0)
		i = (i + 1) & mask;
	slots[i].ref = (uint32_t)(off + 1);
	slots[i].tag = (uint32_t)(h >> 32);
}

/* Smallest power-of-two table that holds @count names at load <= 0.7. */
static size_t slots_for(size_t count)
{
	size_t n = MIN_SLOTS;

	while (n * 7 < count * 10)
		n *= 2;
	return n;
}

/*
 * Rebuilds the table of @s with @nslots slots from the arena, walking the
 * entries in arena order (a sequential read) and rehashing each name.
 */
static int rehash(struct dk_suffixset *s, size_t nslots)
{
	struct block t;

	if (block_get(&t, nslots * sizeof(struct slot)) < 0)
		return -ENOMEM;
	struct slot *slots = t.p;
	for (size_t off = 0; off < s->arena_len;) {
		const uint8_t *e = s->arena + off;
		size_t len = e[4];

		place(slots, nslots - 1, hash_name(&s->keys, e + ENTRY_HDR, len), off);
		off += ENTRY_HDR + len;
	}
	block_put(&s->table);
	s->table = t;
	s->slots = slots;
	s->mask = nslots - 1;
	return 0;
}

static void seed_keys(struct keys *k, const void *salt)
{
	uint64_t r[3];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom((uint8_t *)r + got, sizeof(r) - got, GRND_NONBLOCK);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof(r)) {
		/*
		 * No entropy yet (early boot) or no getrandom(): the keys then
		 * come from the clock and an address, weaker but still not
		 * predictable from the list content alone.
		 */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		x ^= (uint64_t)(uintptr_t)salt;
		for (size_t i = 0; i < 3; i++) {
			x += UINT64_C(0x9e3779b97f4a7c15);
			r[i] ^= mix(x, UINT64_C(0xd6e8feb86659fd93) ^ i);
		}
	}
	k->k0 = r[0];
	k->k1 = r[1];
	k->root = r[2];
}

struct dk_suffixset_builder *dk_suffixset_builder_new(size_t expected, dk_suffixset_merge_fn merge,
                                                      void *ctx)
{
	struct dk_suffixset_builder *b;
	size_t nslots;

	/* A hint, not a promise: keep the arithmetic below far from overflow. */
	if (expected > ((size_t)1 << 28))
		expected = (size_t)1 << 28;
	nslots = slots_for(expected);
	b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->merge = merge;
	b->ctx = ctx;
	/*
	 * List names take 20-40 octets with their entry header. A large arena
	 * is mapped and only touched as it fills, so reserve well above that
	 * and avoid copying it as it grows; finish() trims the rest.
	 */
	size_t arena = expected * 32 >= HUGE_MIN ? expected * 64 : expected * 32 + 256;
	if (block_get(&b->set.arena_blk, arena) < 0 ||
	    block_get(&b->set.table, nslots * sizeof(struct slot)) < 0)
		goto fail;
	b->set.arena = b->set.arena_blk.p;
	b->set.slots = b->set.table.p;
	b->set.mask = nslots - 1;
	seed_keys(&b->set.keys, b);
	return b;
fail:
	dk_suffixset_builder_free(b);
	return NULL;
}

static uint16_t merge_values(const struct dk_suffixset_builder *b, uint16_t old, uint16_t add)
{
	if (old == DK_SUFFIXSET_NONE)
		return add;
	return b->merge ? b->merge(old, add, b->ctx) : old;
}

/* Inserts (or merges) pending name @p; the slot's line was asked for when it was queued. */
static int commit(struct dk_suffixset_builder *b, const struct pending *p)
{
	struct dk_suffixset *s = &b->set;
	bool found;
	size_t i = seek(s, p->h, p->name, p->len, &found);

	if (found) {
		uint8_t *e = s->arena + s->slots[i].ref - 1;
		if (p->slots & DK_SUFFIXSET_SELF)
			entry_put(e, 0, merge_values(b, entry_get(e, 0), p->value));
		if (p->slots & DK_SUFFIXSET_BELOW)
			entry_put(e, 1, merge_values(b, entry_get(e, 1), p->value));
		return 0;
	}
	if ((s->count + 1) * 10 > (s->mask + 1) * 7) {
		int rc = rehash(s, (s->mask + 1) * 2);
		if (rc < 0)
			return rc;
		i = seek(s, p->h, p->name, p->len, &found);
	}
	size_t need = s->arena_len + ENTRY_HDR + p->len;
	if (need > s->arena_blk.bytes) {
		/* Slots hold 32-bit offsets. */
		if (need > UINT32_MAX - 1)
			return -ENOMEM;
		size_t cap = s->arena_blk.bytes * 2;
		if (cap > UINT32_MAX - 1)
			cap = UINT32_MAX - 1;
		if (block_resize(&s->arena_blk, cap, s->arena_len) < 0)
			return -ENOMEM;
		s->arena = s->arena_blk.p;
	}
	size_t off = s->arena_len;
	uint8_t *e = s->arena + off;
	entry_put(e, 0, p->slots & DK_SUFFIXSET_SELF ? p->value : DK_SUFFIXSET_NONE);
	entry_put(e, 1, p->slots & DK_SUFFIXSET_BELOW ? p->value : DK_SUFFIXSET_NONE);
	e[4] = p->len;
	memcpy(e + ENTRY_HDR, p->name, p->len);
	s->arena_len += ENTRY_HDR + p->len;
	s->slots[i].ref = (uint32_t)(off + 1);
	s->slots[i].tag = (uint32_t)(p->h >> 32);
	s->count++;
	return 0;
}

/* Commits every pending name, oldest first; returns the builder's error state. */
static int drain(struct dk_suffixset_builder *b)
{
	while (b->n_pend && !b->err) {
		b->err = commit(b, &b->pend[b->head]);
		b->head = (b->head + 1) % PIPE;
		b->n_pend--;
	}
	b->n_pend = 0;
	return b->err;
}

/*
 * A name is hashed and queued here, and inserted PIPE names later: by then
 * the cache line of its slot, asked for now, has come in from memory. With
 * ten million names the table is far larger than any cache and every
 * insertion would otherwise wait for one miss (most of the build time).
 * Names are committed in the order they came, so merges happen as before.
 */
int dk_suffixset_builder_add_slots(struct dk_suffixset_builder *b, const uint8_t *wire, size_t len,
                                   unsigned slots, uint16_t value)
{
	uint8_t offs[DK_LABELS_MAX + 1];

	if (value == DK_SUFFIXSET_NONE || !slots || walk(wire, len, offs) < 0)
		return -EINVAL;
	if (b->err)
		return b->err;
	if (b->n_pend == PIPE) {
		if ((b->err = commit(b, &b->pend[b->head])))
			return b->err;
		b->head = (b->head + 1) % PIPE;
		b->n_pend--;
	}
	struct pending *p = &b->pend[(b->head + b->n_pend) % PIPE];
	/* Cold path: normalize here rather than trust every caller. */
	memcpy(p->name, wire, len);
	dk_name_lower(p->name, len);
	p->len = (uint8_t)len;
	p->slots = (uint8_t)slots;
	p->value = value;
	p->h = hash_name(&b->set.keys, p->name, len);
	__builtin_prefetch(&b->set.slots[(size_t)p->h & b->set.mask], 1);
	b->n_pend++;
	return 0;
}

int dk_suffixset_builder_add(struct dk_suffixset_builder *b, const uint8_t *wire, size_t len,
                             bool below_only, uint16_t value)
{
	return dk_suffixset_builder_add_slots(
	        b, wire, len,
	        below_only ? DK_SUFFIXSET_BELOW : DK_SUFFIXSET_SELF | DK_SUFFIXSET_BELOW, value);
}

size_t dk_suffixset_builder_count(const struct dk_suffixset_builder *b)
{
	if (!b)
		return 0;
	/* The pending names that are new: in the table neither nor earlier in the queue. */
	size_t n = b->set.count;
	for (unsigned k = 0; k < b->n_pend; k++) {
		const struct pending *p = &b->pend[(b->head + k) % PIPE];
		bool dup;
		(void)seek(&b->set, p->h, p->name, p->len, &dup);
		for (unsigned j = 0; j < k && !dup; j++) {
			const struct pending *q = &b->pend[(b->head + j) % PIPE];
			dup = q->len == p->len && memcmp(q->name, p->name, p->len) == 0;
		}
		n += !dup;
	}
	return n;
}

struct dk_suffixset *dk_suffixset_builder_finish(struct dk_suffixset_builder *b)
{
	struct dk_suffixset *s;

	if (!b)
		return NULL;
	s = malloc(sizeof(*s));
	if (!s || drain(b) < 0)
		goto fail;
	/* The builder may have been sized for more names than came. */
	size_t nslots = slots_for(b->set.count);
	if (nslots < b->set.mask + 1 && rehash(&b->set, nslots) < 0)
		goto fail;
	/* A failed shrink only leaves spare room behind. */
	if (block_resize(&b->set.arena_blk, b->set.arena_len, b->set.arena_len) == 0)
		b->set.arena = b->set.arena_blk.p;
	*s = b->set;
	free(b);
	return s;
fail:
	free(s);
	dk_suffixset_builder_free(b);
	return NULL;
}

void dk_suffixset_builder_free(struct dk_suffixset_builder *b)
{
	if (!b)
		return;
	block_put(&b->set.table);
	block_put(&b->set.arena_blk);
	free(b);
}

void dk_suffixset_free(struct dk_suffixset *s)
{
	if (!s)
		return;
	block_put(&s->table);
	block_put(&s->arena_blk);
	free(s);
}

bool dk_suffixset_lookup(const struct dk_suffixset *s, const uint8_t *wire, size_t len,
                         struct dk_suffixset_match *m)
{
	return dk_suffixset_lookup_if(s, wire, len, NULL, NULL, m);
}

/* The probes of one walk: the first (longest) suffix of @p s that applies and @p accept takes. */
static inline __attribute__((always_inline)) bool
probe(const struct dk_suffixset *s, const uint64_t *h, const uint8_t *offs, int n,
      const uint8_t *wire, size_t len, dk_suffixset_accept_fn accept, const void *ctx,
      struct dk_suffixset_match *m)
{
	for (int i = 0; i <= n; i++) {
		const uint8_t *e = find(s, h[i], wire + offs[i], len - offs[i]);
		if (!e)
			continue;
		/* The whole query uses "self", a proper suffix "below". */
		uint16_t v = entry_get(e, i == 0 ? 0 : 1);
		if (v == DK_SUFFIXSET_NONE || (accept && !accept(v, ctx)))
			continue;
		m->value = v;
		m->offset = offs[i];
		m->labels = (uint8_t)i;
		m->below = i > 0;
		return true;
	}
	return false;
}

/* Hashes every suffix of @p wire with @p s's keys; -1 for a malformed name. */
static inline __attribute__((always_inline)) int
hash_all(const struct dk_suffixset *s, const uint8_t *wire, size_t len, uint8_t *offs, uint64_t *h)
{
	int n = walk(wire, len, offs);

	if (n < 0)
		return -1;
	h[n] = s->keys.root;
	for (int i = n - 1; i >= 0; i--)
		h[i] = hash_label(&s->keys, h[i + 1], wire + offs[i], wire, wire + len);
	/*
	 * Most probes of a miss land in distinct, cold cache lines; asking for
	 * them all before the first compare lets the loads overlap.
	 */
	for (int i = 0; i <= n; i++)
		__builtin_prefetch(&s->slots[(size_t)h[i] & s->mask]);
	return n;
}

bool dk_suffixset_lookup_if(const struct dk_suffixset *s, const uint8_t *wire, size_t len,
                            dk_suffixset_accept_fn accept, const void *ctx,
                            struct dk_suffixset_match *m)
{
	uint8_t offs[DK_LABELS_MAX + 1];
	uint64_t h[DK_LABELS_MAX + 1];
	int n;

	if (!s || s->count == 0 || (n = hash_all(s, wire, len, offs, h)) < 0)
		return false;
	return probe(s, h, offs, n, wire, len, accept, ctx, m);
}

struct dk_suffixset_builder *dk_suffixset_builder_new_like(size_t expected,
                                                           dk_suffixset_merge_fn merge, void *ctx,
                                                           const struct dk_suffixset *like)
{
	struct dk_suffixset_builder *b = dk_suffixset_builder_new(expected, merge, ctx);

	if (b && like)
		b->set.keys = like->keys;
	return b;
}

unsigned dk_suffixset_lookup_both(const struct dk_suffixset *s, const struct dk_suffixset *also,
                                  const uint8_t *wire, size_t len, dk_suffixset_accept_fn accept,
                                  const void *ctx, struct dk_suffixset_match *m,
                                  struct dk_suffixset_match *m_also)
{
	uint8_t offs[DK_LABELS_MAX + 1];
	uint64_t h[DK_LABELS_MAX + 1];
	unsigned found = 0;
	int n;

	if (!also || also->count == 0)
		return dk_suffixset_lookup_if(s, wire, len, accept, ctx, m);
	if (!s || s->count == 0 || memcmp(&s->keys, &also->keys, sizeof(s->keys)) != 0) {
		/* Keys of their own: two walks. */
		found = dk_suffixset_lookup_if(s, wire, len, accept, ctx, m);
		if (found && dk_suffixset_lookup(also, wire, len, m_also) &&
		    m_also->offset <= m->offset)
			found |= 2;
		return found;
	}
	if ((n = hash_all(s, wire, len, offs, h)) < 0)
		return 0;
	found = probe(s, h, offs, n, wire, len, accept, ctx, m);
	/*
	 * The second set only matters when the first matched (a group's
	 * exceptions), and there only as long a suffix or longer.
	 */
	if (found && probe(also, h, offs, m->labels, wire, len, NULL, NULL, m_also))
		found |= 2;
	return found;
}

size_t dk_suffixset_lookup_all(const struct dk_suffixset *s, const uint8_t *wire, size_t len,
                               struct dk_suffixset_match *out, size_t max)
{
	uint8_t offs[DK_LABELS_MAX + 1];
	uint64_t h[DK_LABELS_MAX + 1];
	size_t found = 0;
	int n;

	if (!s || s->count == 0 || !max)
		return 0;
	n = walk(wire, len, offs);
	if (n < 0)
		return 0;
	h[n] = s->keys.root;
	for (int i = n - 1; i >= 0; i--)
		h[i] = hash_label(&s->keys, h[i + 1], wire + offs[i], wire, wire + len);
	for (int i = 0; i <= n && found < max; i++) {
		const uint8_t *e = find(s, h[i], wire + offs[i], len - offs[i]);
		if (!e)
			continue;
		uint16_t v = entry_get(e, i == 0 ? 0 : 1);
		if (v == DK_SUFFIXSET_NONE)
			continue;
		out[found++] = (struct dk_suffixset_match){
		        .value = v, .offset = offs[i], .labels = (uint8_t)i, .below = i > 0};
	}
	return found;
}

size_t dk_suffixset_count(const struct dk_suffixset *s)
{
	return s ? s->count : 0;
}

size_t dk_suffixset_bytes(const struct dk_suffixset *s)
{
	if (!s)
		return 0;
	return sizeof(*s) + s->table.bytes + s->arena_blk.bytes;
}
