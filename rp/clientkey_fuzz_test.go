package rp_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/rp"
)

// keyMaterial is what base64 key material looks like: long runs.
var keyMaterial = regexp.MustCompile(`[A-Za-z0-9+/_=-]{24,}`)

// FuzzParseClientKey: any bytes (an environment variable's value) load as
// a key or are refused with ErrConfig; never a panic, never key material
// in the message. Seeds in testdata/fuzz/FuzzParseClientKey.
func FuzzParseClientKey(f *testing.F) {
	for _, s := range []string{
		"", "{}", `{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`,
		`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`,
		"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n",
		"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := rp.ParseClientKey(data)
		if err != nil {
			if !errors.Is(err, rp.ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			for _, run := range keyMaterial.FindAllString(string(data), -1) {
				if strings.Contains(err.Error(), run) {
					t.Fatalf("the error repeats key material: %v", err)
				}
			}
			return
		}
		if k.Signer == nil {
			t.Fatal("a key without a signer")
		}
		// A loaded key either works or is refused by JWKS, never panics.
		_, _ = rp.JWKS(k)
	})
}
