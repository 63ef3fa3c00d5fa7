package auth

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func cacheKey(n byte) ([32]byte, APIKey) {
	var h [32]byte
	h[0] = n
	return h, APIKey{Org: uuid.New(), ID: uuid.New(), Role: RoleViewer}
}

// TestKeyCache pins the cache's rules without a database: nothing is
// served until the listener is live; entries expire after the TTL; the
// size bound evicts the least recently used; an eviction, a flush or a
// listener state change in the middle of a lookup keeps its result out.
func TestKeyCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	c := NewKeyCache(time.Minute, 2)
	c.now = func() time.Time { return now }
	h1, k1 := cacheKey(1)
	h2, k2 := cacheKey(2)
	h3, k3 := cacheKey(3)

	// Not live: bypassed, nothing inserted.
	c.put(h1, k1, c.begin())
	if _, ok := c.get(h1); ok || c.Stats().Entries != 0 || c.Stats().Bypassed != 1 {
		t.Fatalf("served or cached while the listener is down: %+v", c.Stats())
	}
	c.SetLive(true)
	c.put(h1, k1, c.begin())
	if got, ok := c.get(h1); !ok || got.ID != k1.ID || got.Org != k1.Org || got.Role != RoleViewer {
		t.Fatalf("get after put: %v %v", got, ok)
	}

	// TTL.
	now = now.Add(time.Minute)
	if _, ok := c.get(h1); ok {
		t.Fatal("served after the TTL")
	}

	// Size bound: LRU out.
	c.put(h1, k1, c.begin())
	c.put(h2, k2, c.begin())
	c.get(h1) // h2 is now the least recently used
	c.put(h3, k3, c.begin())
	if _, ok := c.get(h2); ok || c.Stats().Entries != 2 {
		t.Fatalf("size bound: h2 still cached, %+v", c.Stats())
	}
	if _, ok := c.get(h1); !ok {
		t.Fatal("the recently used key was evicted")
	}

	// Evict by organization and ID.
	c.Evict(k1.Org, k1.ID)
	if _, ok := c.get(h1); ok {
		t.Fatal("served after Evict")
	}
	if _, ok := c.get(h3); !ok {
		t.Fatal("Evict removed another key")
	}

	// A lookup racing an invalidation does not insert.
	for name, invalidate := range map[string]func(){
		"evict":  func() { c.Evict(uuid.New(), uuid.New()) },
		"flush":  c.Flush,
		"relive": func() { c.SetLive(false); c.SetLive(true) },
	} {
		epoch := c.begin()
		invalidate()
		c.put(h2, k2, epoch)
		if _, ok := c.get(h2); ok {
			t.Fatalf("%s during the lookup: its result was cached", name)
		}
	}

	// Going down flushes.
	c.put(h2, k2, c.begin())
	c.SetLive(false)
	c.SetLive(true)
	if c.Stats().Entries != 0 {
		t.Fatalf("entries survived the listener going down: %+v", c.Stats())
	}
	if NewKeyCache(0, 10) != nil {
		t.Fatal("a zero TTL must turn the cache off")
	}
}
