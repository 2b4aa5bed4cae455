package bearer

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/multiapp-go/multiapp/internal/acr"
	"github.com/multiapp-go/multiapp/rp"
)

// Requirement is a condition on a token, checked by Middleware.Require:
// its scopes, permissions or roles (AnyScope, AllScopes, AnyPermission,
// AllPermissions, AnyRole, AllRoles; answered 403 insufficient_scope), or
// how and when the user authenticated (AnyACR, MaxAuthAge; answered 401
// insufficient_user_authentication, RFC 9470 step-up).
type Requirement struct {
	kind   string // "scope", "permission", "role", "acr" or "max_age"
	all    bool
	values []string
	maxAge int64 // max_age: whole seconds

	// skew is the tolerance on auth_time (max_age); zero:
	// rp.DefaultClockSkew. Require sets it from Config.ClockSkew.
	skew time.Duration
	// params are the challenge's attributes when the requirement is not
	// met: scope for a scope, permission or role; for AnyACR and MaxAuthAge,
	// acr_values and max_age of every step-up requirement of the route
	// (Require sets them), so one new sign-in meets them all.
	params *authParams
}

// AnyScope requires at least one of the scopes ("scope" string or
// "scopes" array claim).
func AnyScope(scopes ...string) Requirement { return newRequirement("scope", false, scopes) }

// AllScopes requires every one of the scopes.
func AllScopes(scopes ...string) Requirement { return newRequirement("scope", true, scopes) }

// AnyPermission requires at least one of the permissions ("permissions"
// claim, e.g. Scalekit's "orders:read").
func AnyPermission(perms ...string) Requirement { return newRequirement("permission", false, perms) }

// AllPermissions requires every one of the permissions.
func AllPermissions(perms ...string) Requirement { return newRequirement("permission", true, perms) }

// AnyRole requires at least one of the roles ("roles" claim).
func AnyRole(roles ...string) Requirement { return newRequirement("role", false, roles) }

// AllRoles requires every one of the roles.
func AllRoles(roles ...string) Requirement { return newRequirement("role", true, roles) }

// AnyACR requires the user to have authenticated with one of the
// Authentication Context Class References: the token's "acr" claim (RFC
// 9068 §2.2.1; from introspection, RFC 9470 §6.2) must be one of values,
// exactly. A token without one, or with another, is answered 401
// error="insufficient_user_authentication" with acr_values listing values
// in the order given, which is the order of preference (RFC 9470 §3): the
// client signs the user in again asking for them, and retries with the new
// token.
//
// The values are the OP's (its discovery document lists them as
// acr_values_supported). Each must be non-empty printable ASCII without a
// space, a quote or a backslash, and together at most 128 bytes (joined
// with spaces): the rule a web app of this library
// (middleware.StepUpFromResponse) follows a challenge by, since the values
// go through its login route and login cookie. AnyACR panics otherwise, as
// a route set up wrong should fail at start-up.
//
//	mux.Handle("POST /payments", api.Require(bearer.AnyACR("urn:example:mfa"))(pay))
func AnyACR(values ...string) Requirement {
	if len(values) > 0 { // none: newRequirement says so
		if err := acr.Check(values); err != nil {
			panic("bearer: AnyACR: " + err.Error())
		}
	}
	return newRequirement("acr", false, values)
}

// MaxAuthAge requires the user to have authenticated no longer than d ago
// (rounded down to whole seconds): the token's "auth_time" claim (RFC 9068
// §2.2.1; from introspection, RFC 9470 §6.2) must be present, not in the
// future and no older than that, with the clock skew tolerated
// (Config.ClockSkew). auth_time is set when the user signs in and is not
// renewed by refreshes: this is the time since the user last proved who
// they are, not the token's age. A token that fails is answered 401
// error="insufficient_user_authentication" with max_age in seconds (RFC
// 9470 §3); the client signs the user in again with that max_age, and the
// OP makes them authenticate anew. MaxAuthAge panics on a negative d.
//
//	mux.Handle("POST /account/email", api.Require(bearer.MaxAuthAge(5*time.Minute))(changeEmail))
func MaxAuthAge(d time.Duration) Requirement {
	if d < 0 {
		panic(fmt.Sprintf("bearer: MaxAuthAge(%v) is negative", d))
	}
	return Requirement{kind: "max_age", maxAge: int64(d / time.Second)}
}

func newRequirement(kind string, all bool, values []string) Requirement {
	if len(values) == 0 {
		panic(fmt.Sprintf("bearer: a %s requirement needs at least one value", kind))
	}
	q := Requirement{kind: kind, all: all, values: slices.Clone(values)}
	if !q.stepUp() {
		q.params = &authParams{scope: q.values, maxAge: -1}
	}
	return q
}

