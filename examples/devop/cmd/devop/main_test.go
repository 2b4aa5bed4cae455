package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // serve, then stop at once
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"-issuer", issuer, "-client", "id=shop,secret=shop-secret,origin=http://localhost:8086,auth_method=client_secret_post"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	for _, s := range []string{"Development OP " + issuer, "dashboard", "yourapp-secret", "shop-secret", "client_secret_post", "http://localhost:8086/auth/callback", "alice@example.com", "-client id="} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the start output does not say %q:\n%s", s, out.String())
		}
	}

	t.Run("a bad -client", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"-client", "id=shop,secret=s"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "origin or redirect") {
			t.Fatalf("exit %d\n%s", code, errOut.String())
		}
	})
	t.Run("a client id taken by the demo", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"-client", "id=dashboard,origin=http://localhost:8086"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "duplicate id") {
			t.Fatalf("exit %d\n%s", code, errOut.String())
		}
	})
	t.Run("the port is taken", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"-issuer", "http://" + busy.Addr().String()}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "cannot listen") || out.Len() != 0 {
			t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
		}
	})
}
