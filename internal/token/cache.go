package token

import (
	"container/list"
	"sync"
	"time"

	"github.com/google/uuid"
)

// cacheKey names a cached token: the integration, the API, and the
// fingerprint of the credential it was obtained with, so that a credential
// change never finds the old credential's token.
type cacheKey struct {
	org, integration uuid.UUID
	api              API
	credential       string
}

func (k cacheKey) String() string {
	return k.org.String() + "/" + k.integration.String() + "/" + string(k.api) + "/" + k.credential
}

type entry struct {
	tok       Token
	refreshAt time.Time // from here on a call starts a background refresh
}

// lru is a bounded least-recently-used map of tokens. Entries of a
// replaced credential are never looked up again and fall off the end.
type lru struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front: most recent; values *lruItem
	items map[cacheKey]*list.Element
}

type lruItem struct {
	key cacheKey
	e   entry
}

func newLRU(max int) *lru {
	return &lru{max: max, ll: list.New(), items: make(map[cacheKey]*list.Element, max)}
}

func (c *lru) get(k cacheKey) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return entry{}, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*lruItem).e, true
}

func (c *lru) put(k cacheKey, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value.(*lruItem).e = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&lruItem{key: k, e: e})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruItem).key)
	}
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
