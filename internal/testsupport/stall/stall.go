// Package stall is a TCP proxy for tests that can stall a dependency the
// way a paused process or a black-holed network does: connections are
// accepted, bytes are not forwarded until Resume. Tests point a service at
// Addr instead of the real dependency.
package stall

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards connections to a target until paused.
type Proxy struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	paused bool
	resume chan struct{} // closed by Resume
	open   map[net.Conn]bool
}

// New starts a proxy to target (host:port); it stops at t.Cleanup.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target, resume: make(chan struct{}), open: map[net.Conn]bool{}}
	close(p.resume)
	var conns sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		_ = l.Close()
		p.Resume()
		// Clients keep idle connections for minutes: close them.
		p.mu.Lock()
		for c := range p.open {
			_ = c.Close()
		}
		p.mu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { p.serve(c, done) })
		}
	}()
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Pause stops forwarding: bytes sent either way wait, as to a stopped
// process, until Resume.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		p.paused, p.resume = true, make(chan struct{})
	}
}

// Resume forwards again, the waiting bytes first.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.paused = false
		close(p.resume)
	}
}

func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resume
}

func (p *Proxy) serve(c net.Conn, done <-chan struct{}) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	p.mu.Lock()
	p.open[c], p.open[up] = true, true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.open, c)
		delete(p.open, up)
		p.mu.Unlock()
	}()
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(up, c, done); _ = up.Close() })
	wg.Go(func() { p.pipe(c, up, done); _ = c.Close() })
	wg.Wait()
}

// pipe copies src to dst, holding each chunk while the proxy is paused.
func (p *Proxy) pipe(dst io.Writer, src io.Reader, done <-chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.gate():
			case <-done:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
