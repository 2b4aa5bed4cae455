package backchannel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/backchannel"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
	"github.com/multiapp-go/multiapp/tokenstore"
)

func ExampleHandler() {
	op, stop := oidctest.ForExample() // stands in for the OP
	defer stop()
	provider, _ := rp.Discover(context.Background(), op.Issuer, nil)
	client, _ := provider.Client(rp.Config{ClientID: "webc_docs", ClientSecret: "s"})
	store := tokenstore.NewMemory(tokenstore.MemoryOptions{})
	defer store.Close()

	// A signed-in session of OP session ses_1.
	now := time.Now()
	_ = store.Create(context.Background(), &tokenstore.Session{
		ID: tokenstore.NewID(), Issuer: op.Issuer, Subject: "usr_1", SID: "ses_1", ClientID: "webc_docs",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	})

	mux := http.NewServeMux()
	mux.Handle("POST /auth/backchannel-logout", &backchannel.Handler{Verifier: client, Store: store})

	// The OP ends ses_1 (the user signed out at another app) and notifies us.
	token := op.Signer().Sign(map[string]any{
		"iss": op.Issuer, "aud": "webc_docs", "iat": now.Unix(), "jti": "jti-1", "sub": "usr_1", "sid": "ses_1",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}, oidctest.Header{"typ": "logout+jwt"})
	req := httptest.NewRequest("POST", "/auth/backchannel-logout", strings.NewReader("logout_token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)

	revoked, _ := store.SIDRevoked(context.Background(), op.Issuer, "ses_1")
	fmt.Println(rec.Code, revoked)

	// The same token again is a replay.
	req = httptest.NewRequest("POST", "/auth/backchannel-logout", strings.NewReader("logout_token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// 200 true
	// 400
}
