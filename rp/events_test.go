package rp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

type eventLog struct {
	mu sync.Mutex
	ev []event.Event
}

func (l *eventLog) Observe(_ context.Context, e event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

func (l *eventLog) named(n event.Name) []event.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event.Event
	for _, e := range l.ev {
		if e.Name == n {
			out = append(out, e)
		}
	}
	return out
}

// TestAccessTokenVerifierEvents: an Observer counts what an API's metrics
// need without reading a log line: each check with its duration and
// whether the cache answered, the reason of a refusal, each JWKS fetch
// (timed) and each unknown key not fetched again for the cooldown.
func TestAccessTokenVerifierEvents(t *testing.T) {
	op := oidctest.New(t)
	obs := &eventLog{}
	p, err := rp.Discover(context.Background(), op.Issuer, &rp.ProviderOptions{JWKSCooldown: time.Hour, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{apiAud}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	good := op.Signer().Sign(atClaims(op, time.Now()), atHeader)
	for range 2 {
		if _, err := v.Verify(ctx, good); err != nil {
			t.Fatal(err)
		}
	}
	for _, kid := range []string{"unknown-1", "unknown-2"} {
		if _, err := v.Verify(ctx, op.Signer().Sign(atClaims(op, time.Now()), oidctest.Header{"typ": "at+jwt", "kid": kid})); err == nil {
			t.Fatal("unknown kid accepted")
		}
	}
	checks := obs.named(event.AccessToken)
	if len(checks) != 4 {
		t.Fatalf("%d access-token events, want 4: %+v", len(checks), checks)
	}
	if e := checks[0]; e.CacheHit || e.Duration <= 0 || e.Err != nil || e.Issuer != op.Issuer {
		t.Errorf("first check %+v", e)
	}
	if e := checks[1]; !e.CacheHit || e.Err != nil {
		t.Errorf("second check %+v, want a cache hit", e)
	}
	if e := checks[3]; e.Reason != string(rp.CodeUnknownKey) || e.Class != "invalid" {
		t.Errorf("refusal %+v", e)
	}
	fetches := obs.named(event.JWKSFetch)
	if len(fetches) != 1 || fetches[0].Duration <= 0 || fetches[0].Err != nil {
		t.Errorf("JWKS fetches %+v, want one (the first token's key)", fetches)
	}
	if n := len(obs.named(event.JWKSCooldown)); n != 2 {
		t.Errorf("%d cooldown events, want 2 (the unknown kids, within the cooldown of the first fetch)", n)
	}
}

// TestClientAuthEvent: the outcome OnClientAuth is told is also an
// event.ClientAuth for the Provider's Observer; both hooks work together.
func TestClientAuthEvent(t *testing.T) {
	op := oidctest.New(t)
	op.AddClient(oidctest.Client{ID: clientID, Secret: secret, AuthMethod: rp.AuthClientSecretPost})
	obs := &eventLog{}
	var told observed
	c := newClient(t, op, func(s *setup) { s.Observer, s.OnClientAuth = obs, told.hook })
	if err := c.CheckClientAuth(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := obs.named(event.ClientAuth)
	if len(evs) != 1 || told.len() != 1 {
		t.Fatalf("%d events, %d OnClientAuth calls", len(evs), told.len())
	}
	e := evs[0]
	if e.ClientID != clientID || e.Issuer != op.Issuer || e.Err != nil || len(e.Attrs) == 0 || e.Attrs[0].Value.String() != rp.AuthClientSecretPost {
		t.Errorf("client auth event %+v", e)
	}
}
