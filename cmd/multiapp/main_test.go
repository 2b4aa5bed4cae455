package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/oidctest"
)

// cli runs the command as main would, with env as the environment.
func cli(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code = run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// testOP is oidctest's OP with an authorization endpoint that knows one
// client and its redirect URLs (an error page for anything else).
func testOP(t *testing.T, clientID string, redirects ...string) *oidctest.OP {
	op := oidctest.New(t)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ok := q.Get("client_id") == clientID
		for _, rd := range redirects {
			if ok && rd == q.Get("redirect_uri") {
				back := url.Values{"error": {"login_required"}, "state": {q.Get("state")}}
				http.Redirect(w, r, rd+"?"+back.Encode(), http.StatusFound)
				return
			}
		}
		http.Error(w, "redirect_uri is not registered", http.StatusBadRequest)
	}))
	t.Cleanup(front.Close)
	op.SetMeta("authorization_endpoint", front.URL+"/authorize")
	op.SetMeta("end_session_endpoint", nil)
	return op
}

func TestUsage(t *testing.T) {
	if code, out, _ := cli(t, nil, "", "help"); code != 0 || !strings.Contains(out, "multiapp doctor --apps FILE") || !strings.Contains(out, "MULTIAPP_REDIRECT_URL") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, _, errOut := cli(t, nil, ""); code != 2 || !strings.Contains(errOut, "Usage") {
		t.Errorf("no arguments: %d %q", code, errOut)
	}
	if code, _, errOut := cli(t, nil, "", "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := cli(t, nil, "", "token", "encode"); code != 2 {
		t.Errorf("token encode: %d", code)
	}
	if code, out, _ := cli(t, nil, "", "version"); code != 0 || !strings.HasPrefix(out, "multiapp ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errOut := cli(t, nil, "", "doctor", "-h"); code != 0 || !strings.Contains(errOut, "-client-secret-env") {
		t.Errorf("doctor -h: %d %q", code, errOut)
	}
	if code, _, _ := cli(t, nil, "", "doctor", "--no-such-flag"); code != 2 {
		t.Errorf("bad flag: %d", code)
	}
}