// stepUp: the requirement is on the authentication (RFC 9470), not on
// what the token grants.
func (q *Requirement) stepUp() bool { return q.kind == "acr" || q.kind == "max_age" }

// String describes the requirement, e.g. `any of scopes [orders:read]`,
// `any of acrs [urn:example:mfa]`, `authenticated within 300s`.
func (q Requirement) String() string {
	if q.kind == "max_age" {
		return fmt.Sprintf("authenticated within %ds", q.maxAge)
	}
	quant := "any of"
	if q.all {
		quant = "all of"
	}
	return fmt.Sprintf("%s %ss %v", quant, q.kind, q.values)
}

// Met reports whether the claims satisfy the requirement, now.
func (q Requirement) Met(cl *rp.Claims) bool { return q.met(cl) }

func (q *Requirement) met(cl *rp.Claims) bool {
	if cl == nil {
		return false
	}
	var have []string
	switch q.kind {
	case "scope":
		have = cl.Scopes
	case "permission":
		have = cl.Permissions
	case "role":
		have = cl.Roles
	case "acr":
		return cl.ACR != "" && slices.Contains(q.values, cl.ACR)
	case "max_age":
		return q.recent(cl, time.Now())
	}
	for _, v := range q.values {
		switch in := slices.Contains(have, v); {
		case in && !q.all:
			return true
		case !in && q.all:
			return false
		}
	}
	return q.all
}

// recent: the user authenticated (auth_time) within q.maxAge seconds of
// now, with the clock skew.
func (q *Requirement) recent(cl *rp.Claims, now time.Time) bool {
	skew := q.skew
	if skew <= 0 {
		skew = rp.DefaultClockSkew
	}
	// q.maxAge came from a time.Duration: back to one, it cannot overflow.
	return cl.AuthenticatedWithin(time.Duration(q.maxAge)*time.Second, now, skew)
}

// error is the typed reason for a token that does not meet q. The Detail
// of a step-up requirement is the error_description the client gets: a
// fixed text.
func (q *Requirement) error(cl *rp.Claims) error {
	switch q.kind {
	case "acr":
		return &rp.ValidationError{What: "access_token", Code: rp.CodeACR, Detail: "a different authentication level is required"}
	case "max_age":
		if cl == nil || cl.AuthTime == 0 {
			return &rp.ValidationError{What: "access_token", Code: rp.CodeAuthTime, Detail: "the access token does not say when the user authenticated; a recent authentication is required"}
		}
		return &rp.ValidationError{What: "access_token", Code: rp.CodeAuthTime, Detail: "more recent authentication is required"}
	}
	return &rp.ValidationError{What: "access_token", Code: rp.CodeScope, Detail: "the token does not have " + q.String()}
}

// prepare copies the requirements of one Require call and completes
// them: the clock skew of max_age, and the challenge of the step-up
// requirements, which names all of them (RFC 9470 §3: "acr_values and
// max_age MAY both occur"). A token that is recent enough but of the wrong
// acr is asked for both, so the new sign-in does not fail the other one.
func (m *Middleware) prepare(reqs []Requirement) []Requirement {
	reqs = slices.Clone(reqs)
	var su *authParams
	for i := range reqs {
		q := &reqs[i]
		if !q.stepUp() {
			continue
		}
		if su == nil {
			su = &authParams{maxAge: -1}
		}
		switch q.kind {
		case "acr":
			// Several AnyACR: the token must meet each; ask for the values
			// of the first, the order of preference.
			if su.acrValues == nil {
				su.acrValues = q.values
			}
		case "max_age":
			q.skew = m.skew
			if su.maxAge < 0 || q.maxAge < su.maxAge {
				su.maxAge = q.maxAge
			}
		}
	}
	for i := range reqs {
		if reqs[i].stepUp() {
			reqs[i].params = su
		}
	}
	return reqs
}

// authParams are the attributes of a refusal's challenge that say what the
// token lacks: scope (RFC 6750 §3), acr_values and max_age (RFC 9470 §3).
type authParams struct {
	scope     []string
	acrValues []string
	maxAge    int64 // -1: none
}

// writeTo appends the attributes to a challenge.
func (p *authParams) writeTo(c *strings.Builder) {
	if len(p.scope) > 0 {
		c.WriteString(`, scope="`)
		c.WriteString(quoteEscape(strings.Join(p.scope, " ")))
		c.WriteByte('"')
	}
	if len(p.acrValues) > 0 {
		c.WriteString(`, acr_values="`)
		c.WriteString(quoteEscape(strings.Join(p.acrValues, " ")))
		c.WriteByte('"')
	}
	if p.maxAge >= 0 {
		c.WriteString(`, max_age=`)
		c.WriteString(strconv.FormatInt(p.maxAge, 10))
	}
}
