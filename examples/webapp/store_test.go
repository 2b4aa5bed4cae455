package webapp_test

import (
	"strings"
	"testing"

	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/examples/webapp"
)

// TestConfigFromEnvStore: MULTIAPP_REDIS_URL puts the sessions in Redis,
// and then needs the store key and a cookie key shared by the instances
// (a random cookie key per instance would make each answer 401 to the
// users the others sign in).
func TestConfigFromEnvStore(t *testing.T) {
	base := func() map[string]string {
		return map[string]string{
			"MULTIAPP_ISSUER":       "https://example.scalekit.dev",
			"MULTIAPP_CLIENT_ID":    "skc_1",
			"MULTIAPP_REDIRECT_URL": "http://localhost:8081/auth/callback",
			"MULTIAPP_COOKIE_KEY":   strings.Repeat("ab", 32),
			"MULTIAPP_REDIS_URL":    "redis://localhost:6379/2",
			"MULTIAPP_STORE_KEY":    strings.Repeat("cd", 32) + "," + strings.Repeat("ef", 32),
		}
	}
	cfg, _, err := webapp.ConfigFromEnv(appenv.Map(base()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RedisURL != "redis://localhost:6379/2" || len(cfg.StoreKeys) != 2 || len(cfg.StoreKeys[0]) != 32 || cfg.StoreKeys[0][0] != 0xcd {
		t.Errorf("store settings: %q %d keys", cfg.RedisURL, len(cfg.StoreKeys))
	}
	for name, tc := range map[string]struct {
		edit func(map[string]string)
		want string
	}{
		"no store key":    {func(e map[string]string) { delete(e, "MULTIAPP_STORE_KEY") }, "MULTIAPP_STORE_KEY"},
		"no cookie key":   {func(e map[string]string) { delete(e, "MULTIAPP_COOKIE_KEY") }, "MULTIAPP_COOKIE_KEY"},
		"short store key": {func(e map[string]string) { e["MULTIAPP_STORE_KEY"] = strings.Repeat("cd", 16) }, "at least 32"},
		"long store key":  {func(e map[string]string) { e["MULTIAPP_STORE_KEY"] = strings.Repeat("cd", 48) }, "exactly 32"},
		"garbled key":     {func(e map[string]string) { e["MULTIAPP_STORE_KEY"] = "not a key!" }, "hex or base64"},
		"key without url": {func(e map[string]string) { delete(e, "MULTIAPP_REDIS_URL") }, "MULTIAPP_REDIS_URL"},
	} {
		env := base()
		tc.edit(env)
		if _, _, err := webapp.ConfigFromEnv(appenv.Map(env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
		}
	}
}
