package devop

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// intercept runs inside zitadel/oidc's router, after its CORS handler and with
// the issuer in the request context. It serves the pages zitadel/oidc leaves
// to the application (login, end-session, discovery as this OP wants it) and
// passes everything else on.
func (o *OP) intercept(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case DiscoveryPath:
			o.handleDiscovery(w, r)
		case AuthorizePath:
			o.handleAuthorize(w, r, next)
		case TokenPath:
			o.handleToken(w, r, next)
		case UserinfoPath:
			o.handleUserinfo(w, r, next)
		case RevocationPath:
			o.handleRevocation(w, r, next)
		case EndSessionPath:
			o.handleLogout(w, r)
		case loginPath:
			o.handleLogin(w, r)
		case loggedOutPath:
			o.renderMessage(w, http.StatusOK, "Signed out", "You are signed out of the development OP.")
		case adminEndPath:
			o.handleAdminEnd(w, r)
		case "/":
			o.handleHome(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// handleDiscovery publishes what this OP really supports: zitadel/oidc's
// document also lists the implicit, JWT-profile and device grants, which the
// clients of this OP cannot use.
func (o *OP) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	d := op.CreateDiscoveryConfig(r.Context(), o.provider, storage{o})
	d.DeviceAuthorizationEndpoint = ""
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{"query", "form_post"}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic}
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.BackChannelLogoutSupported = true
	d.BackChannelLogoutSessionSupported = true
	w.Header().Set("Cache-Control", "no-store")
	httphelper.MarshalJSON(w, struct {
		*oidc.DiscoveryConfiguration
		// zitadel/oidc has no field for it (RFC 9449 §5.1).
		DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
	}{d, o.proofs.Algorithms()})
}

// handleAuthorize refuses an unknown client or unregistered redirect URI with
// a page that says what is registered, before zitadel/oidc validates the rest.
func (o *OP) handleAuthorize(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if err := r.ParseForm(); err != nil {
		o.renderMessage(w, http.StatusBadRequest, "Invalid request", "The authorization request could not be parsed.")
		return
	}
	clientID := r.Form.Get("client_id")
	c := o.clients[clientID]
	if c == nil {
		o.renderMessage(w, http.StatusBadRequest, "Unknown client",
			fmt.Sprintf("No client with client_id %q is registered at this OP. Registered clients: %s.", clientID, strings.Join(o.clientIDs(), ", ")))
		return
	}
	redirect := r.Form.Get("redirect_uri")
	if redirect == "" {
		o.renderMessage(w, http.StatusBadRequest, "Missing redirect_uri", "The authorization request has no redirect_uri.")
		return
	}
	if !c.redirectAllowed(redirect) {
		detail := fmt.Sprintf("The redirect_uri %q is not registered for client %q. Registered: %s. Redirect URIs must match exactly: scheme, host, port, path and trailing slash.",
			redirect, c.ID, strings.Join(c.RedirectURIs, ", "))
		if c.Native {
			detail += " (This native client may use any port on a registered loopback URI.)"
		}
		o.cfg.Logger.Warn("authorize: redirect_uri not registered", "client_id", c.ID, "redirect_uri", redirect)
		o.renderMessage(w, http.StatusBadRequest, "Redirect URI not registered", detail)
		return
	}
	if jkt := r.Form.Get("dpop_jkt"); jkt != "" {
		r = r.WithContext(context.WithValue(r.Context(), dpopJKTContext{}, jkt))
	}
	next.ServeHTTP(w, r)
}

