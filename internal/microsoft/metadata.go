package microsoft

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// metadataCache keeps Entra's authority metadata (the tenant's
// openid-configuration and MSAL's instance discovery answer) for a while.
// Every session has a new credential, whose MSAL client would otherwise
// fetch the metadata again before its first token; the metadata is the
// same for every session of a tenant. Only successful GETs of those two
// documents are kept; tokens never are.
type metadataCache struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	m   map[string]cachedMetadata
}

type cachedMetadata struct {
	header http.Header
	body   []byte
	exp    time.Time
}

func newMetadataCache(ttl time.Duration, max int) *metadataCache {
	return &metadataCache{ttl: ttl, max: max, m: map[string]cachedMetadata{}}
}

func isMetadata(req *http.Request) bool {
	if req.Method != http.MethodGet {
		return false
	}
	p := req.URL.Path
	return strings.HasSuffix(p, "/.well-known/openid-configuration") || strings.HasSuffix(p, "/discovery/instance")
}

func (c *metadataCache) get(req *http.Request) *http.Response {
	key := req.URL.String()
	c.mu.Lock()
	e, ok := c.m[key]
	if ok && time.Now().After(e.exp) {
		delete(c.m, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: e.header.Clone(), Body: io.NopCloser(bytes.NewReader(e.body)), ContentLength: int64(len(e.body)), Request: req,
	}
}

// put keeps resp's body and returns resp with the body readable again.
func (c *metadataCache) put(req *http.Request, resp *http.Response) *http.Response {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return resp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		now := time.Now()
		for k, e := range c.m {
			if now.After(e.exp) || len(c.m) >= c.max {
				delete(c.m, k)
			}
		}
	}
	c.m[req.URL.String()] = cachedMetadata{header: resp.Header.Clone(), body: b, exp: time.Now().Add(c.ttl)}
	return resp
}
