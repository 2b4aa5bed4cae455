package urldiff_test

import (
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/internal/urldiff"
)

func TestExplain(t *testing.T) {
	cases := []struct{ want, got, says string }{
		{"https://a.example.com/cb", "https://a.example.com/cb", ""},
		{"https://a.example.com/cb", "https://a.example.com/cb/", "only a trailing slash differs"},
		{"https://env.scalekit.com/", "https://env.scalekit.com", "only a trailing slash differs"},
		{"http://localhost:8081/auth/callback", "https://localhost:8081/auth/callback", "the scheme differs (http vs https)"},
		{"http://localhost:8081/cb", "http://127.0.0.1:8081/cb", "the host differs (localhost vs 127.0.0.1"},
		{"https://acme-dev.scalekit.dev", "https://acme.scalekit.com", "another environment"},
		{"http://localhost:8081/cb", "http://localhost:8082/cb", "the port differs (8081 vs 8082)"},
		{"https://app.example.com:443/cb", "https://app.example.com/cb", "default port explicitly"},
		{"https://app.example.com/auth/callback", "https://app.example.com/callback", `the path differs ("/auth/callback" vs "/callback")`},
		{"https://app.example.com/cb?x=1", "https://app.example.com/cb", "the query differs"},
		{"https://App.example.com/cb", "https://app.example.com/cb", "only letter case differs"},
		{"http://localhost:8081/cb/", "https://localhost:8081/cb", "the scheme differs (http vs https); the trailing slash of the path differs"},
	}
	for _, tc := range cases {
		got := urldiff.Explain(tc.want, tc.got)
		if tc.says == "" && got != "" || !strings.Contains(got, tc.says) {
			t.Errorf("Explain(%q, %q) = %q, want it to say %q", tc.want, tc.got, got, tc.says)
		}
	}
}

