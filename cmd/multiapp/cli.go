package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/cmd/multiapp/internal/doctor"
	"github.com/multiapp-go/multiapp/rp"
)

const usage = `multiapp: diagnose a multi-app sign-in setup (one OP session shared by several apps)

Usage:
  multiapp doctor [flags]                  check the app configured by MULTIAPP_* variables
  multiapp doctor --apps FILE [flags]      check several apps, and that they can share a session
  multiapp token decode [flags] [TOKEN|-]  show a token and what the library says about it
                                           (reads the token from stdin when omitted or "-")
  multiapp help | version

Environment (flags override):
  MULTIAPP_ISSUER                   the OP's issuer URL (for Scalekit, the environment URL)
  MULTIAPP_CLIENT_ID                the app's client id
  MULTIAPP_CLIENT_SECRET            its secret; empty for a public client (SPA, mobile, CLI)
  MULTIAPP_CLIENT_KEY               its private key for private_key_jwt instead of a secret: PEM, a
                                    private JWK, or the path of a file holding one (never printed)
  MULTIAPP_PROFILE                  fapi2: check the app as a FAPI 2.0 client (rp.FAPI2)
  MULTIAPP_AUTH_METHOD              how it sends the secret: client_secret_basic, client_secret_post
                                    (or none); empty: the library's default (basic when the OP lists it,
                                    the other secret method when the OP refuses it)
  MULTIAPP_REDIRECT_URL             the callback URL registered at the OP
  MULTIAPP_POST_LOGOUT_REDIRECT_URL where the OP sends users after logout
  MULTIAPP_ADDR                     where the app listens (its port is compared with the redirect URL's)
  MULTIAPP_BACKCHANNEL_URL          the app's back-channel logout URL (checked when set)
  MULTIAPP_AUDIENCE                 an API's audience (token decode)

Exit status: 0 when no check failed (warnings included), 1 when one did, 2 on a usage error.
Run "multiapp doctor -h" or "multiapp token decode -h" for the flags.
`

// run is the whole command, without os.Exit: tests call it with their own
// arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "doctor":
		return doctorCmd(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		if len(args) > 1 && args[1] == "decode" {
			return tokenDecodeCmd(ctx, args[2:], getenv, stdin, stdout, stderr)
		}
		fmt.Fprintln(stderr, `multiapp token: the only subcommand is "decode"`)
		return 2
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "multiapp", version())
		return 0
	}
	fmt.Fprintf(stderr, "multiapp: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// common are the flags both commands share.
type common struct {
	json         bool
	timeout      time.Duration
	skew         time.Duration
	insecureHTTP bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound on each request to the OP or the app")
	fs.DurationVar(&c.skew, "clock-skew", rp.DefaultClockSkew, "the clock tolerance the apps give the library (rp.ProviderOptions.ClockSkew)")
	fs.BoolVar(&c.insecureHTTP, "insecure-http-issuer", false, "accept a plain-http issuer outside localhost (isolated test networks only)")
}

func (c *common) options() doctor.Options {
	return doctor.Options{Timeout: c.timeout, ClockSkew: c.skew, InsecureAllowHTTPIssuer: c.insecureHTTP}
}

func doctorCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("multiapp doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		c              common
		app            doctor.App
		secretEnv      string
		scopes         string
		appsFile       string
		backchannel    bool
		backchannelURL string
		problemsOnly   bool
	)
	c.register(fs)
	fs.StringVar(&app.Issuer, "issuer", getenv("MULTIAPP_ISSUER"), "the OP's issuer URL (MULTIAPP_ISSUER)")
	fs.StringVar(&app.ClientID, "client-id", getenv("MULTIAPP_CLIENT_ID"), "the app's client id (MULTIAPP_CLIENT_ID)")
	fs.StringVar(&app.AuthMethod, "auth-method", getenv("MULTIAPP_AUTH_METHOD"), "the token endpoint auth method the app uses: client_secret_basic, client_secret_post, private_key_jwt (with MULTIAPP_CLIENT_KEY) or none (MULTIAPP_AUTH_METHOD; empty: the library's default)")
	fs.StringVar(&secretEnv, "client-secret-env", "MULTIAPP_CLIENT_SECRET", "the environment variable holding the client secret (never a flag: flags show in ps and shell history)")
	fs.StringVar(&app.RedirectURL, "redirect-url", getenv("MULTIAPP_REDIRECT_URL"), "the redirect URL (MULTIAPP_REDIRECT_URL)")
	fs.StringVar(&app.PostLogoutRedirectURL, "post-logout-redirect-url", getenv("MULTIAPP_POST_LOGOUT_REDIRECT_URL"), "the post-logout redirect URL (MULTIAPP_POST_LOGOUT_REDIRECT_URL)")
	fs.StringVar(&app.Addr, "addr", getenv("MULTIAPP_ADDR"), "where the app listens (MULTIAPP_ADDR)")
	fs.StringVar(&app.Name, "name", "", "a name for the app in the report (default: the client id)")
	fs.StringVar(&scopes, "scopes", "", "the scopes the app requests, space or comma separated (default: "+strings.Join(rp.DefaultScopes, " ")+")")
	fs.BoolVar(&backchannel, "backchannel", false, "also check the app's back-channel logout endpoint (default URL: the redirect URL's origin + "+doctor.DefaultBackchannelPath+")")
	fs.StringVar(&backchannelURL, "backchannel-url", getenv("MULTIAPP_BACKCHANNEL_URL"), "the back-channel logout URL to check (MULTIAPP_BACKCHANNEL_URL; implies --backchannel)")
	fs.BoolVar(&problemsOnly, "problems-only", false, "print only the WARN and FAIL checks (and the summary of all)")
	fs.StringVar(&appsFile, "apps", "", "a JSON file listing several apps to check together (see the README)")
	rest, err := parse(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "multiapp doctor: unexpected argument %q\n", rest[0])
		return 2
	}
	var apps []doctor.App
	if appsFile != "" {
		var perApp string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "backchannel-url" || f.Name == "auth-method" {
				perApp = f.Name
			}
		})
		if perApp != "" {
			fmt.Fprintf(stderr, "multiapp doctor: --%s is one app's setting: with --apps, put %s in the file\n", perApp, strings.ReplaceAll(perApp, "-", "_"))
			return 2
		}
		f, err := os.Open(appsFile)
		if err != nil {
			fmt.Fprintf(stderr, "multiapp doctor: %v\n", err)
			return 2
		}
		apps, err = doctor.LoadApps(f, getenv, app.Issuer)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "multiapp doctor: %s: %v\n", appsFile, err)
			return 2
		}
		for i := range apps {
			apps[i].CheckBackchannel = apps[i].CheckBackchannel || backchannel
		}
	} else {
		app.ClientSecret = getenv(secretEnv)
		app.ClientKey = getenv("MULTIAPP_CLIENT_KEY")
		app.Profile = rp.Profile(getenv("MULTIAPP_PROFILE"))
		if secretEnv != "MULTIAPP_CLIENT_SECRET" {
			app.SecretEnv = secretEnv
		}
		if app.AuthMethod != "" {
			app.AuthMethodFrom = "MULTIAPP_AUTH_METHOD"
			fs.Visit(func(f *flag.Flag) {
				if f.Name == "auth-method" {
					app.AuthMethodFrom = "--auth-method"
				}
			})
		}
		app.Scopes = splitScopes(scopes)
		app.BackchannelURL = backchannelURL
		app.CheckBackchannel = backchannel
		apps = []doctor.App{app}
	}
	report := doctor.Diagnose(ctx, apps, c.options())
	if problemsOnly {
		report = report.Problems()
	}
	if c.json {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "multiapp doctor: %v\n", err)
		return 1
	}
	if report.Failed() {
		return 1
	}
	return 0
}

func tokenDecodeCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("multiapp token decode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		c    common
		opts doctor.TokenOptions
		kind string
	)
	c.register(fs)
	fs.StringVar(&opts.Issuer, "issuer", getenv("MULTIAPP_ISSUER"), "the issuer the token must come from (MULTIAPP_ISSUER)")
	fs.StringVar(&opts.ClientID, "client-id", getenv("MULTIAPP_CLIENT_ID"), "the app an ID or logout token must be for (MULTIAPP_CLIENT_ID)")
	fs.StringVar(&opts.Audience, "audience", getenv("MULTIAPP_AUDIENCE"), "the API an access token must be for (MULTIAPP_AUDIENCE)")
	fs.StringVar(&kind, "kind", "auto", "the token's kind: id, access, logout or auto")
	fs.BoolVar(&opts.Offline, "offline", false, "decode only: do not contact the OP (no signature check)")
	rest, err := parse(fs, args)
	if err != nil {
		return flagError(err)
	}
	if opts.Kind, err = doctor.ParseKind(kind); err != nil {
		fmt.Fprintf(stderr, "multiapp token decode: %v\n", err)
		return 2
	}
	var raw string
	switch {
	case len(rest) > 1:
		fmt.Fprintln(stderr, "multiapp token decode: one token at a time")
		return 2
	case len(rest) == 1 && rest[0] != "-":
		raw = rest[0]
	default:
		b, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			fmt.Fprintf(stderr, "multiapp token decode: reading stdin: %v\n", err)
			return 2
		}
		raw = string(b)
	}
	if strings.TrimSpace(raw) == "" {
		fmt.Fprintln(stderr, "multiapp token decode: no token (pass it as an argument, or on stdin to keep it out of the shell history)")
		return 2
	}
	opts.Options = c.options()
	report := doctor.DecodeToken(ctx, raw, opts)
	if c.json {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "multiapp token decode: %v\n", err)
		return 1
	}
	if report.Failed() {
		return 1
	}
	return 0
}

// parse parses flags anywhere among the arguments ("token decode TOKEN
// --json" works) and returns the other arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		if args[0] == "--" {
			return append(rest, args[1:]...), nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

func flagError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2 // the flag package has printed the error and the usage
}

func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}
