package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/multiapp-go/multiapp/examples/internal/appenv"
	"github.com/multiapp-go/multiapp/rp"
)

const usage = `usage: cli [flags] COMMAND

Commands:
  login [--prompt login] [--login-hint EMAIL]   sign in through the browser
  whoami                                        who is signed in, roles, permissions
  token                                         print a valid access token (refreshed when needed)
  refresh                                       redeem the refresh token now
  call URL                                      GET URL with the access token (Bearer, or DPoP with a proof)
  logout [--everywhere]                         revoke the refresh token and forget the tokens;
                                                --everywhere also ends the OP session (all apps)

Flags:
`

// Main runs the command line args (without the program name) and returns
// the exit status: 0 on success, 1 on failure, 2 on a usage error.
// Configuration comes from env: MULTIAPP_ISSUER (default the demo OP),
// MULTIAPP_CLIENT_ID (default "cli"), MULTIAPP_SCOPES and
// MULTIAPP_TOKEN_FILE, which flags override. open opens the system browser
// (nil: OpenSystemBrowser).
func Main(ctx context.Context, args []string, env appenv.Env, stdout, stderr io.Writer, open func(string) error) int {
	fs := flag.NewFlagSet("cli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	cfg := Config{OpenBrowser: open, Out: stderr}
	fs.StringVar(&cfg.Issuer, "issuer", env.Get(appenv.Issuer, DefaultIssuer), "the OP's issuer URL ($MULTIAPP_ISSUER)")
	fs.StringVar(&cfg.ClientID, "client-id", env.Get(appenv.ClientID, DefaultClientID), "the native app's client id ($MULTIAPP_CLIENT_ID)")
	fs.StringVar(&cfg.TokenFile, "tokens", env.Get("MULTIAPP_TOKEN_FILE", DefaultTokenFile()), "the token file, mode 0600 ($MULTIAPP_TOKEN_FILE)")
	fs.BoolVar(&cfg.DPoP, "dpop", slices.Contains([]string{"1", "true"}, env.Get(appenv.DPoP, "")), "login: bind the tokens to a new DPoP key kept in the token file; the OP must support DPoP ($MULTIAPP_DPOP=1)")
	scopes := fs.String("scopes", strings.Join(env.List(appenv.Scopes), " "), "scopes to request, space-separated ($MULTIAPP_SCOPES; default openid profile email offline_access)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if env.Get(appenv.ClientSecret, "") != "" {
		fmt.Fprintf(stderr, "cli: %s is set, but a program on users' machines cannot keep a secret: register a public (native) client and unset it\n", appenv.ClientSecret)
		return 2
	}
	cfg.Scopes = strings.Fields(*scopes)
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	tool := New(cfg)
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	sub := flag.NewFlagSet("cli "+cmd, flag.ContinueOnError)
	sub.SetOutput(stderr)
	var err error
	switch cmd {
	case "login":
		var opts LoginOptions
		sub.StringVar(&opts.Prompt, "prompt", "", "prompt to send (login: show the login form even when signed in at the OP)")
		sub.StringVar(&opts.LoginHint, "login-hint", "", "login_hint to send")
		if sub.Parse(rest) != nil {
			return 2
		}
		var s *Saved
		if s, err = tool.Login(ctx, opts); err == nil {
			fmt.Fprintf(stdout, "Signed in. Tokens saved in %s (mode 0600).\n\n%s", tool.TokenFile(), describe(s, tool.cfg.Now()))
		}
	case "whoami":
		var s *Saved
		if s, err = tool.Token(ctx); err == nil {
			fmt.Fprint(stdout, describe(s, tool.cfg.Now()))
		}
	case "token":
		var s *Saved
		if s, err = tool.Token(ctx); err == nil {
			fmt.Fprintln(stdout, s.AccessToken)
		}
	case "refresh":
		var s *Saved
		if s, err = tool.Refresh(ctx); err == nil {
			fmt.Fprintf(stdout, "Refreshed; the access token expires in %v.\n", s.Expiry.Sub(tool.cfg.Now()).Round(1e9))
		}
	case "call":
		if len(rest) != 1 {
			fmt.Fprintln(stderr, "usage: cli call URL")
			return 2
		}
		err = call(ctx, tool, rest[0], stdout)
	case "logout":
		var opts LogoutOptions
		sub.BoolVar(&opts.Everywhere, "everywhere", false, "also end the session at the OP, which signs you out of every app")
		if sub.Parse(rest) != nil {
			return 2
		}
		if err = tool.Logout(ctx, opts); err == nil {
			fmt.Fprintln(stdout, "Signed out.")
		}
	default:
		fmt.Fprintf(stderr, "cli: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		var oe *rp.OPError
		if errors.As(err, &oe) && oe.Hint != "" {
			fmt.Fprintln(stderr, "hint:", oe.Hint)
		}
		return 1
	}
	return 0
}

func call(ctx context.Context, tool *Tool, target string, stdout io.Writer) error {
	resp, err := tool.Call(ctx, target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Fprintf(stdout, "%s\n", resp.Status)
	if h := resp.Header.Get("WWW-Authenticate"); h != "" {
		fmt.Fprintf(stdout, "WWW-Authenticate: %s\n", h)
	}
	_, _ = io.Copy(stdout, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 400 {
		return fmt.Errorf("cli: %s answered %s", target, resp.Status)
	}
	return nil
}
