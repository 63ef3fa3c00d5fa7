package microsoft

import (
	"hash/fnv"
	"net/http"
	"sync/atomic"
)

// connPool spreads requests over several HTTP transports, so over several
// connections per host: HTTP/2 puts every request to a host on one TCP
// connection per transport, and with many provisionings at once their
// requests queue on that connection's write lock (BenchmarkProvision's
// mutex profile: http2clientStream.encodeAndWriteHeaders). A caller
// (tenant and client ID, withCaller) always uses the same transport, so
// its requests keep one connection; the one-request-in-flight-per-caller
// rule is retryTransport's and is unchanged. Requests without a caller
// take the transports in turn.
type connPool struct {
	ts   []*http.Transport
	next atomic.Uint32
}

func newConnPool(n int, mk func() *http.Transport) *connPool {
	p := &connPool{ts: make([]*http.Transport, max(n, 1))}
	for i := range p.ts {
		p.ts[i] = mk()
	}
	return p
}

func (p *connPool) RoundTrip(req *http.Request) (*http.Response, error) {
	return p.pick(req).RoundTrip(req)
}

func (p *connPool) pick(req *http.Request) *http.Transport {
	if len(p.ts) == 1 {
		return p.ts[0]
	}
	if who, _ := req.Context().Value(callerKey{}).(string); who != "" {
		h := fnv.New32a()
		_, _ = h.Write([]byte(who))
		return p.ts[h.Sum32()%uint32(len(p.ts))]
	}
	return p.ts[p.next.Add(1)%uint32(len(p.ts))]
}

// CloseIdleConnections closes every transport's idle connections.
func (p *connPool) CloseIdleConnections() {
	for _, t := range p.ts {
		t.CloseIdleConnections()
	}
}