func TestDoctorCommand(t *testing.T) {
	const redirect = "http://localhost:8081/auth/callback"
	op := testOP(t, "webc_app", redirect)
	env := map[string]string{
		"MULTIAPP_ISSUER":        op.Issuer,
		"MULTIAPP_CLIENT_ID":     "webc_app",
		"MULTIAPP_CLIENT_SECRET": "top-secret-value",
		"MULTIAPP_REDIRECT_URL":  redirect,
		"MULTIAPP_ADDR":          ":8081",
	}
	t.Run("healthy, from the environment", func(t *testing.T) {
		code, out, errOut := cli(t, env, "", "doctor")
		if code != 0 || !strings.Contains(out, "OK    authorize") || !strings.Contains(out, "0 FAIL") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if strings.Contains(out, "top-secret-value") {
			t.Fatal("the secret was printed")
		}
	})
	t.Run("flags override the environment", func(t *testing.T) {
		code, out, _ := cli(t, env, "", "doctor", "--redirect-url", redirect+"/")
		if code != 1 || !strings.Contains(out, "FAIL  authorize") || !strings.Contains(out, "only a trailing slash differs") || !strings.Contains(out, "fix: set MULTIAPP_REDIRECT_URL to "+redirect) {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("problems only", func(t *testing.T) {
		code, out, _ := cli(t, env, "", "doctor", "-problems-only", "--redirect-url", redirect+"/")
		if code != 1 || !strings.Contains(out, "FAIL  authorize") || strings.Contains(out, "OK  ") || !regexp.MustCompile(`\n1 FAIL, \d+ WARN, \d+ OK`).MatchString(out) {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, out, _ := cli(t, env, "", "doctor", "--json", "--issuer", op.Issuer+"/")
		var rep struct {
			OK     bool `json:"ok"`
			Checks []struct{ Name, Status, Message, Fix string }
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if code != 1 || rep.OK {
			t.Fatalf("exit %d, ok %v", code, rep.OK)
		}
		for _, c := range rep.Checks {
			if c.Name == "issuer" && (c.Status != "FAIL" || !strings.Contains(c.Fix, op.Issuer)) {
				t.Errorf("issuer check %+v", c)
			}
		}
	})
	t.Run("secret from another variable", func(t *testing.T) {
		e := map[string]string{"DASH_SECRET": "x"}
		for k, v := range env {
			e[k] = v
		}
		delete(e, "MULTIAPP_CLIENT_SECRET")
		code, out, _ := cli(t, e, "", "doctor", "--client-secret-env", "DASH_SECRET")
		if code != 0 || !strings.Contains(out, "confidential client") {
			t.Fatalf("exit %d\n%s", code, out)
		}
		code, out, _ = cli(t, e, "", "doctor", "--client-secret-env", "UNSET_SECRET")
		if !strings.Contains(out, "$UNSET_SECRET, named by client_secret_env, is empty") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("the auth method, from the environment or a flag", func(t *testing.T) {
		e := map[string]string{"MULTIAPP_AUTH_METHOD": "client_secret_post"}
		for k, v := range env {
			e[k] = v
		}
		code, out, _ := cli(t, e, "", "doctor")
		if code != 0 || !strings.Contains(out, "OK    auth_method") || !strings.Contains(out, "client_secret_post, chosen with MULTIAPP_AUTH_METHOD") {
			t.Fatalf("exit %d\n%s", code, out)
		}
		code, out, _ = cli(t, e, "", "doctor", "--auth-method", "client_secret_basic")
		if code != 0 || !strings.Contains(out, "client_secret_basic, chosen with --auth-method") {
			t.Fatalf("exit %d\n%s", code, out)
		}
		code, out, _ = cli(t, e, "", "doctor", "--auth-method", "private_key_jwt")
		if code != 1 || !strings.Contains(out, `AuthMethod is "private_key_jwt" but Key is empty`) {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("nothing configured", func(t *testing.T) {
		code, out, _ := cli(t, nil, "", "doctor")
		if code != 1 || !strings.Contains(out, "FAIL  config  no issuer configured") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("stray argument", func(t *testing.T) {
		if code, _, _ := cli(t, env, "", "doctor", "extra"); code != 2 {
			t.Fatalf("exit %d", code)
		}
	})
}

func TestDoctorApps(t *testing.T) {
	const web, spa = "http://localhost:8081/auth/callback", "http://localhost:8082/auth/callback"
	op := testOP(t, "webc_app", web)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("apps.json", `{"apps": [
		{"name": "web", "client_id": "webc_app", "client_secret_env": "WEB_SECRET", "auth_method": "client_secret_post", "redirect_url": "`+web+`"},
		{"name": "spa", "client_id": "spac_2", "redirect_url": "`+spa+`"}]}`)
	env := map[string]string{"MULTIAPP_ISSUER": op.Issuer, "WEB_SECRET": "s"}
	code, out, errOut := cli(t, env, "", "doctor", "--apps", file)
	if code != 1 || !strings.Contains(out, "== web") || !strings.Contains(out, "== spa") || !strings.Contains(out, "== across apps") ||
		!strings.Contains(out, "OK    shared_issuer") || !strings.Contains(out, "share the cookies of host localhost") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, `client_secret_post, chosen with "auth_method" in the apps file`) {
		t.Fatalf("the apps file's auth_method is not used:\n%s", out)
	}
	// spac_2 is not registered at this OP.
	if !strings.Contains(out, "FAIL  authorize") {
		t.Fatalf("unregistered spa not reported:\n%s", out)
	}

	bad := write("bad.json", `{"apps": [{"client_id": "a", "client_secret": "oops"}]}`)
	if code, _, errOut := cli(t, env, "", "doctor", "--apps", bad); code != 2 || !strings.Contains(errOut, "keep secrets out of files") || strings.Contains(errOut, "oops") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, errOut := cli(t, env, "", "doctor", "--apps", file, "--backchannel-url", "http://x/y"); code != 2 || !strings.Contains(errOut, "backchannel_url in the file") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, errOut := cli(t, env, "", "doctor", "--apps", file, "--auth-method", "client_secret_post"); code != 2 || !strings.Contains(errOut, "auth_method in the file") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, _ := cli(t, env, "", "doctor", "--apps", filepath.Join(dir, "missing.json")); code != 2 {
		t.Fatalf("missing file: exit %d", code)
	}
}

func TestTokenDecodeCommand(t *testing.T) {
	op := oidctest.New(t)
	token := op.Signer().Sign(op.IDClaims("webc_app", "usr_1", "n"), nil)
	sig := token[strings.LastIndexByte(token, '.')+1:]
	env := map[string]string{"MULTIAPP_ISSUER": op.Issuer, "MULTIAPP_CLIENT_ID": "webc_app"}

	code, out, errOut := cli(t, env, token+"\n", "token", "decode")
	if code != 0 || !strings.Contains(out, `"sub": "usr_1"`) || !strings.Contains(out, "OK    verify") || strings.Contains(out, sig) {
		t.Fatalf("stdin: exit %d\n%s%s", code, out, errOut)
	}
	// Flags after the token work too.
	code, out, _ = cli(t, env, "", "token", "decode", token, "--json", "--client-id", "webc_other")
	var rep struct {
		OK     bool
		Kind   string
		Checks []struct{ Name, Status, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.OK || rep.Kind != "id_token" {
		t.Fatalf("exit %d %v\n%s", code, err, out)
	}
	if code, out, _ := cli(t, nil, "", "token", "decode", "-", "--offline"); code != 2 || out != "" {
		t.Fatalf("empty stdin: exit %d %q", code, out)
	}
	if code, _, _ := cli(t, env, token, "token", "decode", "--kind", "refresh"); code != 2 {
		t.Fatalf("bad kind: exit %d", code)
	}
	if code, out, _ := cli(t, nil, token, "token", "decode", "--offline"); code != 0 || !strings.Contains(out, "SKIP  verify  offline") {
		t.Fatalf("offline: exit %d\n%s", code, out)
	}
}
