package tokenstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/tokenstore"
)

func TestCheckLifetime(t *testing.T) {
	t0 := time.Date(2031, 1, 1, 12, 0, 0, 0, time.UTC)
	base := tokenstore.Session{
		ID: "id", Subject: "alice", SID: "s1", LastSeen: t0, ExpiresAt: t0.Add(time.Hour),
		IdleTimeout: 10 * time.Minute, Tokens: tokenstore.Tokens{AccessToken: "at", RefreshToken: "rt", IDToken: "it", Claims: []byte(`{}`)},
	}
	for _, tc := range []struct {
		name string
		edit func(s *tokenstore.Session)
		now  time.Time
		want string // "" live
	}{
		{"fresh", nil, t0, ""},
		{"just before the idle end", nil, t0.Add(10*time.Minute - time.Nanosecond), ""},
		{"at the idle end", nil, t0.Add(10 * time.Minute), tokenstore.ExpiredIdle},
		{"no idle timeout", func(s *tokenstore.Session) { s.IdleTimeout = 0 }, t0.Add(59 * time.Minute), ""},
		{"negative idle timeout", func(s *tokenstore.Session) { s.IdleTimeout = -time.Second }, t0.Add(59 * time.Minute), ""},
		{"at ExpiresAt", func(s *tokenstore.Session) { s.IdleTimeout = 0 }, t0.Add(time.Hour), tokenstore.ExpiredLifetime},
		{"both over: the absolute end is the reason", nil, t0.Add(2 * time.Hour), tokenstore.ExpiredLifetime},
		{"no ExpiresAt", func(s *tokenstore.Session) { s.ExpiresAt, s.IdleTimeout = time.Time{}, 0 }, t0.Add(1000 * time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			if tc.edit != nil {
				tc.edit(&s)
			}
			err := s.CheckLifetime(tc.now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckLifetime = %v, want nil", err)
				}
				return
			}
			var ee *tokenstore.ExpiredError
			if !errors.As(err, &ee) || !errors.Is(err, tokenstore.ErrNotFound) || !errors.Is(err, tokenstore.ErrExpired) {
				t.Fatalf("CheckLifetime = %v, want an *ExpiredError that is ErrNotFound and ErrExpired", err)
			}
			if ee.Reason != tc.want {
				t.Errorf("Reason = %q, want %q", ee.Reason, tc.want)
			}
			if ee.Session.Subject != "alice" || ee.Session.ID != "id" || ee.Session.AccessToken != "" || ee.Session.RefreshToken != "" || ee.Session.IDToken != "" || ee.Session.Claims != nil {
				t.Errorf("ExpiredError.Session = %+v, want the session without its tokens", ee.Session)
			}
			if s.AccessToken != "at" {
				t.Error("CheckLifetime changed the session")
			}
		})
	}
}
