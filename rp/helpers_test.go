package rp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/multiapp-go/multiapp/rp"
)

func newServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// setup is what a test sets for one app: the issuer and the options it
// discovers the OP with, and the app's Config.
type setup struct {
	Issuer string
	rp.ProviderOptions
	rp.Config
}

// client discovers the OP and builds the app's Client, as an app does.
func (s setup) client(ctx context.Context) (*rp.Client, error) {
	p, err := rp.Discover(ctx, s.Issuer, &s.ProviderOptions)
	if err != nil {
		return nil, err
	}
	return p.Client(s.Config)
}

// apiSetup is what a test sets for one API: the issuer and the options it
// discovers the OP with, and the API's AccessTokenConfig.
type apiSetup struct {
	Issuer string
	rp.ProviderOptions
	rp.AccessTokenConfig
}

// verifier discovers the OP and builds the API's verifier, as an API does.
func (s apiSetup) verifier(ctx context.Context) (*rp.AccessTokenVerifier, error) {
	p, err := rp.Discover(ctx, s.Issuer, &s.ProviderOptions)
	if err != nil {
		return nil, err
	}
	return p.AccessTokenVerifier(s.AccessTokenConfig)
}

// discover is rp.Discover that fails the test on error.
func discover(t testing.TB, issuer string, opts *rp.ProviderOptions) *rp.Provider {
	t.Helper()
	p, err := rp.Discover(context.Background(), issuer, opts)
	if err != nil {
		t.Fatalf("rp.Discover: %v", err)
	}
	return p
}
