package ratelimit

import (
	"container/list"
	"math"
	"time"
)

// Limit is a token bucket's refill rate and size.
type Limit struct {
	RPS   float64 // tokens added per second; 0 or less: no limit
	Burst int     // the bucket's size: calls allowed at once after idling
}

// Off reports whether the limit limits nothing.
func (l Limit) Off() bool { return l.RPS <= 0 }

// normalized is l with a burst of at least one call (a bucket smaller
// than one token would refuse everything).
func (l Limit) normalized() Limit {
	if l.Burst < 1 {
		l.Burst = max(1, int(math.Ceil(l.RPS)))
	}
	return l
}

// bucket is one token bucket. It is full when created, so a bucket
// absent from a table and a full one behave alike: that is what makes
// evicting full buckets lossless.
type bucket struct {
	limit  Limit
	tokens float64
	last   time.Time     // when tokens was computed
	elem   *list.Element // its place in the table's recency list
	id     string

	// refusals not logged yet, and when the last line about it went out
	unlogged int64
	loggedAt time.Time

	// The caller's recent refusals, by which a caller that keeps calling
	// while refused is told apart from one that backs off (noteRefusal).
	refusedAt   time.Time // the last refusal's answer (a held one's is later)
	windowStart time.Time // refusals counts since then (at most a second ago)
	refusals    int
	holding     bool // refusals are held (Config.Hold)
}

// holdWindow is the window in which a bucket's refusals are counted, and
// how long a caller must go without a refusal to stop being held.
const holdWindow = time.Second

// minHoldAfter is the fewest refusals within holdWindow that make a
// bucket hold its refusals, whatever its burst.
const minHoldAfter = 20

// heldUntil records that a refusal is answered at t (a held one: after
// its hold), so that a client calling again as soon as it is answered is
// not taken for one that waited.
func (b *bucket) heldUntil(t time.Time) {
	if t.After(b.refusedAt) {
		b.refusedAt = t
	}
}

// noteRefusal counts a refusal at now and reports whether the caller is
// one that keeps calling while refused: more refusals within a second
// than the bucket's burst (at least minHoldAfter). Once it is, it stays
// one until a second passes after a refusal's answer without another
// refusal (a client honouring the retry delay gets a token then, so a
// refusal a second later is a new episode).
func (b *bucket) noteRefusal(now time.Time) bool {
	switch {
	case now.Sub(b.refusedAt) > holdWindow:
		b.holding, b.refusals, b.windowStart = false, 0, now
	case now.Sub(b.windowStart) > holdWindow:
		b.refusals, b.windowStart = 0, now
	}
	b.refusals++
	if now.After(b.refusedAt) {
		b.refusedAt = now
	}
	if b.refusals > max(b.limit.Burst, minHoldAfter) {
		b.holding = true
	}
	return b.holding
}

// refill adds the tokens earned since last (at most the burst).
func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(float64(b.limit.Burst), b.tokens+d.Seconds()*b.limit.RPS)
		b.last = now
	}
}

// full reports whether the bucket holds its burst at now (then dropping
// it loses nothing: a new one starts full).
func (b *bucket) full(now time.Time) bool {
	b.refill(now)
	return b.tokens >= float64(b.limit.Burst)
}

// wait is how long until one token is there (0 when it is).
func (b *bucket) wait() time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) / b.limit.RPS * float64(time.Second)))
}

// table holds one scope's buckets with a recency list: the least recently
// used at the back. Not safe for concurrent use (the Limiter's mutex
// guards it).
type table struct {
	m   map[string]*bucket
	lru *list.List
	max int
	// evicted counts buckets dropped before they were full (over max):
	// their callers got a fresh burst.
	evicted int64
}

func newTable(max int) *table {
	return &table{m: map[string]*bucket{}, lru: list.New(), max: max}
}

// get returns id's bucket, made full when absent, and marks it used. It
// first drops the least recently used buckets that are full (lossless),
// and beyond max the least recently used ones whatever they hold.
func (t *table) get(id string, l Limit, now time.Time) *bucket {
	if b, ok := t.m[id]; ok {
		t.lru.MoveToFront(b.elem)
		return b
	}
	t.trim(now, 1)
	b := &bucket{limit: l, tokens: float64(l.Burst), last: now, id: id}
	b.elem = t.lru.PushFront(b)
	t.m[id] = b
	return b
}

// trim drops full buckets from the back, then whatever is needed to leave
// room for extra more within max.
func (t *table) trim(now time.Time, extra int) {
	for e := t.lru.Back(); e != nil; e = t.lru.Back() {
		b := e.Value.(*bucket)
		over := len(t.m)+extra > t.max
		if !over && !b.full(now) {
			return
		}
		if over && !b.full(now) {
			t.evicted++
		}
		t.lru.Remove(e)
		delete(t.m, b.id)
	}
}

func (t *table) len() int { return len(t.m) }