func (o *OP) clientIDs() []string {
	ids := make([]string, 0, len(o.clients))
	for id := range o.clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// handleToken authenticates the client first (see authenticateClient), then
// checks the DPoP proof if there is one (see checkTokenProof, dpop.go), and
// counts token requests. The answer is buffered so the event is recorded
// before the client can read the answer, and so that the token_type of
// DPoP-bound tokens can be set.
func (o *OP) handleToken(w http.ResponseWriter, r *http.Request, next http.Handler) {
	_ = r.ParseForm() // zitadel/oidc parses again (a no-op) and answers errors
	grantType := r.Form.Get("grant_type")
	clientID := r.Form.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(id); err == nil {
			clientID = id
		}
	}
	rec := httptest.NewRecorder()
	if r.Method != http.MethodPost {
		next.ServeHTTP(rec, r)
	} else if c, failed := o.authenticateClient(r); failed != nil {
		o.cfg.Logger.Warn("token request: client authentication failed", "client_id", clientID, "error", failed.code, "reason", failed.description)
		failed.write(rec)
	} else if jkt, nonce, failed := o.checkTokenProof(r, c); failed != nil {
		o.cfg.Logger.Warn("token request: DPoP refused", "client_id", clientID, "error", failed.code, "reason", failed.description)
		failed.write(rec)
	} else if jkt == "" {
		next.ServeHTTP(rec, r)
	} else {
		next.ServeHTTP(rec, r.WithContext(withProofKey(r.Context(), jkt)))
		if nonce != "" {
			rec.Header().Set("DPoP-Nonce", nonce)
		}
		if rec.Code == http.StatusOK {
			body, err := boundTokenResponse(rec.Body.Bytes())
			if err != nil {
				o.cfg.Logger.Error("token request: the answer is not JSON", "client_id", clientID, "error", err)
				rec = httptest.NewRecorder()
				(&clientAuthError{status: http.StatusInternalServerError, code: "server_error", description: "the token answer could not be made"}).write(rec)
			} else {
				rec.Body.Reset()
				rec.Body.Write(body)
				rec.Header().Del("Content-Length")
			}
		}
	}
	o.cfg.Logger.Info("token request", "grant_type", grantType, "client_id", clientID, "status", rec.Code)
	o.emit(Event{Kind: EventToken, GrantType: grantType, ClientID: clientID, Status: rec.Code})
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// handleRevocation authenticates the client of a revocation request (RFC
// 7009 §2.1: the same client authentication as at the token endpoint)
// before zitadel/oidc revokes anything.
func (o *OP) handleRevocation(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			if _, failed := o.authenticateClient(r); failed != nil {
				o.cfg.Logger.Warn("revocation request: client authentication failed", "error", failed.code, "reason", failed.description)
				failed.write(w)
				return
			}
		}
	}
	next.ServeHTTP(w, r)
}

// handleLogin serves the login page. With a usable OP session it completes
// the authorization request without showing anything (single sign-on).
func (o *OP) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		o.renderMessage(w, http.StatusBadRequest, "Invalid request", "The form could not be parsed.")
		return
	}
	o.mu.Lock()
	ar := o.authRequestLocked(r.Form.Get("authRequestID"))
	if ar != nil {
		ar = ar.clone()
	}
	o.mu.Unlock()
	if ar == nil || ar.done {
		o.renderMessage(w, http.StatusBadRequest, "Sign-in request expired",
			"This sign-in request is unknown, already used or expired. Go back to the application and sign in again.")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		o.handleLoginSubmit(w, r, ar)
		return
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	sess := o.sessionFromRequest(r)
	usable := sess != nil
	if usable && (slices.Contains(ar.prompt, oidc.PromptLogin) || slices.Contains(ar.prompt, oidc.PromptSelectAccount)) {
		usable = false
	}
	if usable && ar.maxAge != nil && time.Since(sess.authTime) > time.Duration(*ar.maxAge)*time.Second {
		usable = false
	}
	if usable && ar.hintSubject != "" && ar.hintSubject != sess.userID {
		usable = false
	}
	if slices.Contains(ar.prompt, oidc.PromptNone) {
		if !usable {
			o.mu.Lock()
			if live := o.authReqs[ar.id]; live != nil {
				o.deleteAuthRequestLocked(live)
			}
			o.mu.Unlock()
			o.cfg.Logger.Info("prompt=none: login required", "client_id", ar.clientID)
			o.emit(Event{Kind: EventLoginRequired, ClientID: ar.clientID})
			op.AuthRequestError(w, r, ar, oidc.ErrLoginRequired().WithDescription("no usable session at the OP"), o.provider)
			return
		}
	}
	if usable {
		o.complete(w, r, ar, sess, EventSilentLogin)
		return
	}
	o.renderLogin(w, http.StatusOK, ar, ar.loginHint, "")
}

func (o *OP) handleLoginSubmit(w http.ResponseWriter, r *http.Request, ar *authRequest) {
	login := strings.TrimSpace(r.PostForm.Get("username"))
	user := o.usersByLogin[strings.ToLower(login)]
	// Compare against something even for unknown users, for uniform timing.
	want := "\x00no user"
	if user != nil {
		want = user.Password
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("password")), []byte(want)) != 1 || user == nil {
		o.cfg.Logger.Info("login failed", "client_id", ar.clientID, "username", login)
		o.emit(Event{Kind: EventLoginFailed, ClientID: ar.clientID})
		o.renderLogin(w, http.StatusUnauthorized, ar, login, "Wrong email or password.")
		return
	}

	now := time.Now()
	old := o.sessionFromRequest(r)
	var sess *session
	if old != nil && old.userID == user.ID {
		// Re-authentication (prompt=login, max_age): same session, new auth_time.
		o.mu.Lock()
		if s := o.sessions[old.id]; s != nil {
			s.authTime = now
			cp := *s
			cp.clients = slices.Clone(s.clients)
			sess = &cp
		}
		o.mu.Unlock()
	} else if old != nil {
		// Another user signs in with this browser: the old session ends.
		o.endSession(r.Context(), old.id, "replaced")
	}
	if sess == nil {
		sess = &session{
			id:       newID(sessionIDPrefix),
			handle:   newID(""),
			userID:   user.ID,
			authTime: now,
			created:  now,
			expires:  now.Add(o.cfg.SessionLifetime),
		}
		o.mu.Lock()
		stored := *sess
		o.sessions[sess.id] = &stored
		o.handles[sess.handle] = sess.id
		o.mu.Unlock()
		http.SetCookie(w, &http.Cookie{
			Name:     o.cookieName,
			Value:    sess.handle,
			Path:     "/",
			MaxAge:   int(o.cfg.SessionLifetime / time.Second),
			HttpOnly: true,
			Secure:   o.secureCookie,
			SameSite: http.SameSiteLaxMode,
		})
	}
	o.cfg.Logger.Info("login", "sub", user.ID, "sid", sess.id, "client_id", ar.clientID)
	o.complete(w, r, ar, sess, EventLogin)
}

