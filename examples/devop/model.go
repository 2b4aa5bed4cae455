package devop

import (
	"crypto/rand"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Id prefixes. Scalekit-like where Scalekit has a kind of id.
const (
	sessionIDPrefix      = "ses_"
	authRequestIDPrefix  = "ar_"
	accessTokenIDPrefix  = "at_"
	refreshTokenIDPrefix = "rti_"
	refreshTokenPrefix   = "rt_"
	logoutTokenIDPrefix  = "lt_"
)

func newID(prefix string) string { return prefix + rand.Text() }

// amrPassword is the only authentication method of the development OP.
var amrPassword = []string{"pwd"}

// authRequest is one authorization request, from /oauth/authorize to the code
// exchange. The store hands out copies, so zitadel/oidc never sees a value
// another goroutine writes.
type authRequest struct {
	id           string
	clientID     string
	redirectURI  string
	scopes       []string
	state        string
	nonce        string
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	prompt       []string
	maxAge       *uint
	loginHint    string
	hintSubject  string // sub of a valid id_token_hint
	dpopJKT      string // dpop_jkt: the DPoP key the code is bound to (RFC 9449 §10)
	created      time.Time

	// Set when the user is authenticated.
	done      bool
	userID    string
	sessionID string
	authTime  time.Time
	code      string
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	c.prompt = slices.Clone(a.prompt)
	if a.challenge != nil {
		ch := *a.challenge
		c.challenge = &ch
	}
	return &c
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return slices.Clone(amrPassword) }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.userID }
func (a *authRequest) Done() bool                            { return a.done }

// session is one OP session: one browser signed in as one user. Every client
// that obtained a code from it is a participant and receives a back-channel
// logout token when it ends.
type session struct {
	id       string
	handle   string // the cookie value; not the id, which RPs see in tokens
	userID   string
	authTime time.Time
	created  time.Time
	expires  time.Time
	clients  []string // participants, in order of first sign-in
}

// accessToken is the record behind one JWT access token.
type accessToken struct {
	id        string // also the jti
	clientID  string
	userID    string
	sessionID string
	family    string // refresh token family, empty without refresh token
	audience  []string
	scopes    []string
	issued    time.Time
	expires   time.Time
	jwt       string
	jkt       string // thumbprint of the DPoP key the token is bound to (cnf.jkt), if any
}

// refreshToken is one opaque refresh token. Rotation marks it used and issues
// a new one of the same family.
type refreshToken struct {
	id        string
	token     string
	family    string
	clientID  string
	userID    string
	sessionID string
	scopes    []string
	authTime  time.Time
	issued    time.Time
	expires   time.Time
	used      bool
	jkt       string // DPoP key the token is bound to (public clients only, RFC 9449 §5)
}

// refreshRequest is what a refresh token grant works on (op.RefreshTokenRequest).
type refreshRequest struct {
	rt     refreshToken
	scopes []string // may be narrowed by the request's scope parameter
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return slices.Clone(amrPassword) }
func (r *refreshRequest) GetAudience() []string       { return []string{r.rt.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.rt.authTime }
func (r *refreshRequest) GetClientID() string         { return r.rt.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.rt.userID }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }
