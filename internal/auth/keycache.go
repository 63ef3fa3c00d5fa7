package auth

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// KeyCache remembers authenticated API keys for a short time (issue 11
// item 10), so a call does not look its key up in Postgres before its real
// query. It is safe for concurrent use.
//
// What it holds: for a key's SHA-256 hash, the key's organization, ID,
// role and expiry (never the key). Entries live at most TTL and at most
// Size of them (least recently used first out). Refusals are never
// cached, so a key works on every replica the moment its creation
// commits. Expiry is checked on every call from the cached expiry time.
//
// Invalidation reaches every replica: a trigger on api_keys notifies
// every change and deletion on commit (migrations/00025), and each
// replica's listener (internal/postgres APIKeyListener) calls Evict. The
// cache serves entries only while that listener is connected (SetLive):
// when its connection drops, notifications may be lost, so the cache is
// flushed and bypassed (every call reads Postgres) until LISTEN is
// established again. A deleted key is thus refused by every replica
// within the notification's latency (milliseconds) while the listener is
// up, and at once while it is down; TTL bounds the rest (a listener whose
// network silently died, until its heartbeat notices).
//
// A lookup racing with an invalidation cannot re-insert what was just
// evicted: every eviction, flush and state change advances an epoch, and
// a lookup's result is cached only if the epoch it read before asking
// Postgres is still current.
type KeyCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time

	mu     sync.Mutex
	lru    *list.List // of *cachedKey, most recent first
	byHash map[[32]byte]*list.Element
	byID   map[keyRef]*list.Element
	epoch  uint64
	live   bool // the listener is connected: entries may be served

	hits, misses, bypassed, evictions, flushes atomic.Uint64
}

// keyRef names a key as the trigger does.
type keyRef struct{ org, id uuid.UUID }

type cachedKey struct {
	hash  [32]byte
	key   APIKey // Org, ID, Role, ExpireTime only
	until time.Time
}

// DefaultKeyCacheSize is the default bound on cached keys.
const DefaultKeyCacheSize = 10000

// NewKeyCache returns a cache of at most size keys (DefaultKeyCacheSize
// when size <= 0), each kept at most ttl; nil when ttl <= 0 (no cache).
// It serves nothing until SetLive(true).
func NewKeyCache(ttl time.Duration, size int) *KeyCache {
	if ttl <= 0 {
		return nil
	}
	if size <= 0 {
		size = DefaultKeyCacheSize
	}
	return &KeyCache{ttl: ttl, size: size, now: time.Now, lru: list.New(),
		byHash: map[[32]byte]*list.Element{}, byID: map[keyRef]*list.Element{}}
}

// get returns the cached key for hash.
func (c *KeyCache) get(hash [32]byte) (APIKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		c.bypassed.Add(1)
		return APIKey{}, false
	}
	e, ok := c.byHash[hash]
	if !ok {
		c.misses.Add(1)
		return APIKey{}, false
	}
	ck := e.Value.(*cachedKey)
	if !c.now().Before(ck.until) {
		c.remove(e)
		c.misses.Add(1)
		return APIKey{}, false
	}
	c.lru.MoveToFront(e)
	c.hits.Add(1)
	return ck.key, true
}

// begin returns the epoch a lookup must still see when it calls put.
func (c *KeyCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// put caches k, found by hash after begin returned epoch, unless anything
// was invalidated meanwhile or the listener is down.
func (c *KeyCache) put(hash [32]byte, k APIKey, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || epoch != c.epoch {
		return
	}
	if e, ok := c.byHash[hash]; ok {
		c.remove(e)
	}
	ck := &cachedKey{hash: hash, key: APIKey{Org: k.Org, ID: k.ID, Role: k.Role, ExpireTime: k.ExpireTime}, until: c.now().Add(c.ttl)}
	e := c.lru.PushFront(ck)
	c.byHash[hash] = e
	c.byID[keyRef{k.Org, k.ID}] = e
	for c.lru.Len() > c.size {
		c.remove(c.lru.Back())
	}
}

func (c *KeyCache) remove(e *list.Element) {
	ck := c.lru.Remove(e).(*cachedKey)
	delete(c.byHash, ck.hash)
	if c.byID[keyRef{ck.key.Org, ck.key.ID}] == e {
		delete(c.byID, keyRef{ck.key.Org, ck.key.ID})
	}
}

// Evict forgets the key org/id (it was changed or deleted).
func (c *KeyCache) Evict(org, id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.evictions.Add(1)
	if e, ok := c.byID[keyRef{org, id}]; ok {
		c.remove(e)
	}
}

// Flush forgets every key.
func (c *KeyCache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *KeyCache) flushLocked() {
	c.epoch++
	c.flushes.Add(1)
	c.lru.Init()
	clear(c.byHash)
	clear(c.byID)
}

// SetLive says whether invalidations are being received. Either way the
// cache is flushed: going down, what it holds may miss an invalidation;
// coming up, lookups that began while it was down must not insert.
func (c *KeyCache) SetLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	c.live = live
}

// KeyCacheStats is a snapshot of the cache (readiness details, tests).
type KeyCacheStats struct {
	Live      bool          `json:"listening"`
	Entries   int           `json:"entries"`
	Size      int           `json:"max_entries"`
	TTL       time.Duration `json:"-"`
	TTLText   string        `json:"ttl"`
	Hits      uint64        `json:"hits"`
	Misses    uint64        `json:"misses"`
	Bypassed  uint64        `json:"bypassed"`
	Evictions uint64        `json:"evictions"`
	Flushes   uint64        `json:"flushes"`
}

// Stats returns the cache's state and counters.
func (c *KeyCache) Stats() KeyCacheStats {
	c.mu.Lock()
	live, n := c.live, c.lru.Len()
	c.mu.Unlock()
	return KeyCacheStats{Live: live, Entries: n, Size: c.size, TTL: c.ttl, TTLText: c.ttl.String(),
		Hits: c.hits.Load(), Misses: c.misses.Load(), Bypassed: c.bypassed.Load(),
		Evictions: c.evictions.Load(), Flushes: c.flushes.Load()}
}

// Register adds the cache's metrics to reg:
// dzconnect_api_key_cache_listener_up (1 while invalidations are
// received), dzconnect_api_key_cache_entries, and the counters
// dzconnect_api_key_cache_lookups_total{result="hit|miss|bypass"},
// dzconnect_api_key_cache_evictions_total and
// dzconnect_api_key_cache_flushes_total.
func (c *KeyCache) Register(reg prometheus.Registerer) error {
	lookups := func(result string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dzconnect_api_key_cache_lookups_total",
			Help:        "API-key authentications by cache result: hit, miss (looked up in Postgres) or bypass (listener down: Postgres).",
			ConstLabels: prometheus.Labels{"result": result}}, func() float64 { return float64(v.Load()) })
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dzconnect_api_key_cache_listener_up",
			Help: "1 while this replica's LISTEN connection for API-key invalidations is established (the key cache is used); 0 while it is bypassed."},
			func() float64 {
				if c.Stats().Live {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dzconnect_api_key_cache_entries", Help: "API keys in this replica's cache."},
			func() float64 { return float64(c.Stats().Entries) }),
		lookups("hit", &c.hits), lookups("miss", &c.misses), lookups("bypass", &c.bypassed),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dzconnect_api_key_cache_evictions_total",
			Help: "API-key invalidations received (a key changed or deleted on any replica)."}, func() float64 { return float64(c.evictions.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dzconnect_api_key_cache_flushes_total",
			Help: "Whole-cache flushes (listener connected or lost, truncate)."}, func() float64 { return float64(c.flushes.Load()) }),
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	return nil
}
