package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/examples/cli"
	"github.com/multiapp-go/multiapp/examples/demo"
	"github.com/multiapp-go/multiapp/examples/devop"
	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/internal/testbrowser"
)

// The newcomer's DPoP path of docs/dpop.md, against the demo as
// ./scripts/demo starts it (on free ports): `cli --dpop login` gets
// DPoP-bound tokens from the demo's OP, `cli call API/api/me` is accepted
// by the demo API with proofs, also after `cli refresh`, and the same
// access token sent as a Bearer token is refused.
func TestCLIWithDPoPAgainstTheDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	free := "127.0.0.1:0"
	d, err := demo.Start(ctx, demo.Config{OP: free, Dashboard: free, Docs: free, SPA: free, API: free})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	br := testbrowser.New("alice@example.com", devop.DemoPassword)
	tokenFile := filepath.Join(t.TempDir(), "tokens.json")
	env := appenv.Map(map[string]string{
		"MULTIAPP_ISSUER":     d.URLs.Issuer,
		"MULTIAPP_TOKEN_FILE": tokenFile,
	})
	run := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := cli.Main(ctx, args, env, &out, &errs, func(u string) error { _, err := br.Get(u); return err })
		return code, out.String(), errs.String()
	}
	me := d.URLs.API + "/api/me"

	if code, out, errs := run("--dpop", "login"); code != 0 {
		t.Fatalf("cli --dpop login: %d\n%s\n%s", code, out, errs)
	}
	var saved struct {
		TokenType   string          `json:"token_type"`
		AccessToken string          `json:"access_token"`
		DPoPKey     json.RawMessage `json:"dpop_key"`
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	if len(saved.DPoPKey) == 0 || saved.AccessToken == "" || saved.TokenType != "DPoP" {
		t.Fatalf("the token file has no DPoP key or access token: %s", b)
	}
	if code, out, errs := run("call", me); code != 0 || !strings.HasPrefix(out, "200") || !strings.Contains(out, "usr_alice") {
		t.Fatalf("cli call %s: %d\n%s\n%s", me, code, out, errs)
	}

	// The bound token alone is not enough: as a Bearer token it is refused.
	bearer := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, me, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	if st, challenge := bearer(saved.AccessToken); st != http.StatusUnauthorized || !strings.Contains(challenge, "invalid_token") {
		t.Errorf("the DPoP-bound token as Bearer: %d %q", st, challenge)
	}

	if code, out, errs := run("refresh"); code != 0 {
		t.Fatalf("cli refresh: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs := run("token")
	if token := strings.TrimSpace(out); code != 0 || token == saved.AccessToken {
		t.Fatalf("cli token after refresh: %d, new token %v, %s", code, token != saved.AccessToken, errs)
	} else if st, _ := bearer(token); st != http.StatusUnauthorized {
		t.Errorf("the refreshed DPoP-bound token as Bearer: %d", st)
	}
	if code, out, errs := run("call", me); code != 0 || !strings.HasPrefix(out, "200") {
		t.Fatalf("cli call after refresh: %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := run("logout"); code != 0 {
		t.Errorf("cli logout: %d\n%s\n%s", code, out, errs)
	}
}
