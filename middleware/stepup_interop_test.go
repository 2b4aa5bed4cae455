package middleware_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/event"
	"github.com/multiapp-go/multiapp/internal/nodeop"
	"github.com/multiapp-go/multiapp/middleware"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

// TestStepUpInteropNodeOIDCProvider: step-up authentication (RFC 9470)
// end to end against node-oidc-provider, whose users sign in at
// urn:example:low and, when asked with acr_values, at urn:example:high
// (alice can, bob cannot).
//
//   - alice signs in (low) and pays: the API refuses her access token with
//     insufficient_user_authentication and acr_values; the web app starts
//     the step-up; the OP shows its login form again; the new tokens say
//     high and the payment goes through, all in one navigation;
//   - a web route that needs high now serves her without a sign-in;
//   - a web route with a max_age is met by the OP's session without a login
//     form (the OP re-issues with auth_time; her sign-in is recent);
//   - a refresh keeps her level (the refreshed ID token keeps acr);
//   - the API's max_age route refuses her access token once her sign-in is
//     older than it, with max_age; the step-up makes her authenticate anew
//     and the fresh token passes;
//   - bob cannot reach high: his step-up ends on the 403 page, he stays
//     signed in at low, and nothing loops.
func TestStepUpInteropNodeOIDCProvider(t *testing.T) {
	const api = "https://api.example.test"
	const low, high = "urn:example:low", "urn:example:high"
	app := startRealApp(t, "webc_bank")
	op := nodeop.Start(t, nodeop.Config{
		Clients:   []nodeop.Client{app.client(false)},
		ACRValues: []string{low, high},
		Users: []nodeop.User{
			{ID: "usr_alice", Email: "alice@example.test", Password: "pw", ACRs: []string{low, high}},
			{ID: "usr_bob", Email: "bob@example.test", Password: "pw", ACRs: []string{low}},
		},
		Resource: &nodeop.Resource{Audience: api, Scopes: []string{"payments"}},
	})
	ctx := context.Background()
	provider, err := rp.Discover(ctx, op.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(op.Issuer + "/.well-known/openid-configuration"); err != nil {
		t.Fatal(err)
	} else if got, _ := io.ReadAll(resp.Body); !strings.Contains(string(got), `"acr_values_supported":["`+low+`","`+high+`"]`) {
		t.Fatalf("the OP does not advertise acr_values_supported: %s", got)
	}

	// The API: payments need high, changing the email a sign-in of the
	// last 2 seconds (1 s clock skew: a test cannot wait a minute).
	verifier, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{api}, StrictRFC9068: true})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu         sync.Mutex
		challenges []string
		refusals   []string
	)
	bapi, err := bearer.New(bearer.Config{Verifier: verifier, ClockSkew: time.Second,
		Observer: event.ObserverFunc(func(_ context.Context, e event.Event) {
			if e.Name == event.BearerRefused {
				mu.Lock()
				refusals = append(refusals, e.Reason)
				mu.Unlock()
			}
		})})
	if err != nil {
		t.Fatal(err)
	}
	ok := func(w http.ResponseWriter, r *http.Request) {
		cl, _ := bearer.ClaimsFrom(r.Context())
		io.WriteString(w, "done at "+cl.ACR)
	}
	apiMux := http.NewServeMux()
	apiMux.Handle("/payments", bapi.Require(bearer.AnyACR(high))(http.HandlerFunc(ok)))
	apiMux.Handle("/email", bapi.Require(bearer.MaxAuthAge(2*time.Second))(http.HandlerFunc(ok)))
	apiSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		apiMux.ServeHTTP(rec, r)
		if c := rec.Header().Get("WWW-Authenticate"); c != "" {
			mu.Lock()
			challenges = append(challenges, c)
			mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(apiSrv.Close)
	lastChallenge := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(challenges) == 0 {
			return ""
		}
		return challenges[len(challenges)-1]
	}

	// The web app.
	c, err := provider.Client(rp.Config{ClientID: app.id, ClientSecret: app.id + "-secret",
		RedirectURL: app.srv.URL + "/auth/callback", PostLogoutRedirectURL: app.srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	t.Cleanup(func() { store.Close() })
	rec := &recorder{}
	clk := &clock{}
	web, err := middleware.NewWeb(middleware.WebConfig{Client: c, Store: store, CookieKeys: [][]byte{testKey}, Now: clk.now,
		Observer: event.Join(rec, event.Log(slog.New(slog.NewTextHandler(io.Discard, nil))))})
	if err != nil {
		t.Fatal(err)
	}
	callAPI := func(path string) http.Handler {
		return web.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := middleware.SessionFrom(r.Context())
			resp, err := s.Client(r.Context()).Get(apiSrv.URL + path)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			if su, ok := middleware.StepUpFromResponse(resp); ok {
				web.StartStepUp(w, r, su)
				return
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
		}))
	}
	showACR := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.SessionFrom(r.Context())
		io.WriteString(w, "page at "+s.Claims().ACR+" auth_time="+s.Claims().AuthTime.Time().UTC().Format(time.RFC3339))
	})
	mux := http.NewServeMux()
	mux.Handle("/auth/", web.Routes())
	mux.Handle("/pay", callAPI("/payments"))
	mux.Handle("/email", callAPI("/email"))
	mux.Handle("/secure", web.RequireStepUp(middleware.StepUp{ACR: []string{high}})(showACR))
	mux.Handle("/recent", web.RequireStepUp(middleware.StepUp{MaxAge: time.Hour})(showACR))
	mux.Handle("/me", web.Require(showACR))
	app.handle = mux

	get := func(b *nodeop.Browser, path string) (int, string) {
		t.Helper()
		_, resp, err := b.Navigate(app.srv.URL+path, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	// alice pays: sign-in at low, the API's challenge, the step-up, paid.
	alice := nodeop.NewBrowser(t, "alice@example.test", "pw")
	if status, body := get(alice, "/pay"); status != 200 || body != "done at "+high {
		t.Fatalf("/pay: %d %q", status, body)
	}
	if n := alice.LoginForms(); n != 2 {
		t.Fatalf("%d login forms, want 2 (the sign-in, the step-up)", n)
	}
	if got, want := lastChallenge(), `Bearer realm="api", error="insufficient_user_authentication", error_description="a different authentication level is required", acr_values="`+high+`"`; got != want {
		t.Fatalf("the API's challenge:\n %s\nwant\n %s", got, want)
	}
	logins := op.Count(func(e nodeop.Event) bool { return e.Type == "login" && e.OK })
	if logins != 2 || op.Count(func(e nodeop.Event) bool { return e.Type == "login" && e.ACR == high }) != 1 {
		t.Fatalf("OP logins: %+v", op.Events())
	}
	if e, ok := find(rec.take(), event.StepUp); !ok || e.Reason != "api" || e.Subject != "usr_alice" {
		t.Fatalf("StepUp event %+v", e)
	}

	// A web route that needs high: her session has it.
	if status, body := get(alice, "/secure"); status != 200 || !strings.HasPrefix(body, "page at "+high) {
		t.Fatalf("/secure: %d %q", status, body)
	}
	// A web route with a max_age: her ID token has no auth_time yet (none
	// was asked); the step-up asks for max_age and the OP, whose session is
	// recent, answers without a login form.
	if status, body := get(alice, "/recent"); status != 200 || !strings.Contains(body, "auth_time=20") {
		t.Fatalf("/recent: %d %q", status, body)
	}
	if n := alice.LoginForms(); n != 2 {
		t.Fatalf("%d login forms after /secure and /recent, want still 2", n)
	}
	// A refresh keeps the level: the refreshed ID token carries the acr
	// and auth_time of the sign-in (RFC 9470 §6.1), not of the refresh.
	refreshes := op.TokenRequests("refresh_token")
	clk.advance(4*time.Minute + 50*time.Second) // the access token (5 min) is about to expire
	if status, body := get(alice, "/secure"); status != 200 || !strings.HasPrefix(body, "page at "+high) {
		t.Fatalf("/secure after a refresh: %d %q", status, body)
	}
	if n := op.TokenRequests("refresh_token") - refreshes; n != 1 || alice.LoginForms() != 2 {
		t.Fatalf("%d refreshes, %d login forms; want 1 refresh and no sign-in", n, alice.LoginForms())
	}

	// The API's max_age: her sign-in is older than 2 s (+1 s skew) by now.
	time.Sleep(3500 * time.Millisecond)
	if status, body := get(alice, "/email"); status != 200 || !strings.HasPrefix(body, "done at ") {
		t.Fatalf("/email: %d %q", status, body)
	}
	if n := alice.LoginForms(); n != 3 {
		t.Fatalf("%d login forms, want 3 (max_age makes the OP authenticate her anew)", n)
	}
	mu.Lock()
	if !strings.Contains(strings.Join(challenges, "\n"), `error_description="more recent authentication is required", max_age=2`) ||
		!slicesContains(refusals, "acr") || !slicesContains(refusals, "auth_time") {
		t.Fatalf("challenges %q, refusals %q", challenges, refusals)
	}
	mu.Unlock()

	// bob cannot reach high: a clear refusal, his low session kept, no loop.
	bob := nodeop.NewBrowser(t, "bob@example.test", "pw")
	if status, body := get(bob, "/me"); status != 200 || !strings.HasPrefix(body, "page at "+low) && !strings.HasPrefix(body, "page at ") {
		t.Fatalf("bob /me: %d %q", status, body)
	}
	status, body := get(bob, "/secure")
	if status != http.StatusForbidden || !strings.Contains(body, "needs a stronger sign-in") {
		t.Fatalf("bob /secure: %d %q", status, body)
	}
	if n := bob.LoginForms(); n != 2 {
		t.Fatalf("bob: %d login forms, want 2 (one sign-in, one step-up attempt)", n)
	}
	if status, _ := get(bob, "/me"); status != 200 {
		t.Fatalf("bob lost his session: %d", status)
	}
	if e, ok := find(rec.take(), event.LoginFailed); !ok || e.Reason != "acr_not_met" {
		t.Fatalf("LoginFailed %+v", e)
	}
}

func slicesContains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}
