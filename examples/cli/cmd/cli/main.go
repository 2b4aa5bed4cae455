// Command cli is the demo's native client: it signs in through the system
// browser with an RFC 8252 loopback redirect and PKCE, keeps its tokens in a
// 0600 file, refreshes them and logs out.
//
//	go run ./examples/cli/cmd/cli login       # against the demo OP (go run ./examples/multiapp-demo)
//	go run ./examples/cli/cmd/cli whoami
//	go run ./examples/cli/cmd/cli call http://localhost:8084/api/me
//	go run ./examples/cli/cmd/cli logout --everywhere
//
// Against another OP: MULTIAPP_ISSUER and MULTIAPP_CLIENT_ID (a public,
// native client with the redirect URI http://127.0.0.1/callback, any port).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/multiapp-go/multiapp/examples/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}
