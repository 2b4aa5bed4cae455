package redistest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards connections to a Redis server and can fail the way a
// network does: lose a reply (the server applies the command, the client
// never hears back, its connection drops, and go-redis retries the command
// on a new connection), refuse every connection as a stopped Redis does
// (Cut), or accept connections and leave them silent as a host that is gone
// does (Blackhole), until Restore.
type Proxy struct {
	// Addr is where clients connect.
	Addr string

	target string
	mu     sync.Mutex
	l      net.Listener // nil while cut
	conns  map[net.Conn]bool
	silent bool     // blackholed: relay nothing
	drops  [][]byte // pending: drop the reply to the next command containing each
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept(l)
	t.Cleanup(func() {
		p.mu.Lock()
		if p.l != nil {
			p.l.Close()
		}
		p.dropConns()
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Cut closes every connection and refuses new ones (the port is closed):
// to a client, Redis is down.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	p.dropConns()
}

// Blackhole leaves the open connections and the new ones silent: commands
// are never forwarded and never answered, as when Redis's host is gone
// without closing anything.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent = true
}

// Restore ends a Cut or a Blackhole: new connections reach Redis again on
// the same address. Connections that were silent are closed (their
// commands are lost, as after a partition).
func (p *Proxy) Restore(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.silent {
		p.silent = false
		p.dropConns()
	}
	if p.l != nil {
		return
	}
	var err error
	for range 50 { // the port can take a moment to be free again
		var l net.Listener
		if l, err = net.Listen("tcp", p.Addr); err == nil {
			p.l = l
			p.wg.Add(1)
			go p.accept(l)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("redistest: proxy: listening again on %s: %v", p.Addr, err)
}

// dropConns closes every relayed connection; p.mu is held.
func (p *Proxy) dropConns() {
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *Proxy) isSilent() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.silent
}

// DropReplyOnce makes the proxy forward the next command whose bytes
// contain marker, let Redis apply it, and close the client's connection
// instead of passing the reply on.
func (p *Proxy) DropReplyOnce(marker string) {
	p.mu.Lock()
	p.drops = append(p.drops, []byte(marker))
	p.mu.Unlock()
}

// Pending reports how many armed drops have not happened yet.
func (p *Proxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.drops)
}

func (p *Proxy) accept(l net.Listener) {
	defer p.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.l != l { // cut meanwhile
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// take removes and reports the armed drop that cmd matches, if any.
func (p *Proxy) take(cmd []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, m := range p.drops {
		if bytes.Contains(cmd, m) {
			p.drops = append(p.drops[:i], p.drops[i+1:]...)
			return true
		}
	}
	return false
}

// serve relays one client connection both ways. After it forwards a
// command armed with DropReplyOnce, the next bytes from Redis (that
// command's reply: go-redis waits for a reply before it sends the next
// command on a connection) close the client's connection instead.
func (p *Proxy) serve(c net.Conn) {
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	var dropNext atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := s.Read(buf)
			if err != nil {
				return
			}
			if dropNext.Load() {
				return // applied by Redis, never answered
			}
			if p.isSilent() {
				continue
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		if p.isSilent() {
			continue // never forwarded
		}
		if p.take(buf[:n]) {
			dropNext.Store(true)
		}
		if _, err := s.Write(buf[:n]); err != nil {
			break
		}
	}
	s.Close()
	<-done
}
