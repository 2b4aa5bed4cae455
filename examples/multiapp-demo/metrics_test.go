package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/testbrowser"
)

// TestMetricsPage runs the command (on free ports), signs in on the
// dashboard, then on docs (one sign-in, so without a login form), calls the
// API twice with one access token, signs out on docs, calls the API again,
// and scrapes the metrics page: the sign-ins, the code exchanges' latency,
// the store calls, the JWKS fetch, the token cache's miss then hit, the
// logout, the OP's back-channel logouts and the API's refusal of the ended
// session's token are there, each app told apart by its client id, and no
// label names a user.
func TestMetricsPage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, urls, done := startCommand(t, ctx)
	for name, u := range urls {
		urls[name] = strings.TrimSuffix(u, "/")
	}
	if urls["metrics"] == "" || !strings.HasSuffix(urls["metrics"], "/metrics") {
		t.Fatalf("the guide lists no metrics page: %v", urls)
	}

	br := testbrowser.New("alice@example.com", devop.DemoPassword)
	for _, app := range []string{"dashboard", "docs"} {
		p, err := br.Get(urls[app] + "/me")
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != 200 || p.URL.Path != "/me" {
			t.Fatalf("%s /me: %d at %s", app, p.Status, p.URL)
		}
	}
	if br.LoginForms != 1 {
		t.Errorf("%d login forms for two apps, want 1", br.LoginForms)
	}
	tok, err := br.NativeLogin(ctx, strings.TrimSuffix(urls["OP"], "/"), "cli")
	if err != nil {
		t.Fatal(err)
	}
	callAPI := func() int {
		req, _ := http.NewRequest("GET", strings.TrimSuffix(urls["API"], "/api/me")+"/api/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 2 {
		if status := callAPI(); status != 200 {
			t.Fatalf("API: %d", status)
		}
	}
	// Signing out on docs signs out everywhere: the OP's back-channel
	// logouts reach both web apps, and the API refuses the session's token.
	if p, err := br.Do(http.MethodPost, urls["docs"]+"/auth/logout", url.Values{}, nil); err != nil || !strings.Contains(p.Body, `id="signed-out"`) {
		t.Fatalf("logout on docs: %v", err)
	}
	if status := callAPI(); status != 401 {
		t.Errorf("API after the logout: %d, want 401", status)
	}

	resp, err := http.Get(urls["metrics"])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	t.Logf("metrics page:\n%s", grepMultiapp(page))
	for _, want := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"multiapp_logins_total", []string{`multiapp_client_id="dashboard"`, `multiapp_outcome="ok"`, `multiapp_silent="false"`}, 1},
		{"multiapp_logins_total", []string{`multiapp_client_id="docs"`, `multiapp_outcome="ok"`}, 1},
		{"multiapp_op_duration_seconds_count", []string{`multiapp_operation="code_exchange"`, `multiapp_outcome="ok"`}, 2},
		{"multiapp_op_duration_seconds_count", []string{`multiapp_operation="jwks_fetch"`, `multiapp_outcome="ok"`}, 1},
		{"multiapp_store_duration_seconds_count", []string{`multiapp_operation="create"`}, 2},
		{"multiapp_store_duration_seconds_count", []string{`multiapp_operation="get"`}, 2},
		{"multiapp_store_duration_seconds_count", []string{`multiapp_operation="delete"`}, 1},
		{"multiapp_jwks_fetches_total", []string{`multiapp_outcome="ok"`}, 1},
		{"multiapp_token_cache_misses_total", nil, 1},
		{"multiapp_token_cache_hits_total", nil, 1},
		{"multiapp_access_token_duration_seconds_count", []string{`multiapp_cache_hit="true"`, `multiapp_outcome="ok"`}, 1},
		{"multiapp_logouts_total", []string{`multiapp_client_id="docs"`}, 1},
		{"multiapp_backchannel_logouts_total", []string{`multiapp_outcome="ok"`}, 2},
		{"multiapp_bearer_refusals_total", []string{`http_response_status_code="401"`, `multiapp_reason="revoked_session"`}, 1},
	} {
		if v := sample(page, want.name, want.labels...); v < want.min {
			t.Errorf("%s%v = %v, want >= %v", want.name, want.labels, v, want.min)
		}
	}
	for _, user := range []string{"alice", "example.com", tok.AccessToken[:20]} {
		if strings.Contains(page, user) {
			t.Errorf("the metrics page names %q", user)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not stop")
	}
}

// sample is the sum of the values of the series named name whose labels
// include every one of labels (k="v").
func sample(page, name string, labels ...string) float64 {
	var sum float64
lines:
	for _, line := range strings.Split(page, "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(series, l) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

var multiappLine = regexp.MustCompile(`(?m)^multiapp_.*$`)

func grepMultiapp(page string) string {
	return strings.Join(multiappLine.FindAllString(page, -1), "\n")
}
