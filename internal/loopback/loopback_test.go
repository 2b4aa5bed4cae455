package loopback

import "testing"

// TestHost: only the name localhost and loopback IP literals count. A DNS
// name is whatever its owner says it is: 127.0.0.1.example.com or
// 127.attacker.test resolve wherever the attacker points them, so treating
// them as loopback would send secrets over plain http and drop the Secure
// cookie attribute on the open network.
func TestHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":        true,
		"LocalHost":        true,
		"localhost:8080":   true,
		"127.0.0.1":        true,
		"127.0.0.1:9000":   true,
		"127.1.2.3":        true,
		"[::1]:8443":       true,
		"::1":              true,
		"[::1]":            true,
		"::ffff:127.0.0.1": true,

		"127.example.com":       false,
		"127.0.0.1.example.com": false,
		"127.0.0.1.nip.io:8080": false,
		"app.localhost":         false,
		"localhost.example.com": false,
		"localhost.":            false,
		"127.1":                 false, // not an IP literal to Go; browsers' short form is not trusted either
		"0177.0.0.1":            false,
		"10.0.0.1":              false,
		"192.168.1.1":           false,
		"example.com":           false,
		"":                      false,
		"[fe80::1%25lo]:80":     false,
		"::1%lo":                false,
	} {
		if got := Host(host); got != want {
			t.Errorf("Host(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestPlainHTTP(t *testing.T) {
	for raw, want := range map[string]bool{
		"http://localhost:8081/auth/callback": true,
		"http://127.0.0.1/":                   true,
		"http://[::1]:9000":                   true,
		"https://localhost/":                  false,
		"http://127.0.0.1.example.com/":       false,
		"http://app.example.com/":             false,
		"://bad":                              false,
	} {
		if got := PlainHTTP(raw); got != want {
			t.Errorf("PlainHTTP(%q) = %v, want %v", raw, got, want)
		}
	}
}
