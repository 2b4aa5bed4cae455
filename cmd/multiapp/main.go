// Command multiapp diagnoses a multi-app sign-in setup.
//
//	go install github.com/multiapp-go/multiapp/cmd/multiapp@latest
//
//	multiapp doctor                      # the app configured by MULTIAPP_* variables
//	multiapp doctor --backchannel        # ... and its back-channel logout endpoint
//	multiapp doctor --apps apps.json     # several apps, and whether they can share a session
//	multiapp token decode < token.txt    # what the library would say about a token
//
// doctor reads the same MULTIAPP_* environment variables as the example
// apps (MULTIAPP_ISSUER, MULTIAPP_CLIENT_ID, MULTIAPP_CLIENT_SECRET,
// MULTIAPP_AUTH_METHOD, MULTIAPP_REDIRECT_URL,
// MULTIAPP_POST_LOGOUT_REDIRECT_URL, MULTIAPP_ADDR;
// MULTIAPP_AUDIENCE for token decode); flags override them. It prints one
// line per check, OK, WARN or FAIL, with a fix under each WARN and FAIL
// (--json for scripts), and exits 1 when a check fails, 2 on a usage
// error. Run `multiapp help` for the flags.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
