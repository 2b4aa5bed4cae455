package backchannel_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/syncbuf"

	"github.com/multiapp-go/multiapp/backchannel"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

const (
	clientID = "webc_app"
	event    = "http://schemas.openid.net/event/backchannel-logout"
)

type fixture struct {
	op    *oidctest.OP
	store *tokenstore.Memory
	h     *backchannel.Handler
	logs  *syncbuf.Buffer
}

func newFixture(t *testing.T) *fixture {
	op := oidctest.New(t)
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := provider.Client(rp.Config{ClientID: clientID, ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{op: op, store: tokenstore.NewMemory(tokenstore.MemoryOptions{}), logs: &syncbuf.Buffer{}}
	t.Cleanup(func() { f.store.Close() })
	f.h = &backchannel.Handler{Verifier: c, Store: f.store, Logger: slog.New(slog.NewJSONHandler(f.logs, nil))}
	return f
}

func (f *fixture) session(t *testing.T, sub, sid string) string {
	id := tokenstore.NewID()
	now := time.Now()
	err := f.store.Create(context.Background(), &tokenstore.Session{
		ID: id, Issuer: f.op.Issuer, Subject: sub, SID: sid, ClientID: clientID,
		IssuedAt: now.Add(-time.Minute), CreatedAt: now, ExpiresAt: now.Add(time.Hour), Tokens: tokenstore.Tokens{AccessToken: "at", RefreshToken: "rt-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) alive(id string) bool {
	_, err := f.store.Get(context.Background(), id)
	return err == nil
}

func (f *fixture) claims(mut func(map[string]any)) map[string]any {
	now := time.Now().Unix()
	m := map[string]any{
		"iss": f.op.Issuer, "aud": clientID, "iat": now, "exp": now + 120, "jti": "jti-" + tokenstore.NewID()[:8],
		"sub": "usr_1", "sid": "ses_1", "events": map[string]any{event: map[string]any{}},
	}
	if mut != nil {
		mut(m)
	}
	return m
}

func (f *fixture) token(mut func(map[string]any)) string {
	return f.op.Signer().Sign(f.claims(mut), oidctest.Header{"typ": "logout+jwt"})
}

func post(h http.Handler, form string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/auth/backchannel-logout", strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLogoutBySID(t *testing.T) {
	f := newFixture(t)
	s1 := f.session(t, "usr_1", "ses_1")
	s1b := f.session(t, "usr_1", "ses_1")
	noSID := f.session(t, "usr_1", "")
	otherSID := f.session(t, "usr_1", "ses_2")
	otherUser := f.session(t, "usr_2", "ses_3")

	w := post(f.h, "logout_token="+f.token(nil))
	if w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %q %s", w.Code, w.Header().Get("Cache-Control"), w.Body)
	}
	if f.alive(s1) || f.alive(s1b) || f.alive(noSID) {
		t.Fatal("sessions of the sid (or the sub without sid) survived")
	}
	if !f.alive(otherSID) || !f.alive(otherUser) {
		t.Fatal("unrelated sessions ended")
	}
	if revoked, _ := f.store.SIDRevoked(context.Background(), f.op.Issuer, "ses_1"); !revoked {
		t.Fatal("sid not marked revoked")
	}
	// A login completing after the logout cannot bring the OP session back.
	err := f.store.Create(context.Background(), &tokenstore.Session{ID: tokenstore.NewID(), Issuer: f.op.Issuer, Subject: "usr_1", SID: "ses_1", ExpiresAt: time.Now().Add(time.Hour)})
	if err == nil {
		t.Fatal("session of a logged-out sid created")
	}
	var ev map[string]any
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		_ = json.Unmarshal([]byte(line), &ev)
		if ev["msg"] == "multiapp.backchannel_logout" {
			break
		}
	}
	if ev["msg"] != "multiapp.backchannel_logout" || ev["sessions_ended"] != 3.0 || ev["sid"] != "ses_1" || ev["sub"] != "usr_1" || ev["iss"] != f.op.Issuer {
		t.Fatalf("audit event %v", ev)
	}
	if strings.Contains(f.logs.String(), "eyJ") || strings.Contains(f.logs.String(), "rt-secret") {
		t.Fatal("a token was logged")
	}
}

func TestLogoutBySubjectOnly(t *testing.T) {
	f := newFixture(t)
	a := f.session(t, "usr_1", "ses_1")
	b := f.session(t, "usr_1", "ses_2")
	c := f.session(t, "usr_2", "ses_3")
	w := post(f.h, "logout_token="+f.token(func(m map[string]any) { delete(m, "sid") }))
	if w.Code != 200 || f.alive(a) || f.alive(b) || !f.alive(c) {
		t.Fatalf("%d %v %v %v", w.Code, f.alive(a), f.alive(b), f.alive(c))
	}
}

// A login of the subject that completes after a subject-only logout, with
// an ID token the OP issued before it, is refused; the user's next sign-in
// (a later ID token) is not.
func TestSubjectOnlyLogoutRefusesLoginInFlight(t *testing.T) {
	f := newFixture(t)
	iat := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	tok := f.token(func(m map[string]any) { delete(m, "sid"); m["iat"] = iat.Unix() })
	if w := post(f.h, "logout_token="+tok); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	login := func(issued time.Time) error {
		return f.store.Create(context.Background(), &tokenstore.Session{
			ID: tokenstore.NewID(), Issuer: f.op.Issuer, Subject: "usr_1", SID: "ses_9", ClientID: clientID,
			IssuedAt: issued, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
		})
	}
	if err := login(iat.Add(-time.Second)); !errors.Is(err, tokenstore.ErrRevoked) {
		t.Fatalf("login issued before the subject's logout: %v, want ErrRevoked", err)
	}
	if err := login(iat.Add(time.Second)); err != nil {
		t.Fatalf("sign-in after the logout: %v", err)
	}
}

func TestHydraShapedToken(t *testing.T) {
	f := newFixture(t)
	a := f.session(t, "usr_1", "ses_1")
	tok := f.op.Signer().Sign(f.claims(func(m map[string]any) {
		delete(m, "sub")
		delete(m, "exp")
		m["aud"] = []string{clientID}
	}), oidctest.Header{"typ": "JWT"})
	if w := post(f.h, "logout_token="+tok); w.Code != 200 || f.alive(a) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestNothingMatchedIs200(t *testing.T) {
	f := newFixture(t)
	if w := post(f.h, "logout_token="+f.token(nil)); w.Code != 200 {
		t.Fatalf("%d", w.Code)
	}
}

// Every bad request gets 400 with a JSON error, and the session survives.
func TestRejects(t *testing.T) {
	f := newFixture(t)
	// A logout of another subject, without sid: sessions of usr_1 and ses_1
	// can still be created below for the cases to aim at.
	replayed := f.token(func(m map[string]any) { delete(m, "sid"); m["sub"] = "usr_9" })
	if w := post(f.h, "logout_token="+replayed); w.Code != 200 {
		t.Fatal(w.Code)
	}
	stranger := oidctest.NewKey("k1", "RS256")
	cases := map[string]string{
		"replayed jti":   "logout_token=" + replayed,
		"bad signature":  "logout_token=" + f.token(nil)[:len(f.token(nil))-6] + "AAAAAA",
		"stranger's key": "logout_token=" + stranger.Sign(f.claims(nil), nil),
		"alg none":       "logout_token=" + oidctest.Unsigned(f.claims(nil)),
		"HMAC confusion": "logout_token=" + f.op.Signer().SignHMACWithPublicKey(f.claims(nil)),
		"wrong iss":      "logout_token=" + f.token(func(m map[string]any) { m["iss"] = "https://evil" }),
		"wrong aud":      "logout_token=" + f.token(func(m map[string]any) { m["aud"] = "webc_other" }),
		"no iat":         "logout_token=" + f.token(func(m map[string]any) { delete(m, "iat") }),
		"old iat":        "logout_token=" + f.token(func(m map[string]any) { m["iat"] = time.Now().Add(-time.Hour).Unix(); delete(m, "exp") }),
		"expired":        "logout_token=" + f.token(func(m map[string]any) { m["exp"] = time.Now().Add(-5 * time.Minute).Unix() }),
		"no jti":         "logout_token=" + f.token(func(m map[string]any) { delete(m, "jti") }),
		"no events":      "logout_token=" + f.token(func(m map[string]any) { delete(m, "events") }),
		"nonce":          "logout_token=" + f.token(func(m map[string]any) { m["nonce"] = "x" }),
		"no sub nor sid": "logout_token=" + f.token(func(m map[string]any) { delete(m, "sub"); delete(m, "sid") }),
		"typ at+jwt":     "logout_token=" + f.op.Signer().Sign(f.claims(nil), oidctest.Header{"typ": "at+jwt"}),
		"an ID token":    "logout_token=" + f.op.Signer().Sign(f.op.IDClaims(clientID, "usr_1", "n"), nil),
		"missing token":  "",
		"empty token":    "logout_token=",
		"two tokens":     "logout_token=" + f.token(nil) + "&logout_token=" + f.token(nil),
		"garbage":        "logout_token=%%%",
		"not a JWT":      "logout_token=hello",
	}
	for name, form := range cases {
		t.Run(name, func(t *testing.T) {
			s := f.session(t, "usr_1", "ses_1")
			w := post(f.h, form)
			if w.Code != 400 {
				t.Fatalf("status %d, want 400: %s", w.Code, w.Body)
			}
			var e map[string]string
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e["error"] != "invalid_request" || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("body %q headers %v", w.Body, w.Header())
			}
			if !f.alive(s) {
				t.Fatal("a bad request ended a session")
			}
			_ = f.store.Delete(context.Background(), s)
		})
	}
}

func TestHTTPLevelRejects(t *testing.T) {
	f := newFixture(t)
	s := f.session(t, "usr_1", "ses_1")
	get := httptest.NewRecorder()
	f.h.ServeHTTP(get, httptest.NewRequest("GET", "/?logout_token="+url.QueryEscape(f.token(nil)), nil))
	if get.Code != http.StatusMethodNotAllowed || get.Header().Get("Allow") != "POST" {
		t.Fatalf("GET: %d", get.Code)
	}
	json := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"logout_token":"x"}`))
	r.Header.Set("Content-Type", "application/json")
	f.h.ServeHTTP(json, r)
	if json.Code != 400 {
		t.Fatalf("JSON body: %d", json.Code)
	}
	inQuery := httptest.NewRecorder()
	r = httptest.NewRequest("POST", "/?logout_token="+url.QueryEscape(f.token(nil)), strings.NewReader(""))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	f.h.ServeHTTP(inQuery, r)
	if inQuery.Code != 400 {
		t.Fatalf("token in query: %d", inQuery.Code)
	}
	big := post(f.h, "logout_token="+strings.Repeat("a", 100<<10))
	if big.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %d", big.Code)
	}
	if !f.alive(s) {
		t.Fatal("session ended")
	}
}

type downStore struct{ tokenstore.Store }

func (downStore) UseOnce(context.Context, string, string, string, time.Duration) (bool, error) {
	return false, tokenstore.ErrUnavailable
}

func TestStoreDownIs503(t *testing.T) {
	f := newFixture(t)
	f.h.Store = downStore{f.store}
	w := post(f.h, "logout_token="+f.token(nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d", w.Code)
	}
}

type deleteFails struct{ tokenstore.Store }

func (deleteFails) DeleteBySID(context.Context, string, string, string) (int, error) {
	return 0, tokenstore.ErrUnavailable
}

// A store that fails half-way still leaves the user signed out: the sid
// was revoked before the deletes, and revoked sessions are not readable.
func TestPartialStoreFailureStillSignsOut(t *testing.T) {
	f := newFixture(t)
	s := f.session(t, "usr_1", "ses_1")
	f.h.Store = deleteFails{f.store}
	w := post(f.h, "logout_token="+f.token(nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("%d", w.Code)
	}
	if f.alive(s) {
		t.Fatal("session still readable after its OP session was revoked")
	}
}

// TestHandlerUsesItsSliceOnly: a Handler given nothing but the roles it
// names (no Get, no Create) ends the sessions of a logout and refuses its
// replay.
func TestHandlerUsesItsSliceOnly(t *testing.T) {
	f := newFixture(t)
	f.h.Store = struct {
		tokenstore.Logouts
		tokenstore.OneTimeKeys
	}{f.store, f.store}
	s := f.session(t, "usr_1", "ses_1")
	tok := f.token(nil)
	if w := post(f.h, "logout_token="+tok); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if f.alive(s) {
		t.Fatal("the session survived the logout")
	}
	if w := post(f.h, "logout_token="+tok); w.Code != 400 {
		t.Fatalf("replay: %d %s, want 400", w.Code, w.Body)
	}
}

var _ backchannel.Store = tokenstore.Store(nil)