// complete marks the authorization request authenticated by the session,
// records the client as a participant of the session, and sends the browser
// to zitadel/oidc's callback, which issues the code.
func (o *OP) complete(w http.ResponseWriter, r *http.Request, ar *authRequest, sess *session, kind EventKind) {
	o.mu.Lock()
	live := o.authRequestLocked(ar.id)
	s := o.sessions[sess.id]
	if live == nil || live.done || s == nil {
		o.mu.Unlock()
		o.renderMessage(w, http.StatusBadRequest, "Sign-in request expired", "Go back to the application and sign in again.")
		return
	}
	live.done = true
	live.userID = s.userID
	live.sessionID = s.id
	live.authTime = s.authTime
	if !slices.Contains(s.clients, live.clientID) {
		s.clients = append(s.clients, live.clientID)
	}
	o.mu.Unlock()
	if kind == EventSilentLogin {
		o.cfg.Logger.Info("single sign-on", "sub", s.userID, "sid", s.id, "client_id", ar.clientID)
	}
	o.emit(Event{Kind: kind, ClientID: ar.clientID, UserID: s.userID, SessionID: s.id})
	http.Redirect(w, r, op.AuthCallbackURL(o.provider)(o.issuerContext(r.Context()), ar.id), http.StatusFound)
}

// handleLogout is the end-session endpoint (RP-initiated logout). It finds
// the OP session by the OP's cookie, ends it, sends the back-channel logout
// tokens, and only then redirects the browser.
func (o *OP) handleLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	req, err := op.ParseEndSessionRequest(r, o.provider.Decoder())
	if err != nil {
		o.renderMessage(w, http.StatusBadRequest, "Invalid logout request", "The logout request could not be parsed.")
		return
	}
	if req.ClientID != "" && o.clients[req.ClientID] == nil {
		o.renderMessage(w, http.StatusBadRequest, "Unknown client", fmt.Sprintf("No client with client_id %q is registered at this OP.", req.ClientID))
		return
	}
	if req.PostLogoutRedirectURI != "" && req.ClientID == "" && req.IdTokenHint == "" {
		o.renderMessage(w, http.StatusBadRequest, "Invalid logout request",
			"post_logout_redirect_uri needs id_token_hint or client_id, to know which client registered it.")
		return
	}
	es, err := op.ValidateEndSessionRequest(r.Context(), req, o.provider)
	if err != nil {
		detail := "The logout request is invalid."
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.Description != "" {
			detail = oe.Description + "."
		}
		// ValidateEndSessionRequest has set ClientID to the azp of a valid id_token_hint.
		if c := o.clients[req.ClientID]; c != nil && req.PostLogoutRedirectURI != "" && !slices.Contains(c.PostLogoutRedirectURIs, req.PostLogoutRedirectURI) {
			detail = fmt.Sprintf("The post_logout_redirect_uri %q is not registered for client %q. Registered: %s. They must match exactly.",
				req.PostLogoutRedirectURI, c.ID, orNone(c.PostLogoutRedirectURIs))
		}
		o.cfg.Logger.Warn("logout refused", "client_id", req.ClientID, "post_logout_redirect_uri", req.PostLogoutRedirectURI, "error", detail)
		o.renderMessage(w, http.StatusBadRequest, "Logout refused", detail)
		return
	}
	if sess := o.sessionFromRequest(r); sess != nil {
		o.endSession(r.Context(), sess.id, "logout")
	}
	http.SetCookie(w, &http.Cookie{Name: o.cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: o.secureCookie, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, es.RedirectURI, http.StatusFound)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// handleAdminEnd ends a session from the OP's home page, like an
// administrator's logout at Scalekit.
func (o *OP) handleAdminEnd(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != o.issuerOrigin() {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	if _, err := o.EndSession(r.Context(), r.PostFormValue("sid")); err != nil {
		o.renderMessage(w, http.StatusNotFound, "Unknown session", "That session has already ended.")
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (o *OP) issuerOrigin() string {
	u, _ := url.Parse(o.issuer)
	return u.Scheme + "://" + u.Host
}
