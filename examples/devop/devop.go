package devop

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/dpop"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Endpoint paths. They are those of Scalekit where Scalekit has the endpoint,
// so an app moves between this OP and Scalekit by changing only its issuer,
// client id and secret. Apps should still find them through discovery.
const (
	DiscoveryPath     = "/.well-known/openid-configuration"
	AuthorizePath     = "/oauth/authorize"
	TokenPath         = "/oauth/token"
	EndSessionPath    = "/oidc/logout"
	KeysPath          = "/keys"
	UserinfoPath      = "/userinfo"
	RevocationPath    = "/oauth/revoke"
	IntrospectionPath = "/oauth/introspect"

	loginPath     = "/login"
	loggedOutPath = "/logged-out"
	adminEndPath  = "/admin/end-session"
)

// ErrUnknownSession is returned by [OP.EndSession] for a session id that does
// not name a live session.
var ErrUnknownSession = errors.New("devop: unknown session")

// OP is an in-process development OpenID Provider. It is safe for concurrent
// use. Create it with [New] or, in tests, [Start].
type OP struct {
	cfg          Config
	issuer       string
	clients      map[string]*Client
	users        map[string]*User
	usersByLogin map[string]*User
	key          *signingKey
	provider     *op.Provider
	cookieName   string
	secureCookie bool
	transport    *http.Transport
	httpClient   *http.Client
	proofs       *dpop.Verifier // DPoP proofs at the token and userinfo endpoints

	mu          sync.Mutex
	authReqs    map[string]*authRequest
	codes       map[string]string // code -> auth request id
	sessions    map[string]*session
	handles     map[string]string // cookie value -> session id
	access      map[string]*accessToken
	accessByJWT map[string]string
	refresh     map[string]*refreshToken // by token value
	stats       stats
	lastSweep   time.Time
}

// New creates an OP for cfg.Issuer. It does not listen: serve [OP.Handler]
// at the issuer's address, or use [OP.ListenAndServe].
func New(cfg Config) (*OP, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	issuer := strings.TrimSuffix(cfg.Issuer, "/")
	u, _ := url.Parse(issuer)

	o := &OP{
		cfg:          cfg,
		issuer:       issuer,
		clients:      map[string]*Client{},
		users:        map[string]*User{},
		usersByLogin: map[string]*User{},
		cookieName:   "devop_session_" + portOf(u),
		secureCookie: u.Scheme == "https",
		authReqs:     map[string]*authRequest{},
		codes:        map[string]string{},
		sessions:     map[string]*session{},
		handles:      map[string]string{},
		access:       map[string]*accessToken{},
		accessByJWT:  map[string]string{},
		refresh:      map[string]*refreshToken{},
		stats:        newStats(),
	}
	for _, c := range cfg.Clients {
		c.RedirectURIs = slices.Clone(c.RedirectURIs)
		c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
		c.Scopes = slices.Clone(c.Scopes)
		o.clients[c.ID] = &c
	}
	for _, usr := range cfg.Users {
		usr.Roles = slices.Clone(usr.Roles)
		usr.Permissions = slices.Clone(usr.Permissions)
		o.users[usr.ID] = &usr
		o.usersByLogin[strings.ToLower(usr.Email)] = &usr
	}
	// The local part is a login name too, unless two users share it.
	local := map[string]int{}
	for _, usr := range o.users {
		l, _, _ := strings.Cut(strings.ToLower(usr.Email), "@")
		local[l]++
	}
	for _, usr := range o.users {
		l, _, _ := strings.Cut(strings.ToLower(usr.Email), "@")
		if _, taken := o.usersByLogin[l]; local[l] == 1 && !taken {
			o.usersByLogin[l] = usr
		}
	}

	key := cfg.SigningKey
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, err
		}
	}
	var err error
	if o.key, err = newSigningKey(key); err != nil {
		return nil, err
	}

	o.transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.BackChannelTimeout}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	o.httpClient = &http.Client{
		Transport: o.transport,
		Timeout:   cfg.BackChannelTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}

	if o.proofs, err = newProofVerifier(cfg.DPoPNonces); err != nil {
		return nil, fmt.Errorf("devop: %w", err)
	}

	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	scopes := slices.Clone(DefaultScopes)
	for _, c := range o.clients {
		for _, s := range c.Scopes {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	opCfg := &op.Config{
		CryptoKey:                         cryptoKey,
		DefaultLogoutRedirectURI:          issuer + loggedOutPath,
		CodeMethodS256:                    true,
		AuthMethodPost:                    true,
		GrantTypeRefreshToken:             true,
		SupportedScopes:                   scopes,
		SupportedClaims:                   supportedClaims,
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	opts := []op.Option{
		op.WithCustomEndpoints(
			op.NewEndpoint(AuthorizePath),
			op.NewEndpoint(TokenPath),
			op.NewEndpoint(UserinfoPath),
			op.NewEndpoint(RevocationPath),
			op.NewEndpoint(EndSessionPath),
			op.NewEndpoint(KeysPath),
		),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(IntrospectionPath)),
		op.WithCrypto(tokenCrypto{o}),
		op.WithHttpInterceptors(o.intercept),
	}
	if u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	o.provider, err = op.NewProvider(opCfg, storage{o}, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("devop: %w", err)
	}
	return o, nil
}

var supportedClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "amr", "azp",
	"at_hash", "c_hash", "client_id", "sid", "scope", "roles", "permissions",
	"name", "preferred_username", "email", "email_verified",
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Start creates an OP on a random 127.0.0.1 port for the duration of a test
// and stops it in t.Cleanup. cfg.Issuer is ignored: the issuer is
// "http://127.0.0.1:PORT". It calls t.Fatal when the OP cannot start.
func Start(t testing.TB, cfg Config) *OP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg.Issuer = "http://" + srv.Listener.Addr().String()
	o, err := New(cfg)
	if err != nil {
		srv.Listener.Close()
		t.Fatalf("devop: %v", err)
	}
	srv.Config.Handler = o.Handler()
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		o.Close()
	})
	return o
}

