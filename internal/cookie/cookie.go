// Package cookie writes the cookies of multiapp (session handle, login
// transactions) with one policy: HttpOnly, SameSite=Lax, Secure and the
// __Host- prefix except on plain-http loopback development (see
// internal/loopback for what counts as loopback).
package cookie

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/multiapp-go/multiapp/internal/loopback"
)

// Policy holds the attributes shared by every cookie of one app.
type Policy struct {
	// Secure marks cookies Secure (https only). Name adds the __Host- prefix
	// when it is set.
	Secure bool
}

// PolicyFor derives the policy from the app's public URL (its redirect
// URL): Secure everywhere except a plain-http URL on a loopback host, where
// browsers would not send Secure cookies back. An empty or unparsable URL
// gets the strict policy.
func PolicyFor(appURL string) Policy {
	return Policy{Secure: !loopback.PlainHTTP(appURL)}
}

// Name returns the cookie name for base under this policy: "__Host-"+base
// when Secure (the browser then enforces Secure, Path=/ and no Domain, so a
// sibling subdomain cannot plant or overwrite it).
func (p Policy) Name(base string) string {
	if p.Secure && !strings.HasPrefix(base, "__Host-") {
		return "__Host-" + base
	}
	return base
}

// Set writes a cookie that lives for maxAge (0: a browser-session cookie).
func (p Policy) Set(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   p.Secure,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
		c.Expires = time.Now().Add(maxAge)
	}
	http.SetCookie(w, c)
}

// Clear tells the browser to drop the cookie.
func (p Policy) Clear(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    "",
		Path:     "/",
		HttpOnly: true,
		Secure:   p.Secure,
		SameSite: http.SameSiteLaxMode,
		MaxAge:   -1,
		Expires:  time.Unix(0, 0),
	})
}

// MinKeyLen is the shortest cookie key accepted: 32 bytes of entropy.
const MinKeyLen = 32

// Codecs builds one securecookie codec per key (first = current, the rest
// decode only, for rotation). Each key yields an HMAC-SHA256 key and an
// AES-256 key by HMAC-based derivation, so a user manages one secret per
// generation. maxAge bounds the age securecookie accepts (0: no bound).
func Codecs(keys [][]byte, maxAge time.Duration) ([]securecookie.Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("no cookie key: set at least one key of 32 random bytes or more")
	}
	out := make([]securecookie.Codec, 0, len(keys))
	for i, k := range keys {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("cookie key %d is %d bytes: use at least %d random bytes", i, len(k), MinKeyLen)
		}
		sc := securecookie.New(derive(k, "multiapp cookie mac"), derive(k, "multiapp cookie enc"))
		sc.MaxAge(int(maxAge / time.Second))
		sc.MaxLength(8192)
		sc.SetSerializer(securecookie.JSONEncoder{})
		out = append(out, sc)
	}
	return out, nil
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}
