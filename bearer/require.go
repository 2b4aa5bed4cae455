package bearer

import (
	"fmt"
	"slices"

	"github.com/multiapp-go/multiapp/rp"
)

// Requirement is a condition on a token's scopes, permissions or roles,
// built by AnyScope, AllScopes, AnyPermission, AllPermissions, AnyRole and
// AllRoles, and checked by Middleware.Require.
type Requirement struct {
	kind   string // "scope", "permission" or "role"
	all    bool
	values []string
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

func newRequirement(kind string, all bool, values []string) Requirement {
	if len(values) == 0 {
		panic(fmt.Sprintf("bearer: a %s requirement needs at least one value", kind))
	}
	return Requirement{kind: kind, all: all, values: slices.Clone(values)}
}

// String describes the requirement, e.g. `any of scopes [orders:read]`.
func (q Requirement) String() string {
	quant := "any of"
	if q.all {
		quant = "all of"
	}
	return fmt.Sprintf("%s %ss %v", quant, q.kind, q.values)
}

// Met reports whether the claims satisfy the requirement.
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

// error is the typed reason for a token that does not meet q.
func (q *Requirement) error() error {
	return &rp.ValidationError{What: "access_token", Code: rp.CodeScope, Detail: "the token does not have " + q.String()}
}