// Handler returns the OP's HTTP handler. Serve it at the issuer's address.
func (o *OP) Handler() http.Handler { return o.provider }

// Issuer returns the issuer URL, without trailing slash.
func (o *OP) Issuer() string { return o.issuer }

// DiscoveryURL returns the URL of the OpenID Provider configuration document.
func (o *OP) DiscoveryURL() string { return o.issuer + DiscoveryPath }

// ListenAndServe listens on the issuer's host and port and serves the OP
// until ctx is done, then shuts the server down gracefully.
func (o *OP) ListenAndServe(ctx context.Context) error {
	u, _ := url.Parse(o.issuer)
	ln, err := net.Listen("tcp", net.JoinHostPort(u.Hostname(), portOf(u)))
	if err != nil {
		return fmt.Errorf("devop: %w", err)
	}
	return o.Serve(ctx, ln)
}

// Serve serves the OP on ln until ctx is done, then shuts the server down
// gracefully. The listener must be reachable at the issuer's address. While
// serving, it calls [OP.ExpireSessions] every 30 seconds.
func (o *OP) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: o.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				o.ExpireSessions(ctx)
			}
		}
	}()
	o.cfg.Logger.Info("development OP listening", "issuer", o.issuer, "addr", ln.Addr().String())
	select {
	case err := <-errc:
		o.Close()
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	o.Close()
	if err != nil {
		return err
	}
	return nil
}

// Close releases the OP's idle back-channel connections. The OP still works
// after Close.
func (o *OP) Close() { o.transport.CloseIdleConnections() }

// Stats returns a snapshot of the OP's counters.
func (o *OP) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats.snapshot()
}

// SessionInfo describes a live OP session.
type SessionInfo struct {
	ID       string
	UserID   string
	AuthTime time.Time
	Expires  time.Time
	// Clients are the clients that took part in the session, in the order
	// they first signed in.
	Clients []string
}

// Sessions returns the live OP sessions, oldest first.
func (o *OP) Sessions() []SessionInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []SessionInfo
	for _, s := range o.sessions {
		if o.liveSessionLocked(s.id) == nil {
			continue
		}
		out = append(out, SessionInfo{ID: s.id, UserID: s.userID, AuthTime: s.authTime, Expires: s.expires, Clients: slices.Clone(s.clients)})
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.AuthTime.Compare(b.AuthTime) })
	return out
}

