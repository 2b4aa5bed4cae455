package dpop_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/multiapp-go/multiapp/dpop"
)

// TestTransportKeepsTheTokenOnItsOrigin: http.Client hands every redirect
// hop to the Transport, so a Transport that signed every request would
// give the token (and a proof for the other server) to whatever origin an
// API redirects to. net/http drops an Authorization header of the first
// request on a redirect to another domain; the Transport does the same.
func TestTransportKeepsTheTokenOnItsOrigin(t *testing.T) {
	seen := map[string]http.Header{}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen[r.URL.Path] = r.Header.Clone()
		io.WriteString(w, "other")
	}))
	defer other.Close()
	var api *httptest.Server
	api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen[r.URL.Path] = r.Header.Clone()
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
		case "/here":
			http.Redirect(w, r, api.URL+"/same", http.StatusFound)
		default:
			io.WriteString(w, "api")
		}
	}))
	defer api.Close()
	s, err := dpop.GenerateSigner("")
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &dpop.Transport{Signer: s, AccessToken: func(*http.Request) (string, error) { return "tok", nil }}}
	for _, p := range []string{"/away", "/here"} {
		resp, err := c.Get(api.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for path, signed := range map[string]bool{"/away": true, "/elsewhere": false, "/here": true, "/same": true} {
		h := seen[path]
		if h == nil {
			t.Fatalf("%s not requested", path)
		}
		if got := h.Get("Authorization") != "" || h.Get("DPoP") != ""; got != signed {
			t.Errorf("%s: token and proof sent = %v, want %v (%q)", path, got, signed, h.Get("Authorization"))
		}
	}
}
