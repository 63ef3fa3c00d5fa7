package azure

import (
	"net/http"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// Defender answers GET {prefix}/api/machines and /api/alerts: the Defender
// for Endpoint probes (role Machine.Read.All / Alert.Read.All).
func (s *Server) Defender(prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(w http.ResponseWriter, status int, code, msg string) {
			writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "target": s.Dir.NewID()}})
		}
		path := strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/")
		var route string
		var roles []string
		switch {
		case r.Method == http.MethodGet && strings.EqualFold(path, "api/machines"):
			route, roles = "defender.machines.list", []string{"Machine.Read.All", "Machine.ReadWrite.All"}
		case r.Method == http.MethodGet && strings.EqualFold(path, "api/alerts"):
			route, roles = "defender.alerts.list", []string{"Alert.Read.All", "Alert.ReadWrite.All"}
		default:
			observe.Annotate(r, "defender.unknown", "")
			fail(w, 404, "ResourceNotFound", "Resource not found")
			return
		}
		cl := s.authorize(w, r, route, directory.DefenderAppID, fail)
		if cl == nil {
			return
		}
		if !cl.HasRole(roles...) {
			fail(w, 403, "Forbidden", "The application does not have any of the required application permissions ("+strings.Join(roles, ", ")+") to access the resource.")
			return
		}
		entity := "Machines"
		if route == "defender.alerts.list" {
			entity = "Alerts"
		}
		writeJSON(w, 200, map[string]any{"@odata.context": s.BaseURL() + prefix + "/api/$metadata#" + entity, "value": []any{}})
	})
}
