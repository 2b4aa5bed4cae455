package devop_test

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/examples/devop"
)

func TestParseClient(t *testing.T) {
	const o = "http://localhost:8086"
	web := devop.Client{ID: "shop", Secret: "shop-secret",
		RedirectURIs: []string{o + "/auth/callback"}, PostLogoutRedirectURIs: []string{o + "/"},
		BackChannelLogoutURI: o + "/auth/backchannel-logout"}
	cases := []struct {
		in   string
		want devop.Client
	}{
		{"id=shop,secret=shop-secret,origin=" + o, web},
		{" id = shop , secret = shop-secret , origin = " + o + "/ ", web},
		{"id=shop,secret=shop-secret,origin=" + o + ",auth_method=client_secret_post,name=Shop", func() devop.Client {
			c := web
			c.AuthMethod, c.Name = devop.AuthMethodPost, "Shop"
			return c
		}()},
		{"id=spa2,origin=" + o, devop.Client{ID: "spa2", RedirectURIs: []string{o + "/auth/callback"}, PostLogoutRedirectURIs: []string{o + "/"}}},
		{"id=shop,secret=s,redirect=" + o + "/cb,redirect=" + o + "/cb2,post_logout=" + o + "/bye,backchannel=" + o + "/bc", devop.Client{
			ID: "shop", Secret: "s", RedirectURIs: []string{o + "/cb", o + "/cb2"}, PostLogoutRedirectURIs: []string{o + "/bye"}, BackChannelLogoutURI: o + "/bc"}},
		{"id=shop,secret=s,origin=" + o + ",redirect=" + o + "/cb", devop.Client{
			ID: "shop", Secret: "s", RedirectURIs: []string{o + "/auth/callback", o + "/cb"}, PostLogoutRedirectURIs: []string{o + "/"}, BackChannelLogoutURI: o + "/auth/backchannel-logout"}},
		{"id=tool,native=true,redirect=http://127.0.0.1/callback", devop.Client{ID: "tool", Native: true, RedirectURIs: []string{"http://127.0.0.1/callback"}}},
	}
	for _, tc := range cases {
		got, err := devop.ParseClient(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, says string }{
		{"", "id is required"},
		{"secret=x,origin=" + o, "id is required"},
		{"id=shop,secret=x", "origin or redirect"},
		{"id=shop,origin=localhost:8086", "origin"},
		{"id=shop,origin=" + o + "/app", "origin is scheme://host:port"},
		{"id=shop,origin=" + o + ",colour=blue", `unknown key "colour"`},
		{"id=shop,origin", `"origin" has no value`},
		{"id=shop,id=other,origin=" + o, `"id" given twice`},
		{"id=shop,secret=x,origin=" + o + ",auth_method=private_key_jwt", "token_endpoint_auth_method"},
		{"id=shop,origin=" + o + ",auth_method=client_secret_basic", "public client"},
		{"id=shop,origin=" + o + ",native=maybe", "native"},
		{"id=sh op,origin=" + o, "id must be"},
	} {
		_, err := devop.ParseClient(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.says)
		}
	}
}

func TestClientFlag(t *testing.T) {
	var clients devop.ClientFlag
	fs := flag.NewFlagSet("devop", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&clients, "client", devop.ClientFlagUsage)
	err := fs.Parse([]string{"--client", "id=a,secret=s,origin=http://localhost:8086", "-client", "id=b,origin=http://localhost:8087"})
	if err != nil || len(clients) != 2 || clients[0].ID != "a" || clients[1].ID != "b" {
		t.Fatalf("%v %+v", err, clients)
	}
	if s := clients.String(); s != "a, b" {
		t.Errorf("String() = %q", s)
	}
	err = fs.Parse([]string{"--client", "id=c"})
	if err == nil || !strings.Contains(err.Error(), "origin or redirect") {
		t.Errorf("bad flag: %v", err)
	}
	// The parsed clients work in an OP, after the demo's.
	cfg := devop.DemoConfig()
	cfg.Clients = append(cfg.Clients, clients...)
	if _, err := devop.New(cfg); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseClient(f *testing.F) {
	for _, s := range []string{
		"id=shop,secret=shop-secret,origin=http://localhost:8086",
		"id=spa2,origin=https://app.example.com",
		"id=tool,native=true,redirect=http://127.0.0.1/callback",
		"id=x,secret=s,redirect=com.example.app:/cb,auth_method=client_secret_post",
		"id==,origin=,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := devop.ParseClient(s)
		if err != nil {
			return
		}
		// Whatever parses is a client the OP accepts.
		cfg := devop.Config{Issuer: "http://127.0.0.1:9", Clients: []devop.Client{c}, SigningKey: testKey}
		if _, err := devop.New(cfg); err != nil {
			t.Fatalf("ParseClient(%q) = %+v, which New refuses: %v", s, c, err)
		}
	})
}

func TestWriteSummary(t *testing.T) {
	cfg := devop.DemoConfig()
	cfg.SigningKey = testKey
	extra, err := devop.ParseClient("id=shop,secret=shop-secret,origin=http://localhost:8086,auth_method=client_secret_post")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clients = append(cfg.Clients, extra)
	o, err := devop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := o.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Log("\n" + out)
	for _, s := range []string{
		"http://127.0.0.1:9000", "/.well-known/openid-configuration",
		"dashboard", "dashboard-secret", "http://localhost:8081/auth/callback", "http://localhost:8081/auth/backchannel-logout",
		"yourapp", "yourapp-secret", "http://localhost:8085/auth/callback",
		"spa", "public", "cli", "any port",
		"shop", "shop-secret", "client_secret_post", "client_secret_basic",
		"alice@example.com", "usr_alice", "bob@example.com", "password",
		"api",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("the summary does not say %q", s)
		}
	}
	// Every client on its own line, id first.
	for _, id := range []string{"dashboard", "docs", "yourapp", "spa", "cli", "shop"} {
		if !strings.Contains(out, "\n  "+id+" ") {
			t.Errorf("no line for client %s", id)
		}
	}
}