// EndSession ends the OP session sid as an administrator would: it revokes
// the session's refresh and access tokens, then POSTs a back-channel logout
// token to every client that took part in the session, and returns the
// outcome of each POST once all have answered or timed out.
func (o *OP) EndSession(ctx context.Context, sid string) ([]Delivery, error) {
	d, ok := o.endSession(ctx, sid, "admin")
	if !ok {
		return nil, ErrUnknownSession
	}
	return d, nil
}

// EndUserSessions ends every live session of the user, like [OP.EndSession].
func (o *OP) EndUserSessions(ctx context.Context, userID string) []Delivery {
	var all []Delivery
	for _, s := range o.Sessions() {
		if s.UserID == userID {
			d, _ := o.endSession(ctx, s.ID, "admin")
			all = append(all, d...)
		}
	}
	return all
}

// ExpireSessions ends every session past its lifetime, with back-channel
// logout, and returns the deliveries. Expired sessions are also ended when
// they are next used (a request with their cookie, a refresh); call this in
// a test with a short [Config.SessionLifetime] to end them without that.
func (o *OP) ExpireSessions(ctx context.Context) []Delivery {
	o.mu.Lock()
	var expired []string
	for id := range o.sessions {
		if o.liveSessionLocked(id) == nil {
			expired = append(expired, id)
		}
	}
	o.mu.Unlock()
	var all []Delivery
	for _, id := range expired {
		d, _ := o.endSession(ctx, id, "expired")
		all = append(all, d...)
	}
	return all
}

func (o *OP) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	o.mu.Lock()
	o.stats.record(e)
	o.mu.Unlock()
	if o.cfg.OnEvent != nil {
		o.cfg.OnEvent(e)
	}
}

// endSession removes the session and everything issued in it, then sends the
// back-channel logout tokens. It reports false when there was no such session.
func (o *OP) endSession(ctx context.Context, sid, reason string) ([]Delivery, bool) {
	o.mu.Lock()
	s := o.sessions[sid]
	if s == nil {
		o.mu.Unlock()
		return nil, false
	}
	delete(o.sessions, sid)
	delete(o.handles, s.handle)
	for tok, rt := range o.refresh {
		if rt.sessionID == sid {
			delete(o.refresh, tok)
		}
	}
	for id, at := range o.access {
		if at.sessionID == sid {
			o.deleteAccessLocked(id)
		}
	}
	for _, ar := range o.authReqs {
		if ar.sessionID == sid {
			o.deleteAuthRequestLocked(ar)
		}
	}
	o.mu.Unlock()

	o.cfg.Logger.Info("session ended", "sid", sid, "sub", s.userID, "reason", reason, "clients", s.clients)
	o.emit(Event{Kind: EventSessionEnded, SessionID: sid, UserID: s.userID, Reason: reason})
	return o.sendBackChannelLogouts(ctx, s), true
}

// endExpired ends the session if it exists and has expired.
func (o *OP) endExpired(ctx context.Context, sid string) {
	o.mu.Lock()
	s := o.sessions[sid]
	expired := s != nil && !time.Now().Before(s.expires)
	o.mu.Unlock()
	if expired {
		o.endSession(ctx, sid, "expired")
	}
}

// sessionFromRequest returns a copy of the live session named by the
// request's cookie, or nil. An expired session is ended on the way.
func (o *OP) sessionFromRequest(r *http.Request) *session {
	c, err := r.Cookie(o.cookieName)
	if err != nil {
		return nil
	}
	o.mu.Lock()
	sid := o.handles[c.Value]
	s := o.sessions[sid]
	if s == nil {
		o.mu.Unlock()
		return nil
	}
	if o.liveSessionLocked(sid) == nil {
		o.mu.Unlock()
		o.endExpired(r.Context(), sid)
		return nil
	}
	cp := *s
	cp.clients = slices.Clone(s.clients)
	o.mu.Unlock()
	return &cp
}

// issuerContext returns ctx with the issuer zitadel/oidc reads from it.
func (o *OP) issuerContext(ctx context.Context) context.Context {
	return op.ContextWithIssuer(ctx, o.issuer)
}
