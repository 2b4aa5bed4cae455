package demo

import (
	"context"
	"log/slog"
	"net/http"
)

// startAPI: TEMPORARY until the API example lands.
func startAPI(ctx context.Context, u URLs, log *slog.Logger) (http.Handler, error) {
	return http.NotFoundHandler(), nil
}

// AdminPermission is the permission the demo API's /api/admin requires.
const AdminPermission = "dashboard:admin"
