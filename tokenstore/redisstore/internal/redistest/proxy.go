package redistest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards connections to a Redis server and can lose a reply the way
// a network does: the server applies the command, the client never hears
// back (its connection drops), and go-redis retries the command on a new
// connection.
type Proxy struct {
	// Addr is where clients connect.
	Addr string

	target string
	l      net.Listener
	mu     sync.Mutex
	drops  [][]byte // pending: drop the reply to the next command containing each
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, l: l}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
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

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
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
	defer c.Close()
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
