package bearer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/multiapp-go/multiapp/bearer"
	"github.com/multiapp-go/multiapp/internal/oidctest"
	"github.com/multiapp-go/multiapp/rp"
)

// Step-up authentication (RFC 9470): payments need a sign-in with a second
// factor (acr urn:example:mfa) of the last five minutes. A token from an
// everyday sign-in gets the challenge that tells the client what to ask
// the OP for.
func ExampleAnyACR() {
	t := &bearerExampleT{}
	defer func() {
		for _, f := range t.fns {
			f()
		}
	}()
	op := oidctest.New(t)
	provider, err := rp.Discover(context.Background(), op.Issuer, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	verifier, err := provider.AccessTokenVerifier(rp.AccessTokenConfig{Audiences: []string{"api"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	api, err := bearer.New(bearer.Config{Verifier: verifier})
	if err != nil {
		fmt.Println(err)
		return
	}
	pay := func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "paid") }
	mux := http.NewServeMux()
	mux.Handle("POST /payments", api.Require(bearer.AnyACR("urn:example:mfa"), bearer.MaxAuthAge(5*time.Minute))(http.HandlerFunc(pay)))

	now := time.Now().Unix()
	for _, acr := range []string{"urn:example:pwd", "urn:example:mfa"} {
		token := op.Signer().Sign(map[string]any{
			"iss": op.Issuer, "aud": "api", "sub": "usr_bob", "client_id": "webapp", "iat": now, "exp": now + 300,
			"acr": acr, "auth_time": now - 60,
		}, oidctest.Header{"typ": "at+jwt"})
		r := httptest.NewRequest("POST", "/payments", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 401 Bearer realm="api", error="insufficient_user_authentication", error_description="a different authentication level is required", acr_values="urn:example:mfa", max_age=300
	// 200
}
