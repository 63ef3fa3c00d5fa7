package azure

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

func decode(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v)
}

// LogAnalytics answers POST|GET {prefix}/v1/workspaces/{customerId}/query.
func (s *Server) LogAnalytics(prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		corr := s.Dir.NewID()
		w.Header().Set("x-ms-correlation-request-id", corr)
		laError := func(w http.ResponseWriter, status int, code, msg string) {
			writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "code": code, "correlationId": corr}})
		}
		p := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/"), "/")
		if len(p) != 4 || p[0] != "v1" || p[1] != "workspaces" || p[3] != "query" || (r.Method != http.MethodPost && r.Method != http.MethodGet) {
			observe.Annotate(r, "loganalytics.unknown", "")
			laError(w, 404, "PathNotFoundError", "The requested path does not exist")
			return
		}
		cl := s.authorize(w, r, "loganalytics.query", directory.LogAnalyticsAppID, func(w http.ResponseWriter, status int, code, msg string) {
			if status == 401 {
				code = "InvalidTokenError"
			}
			laError(w, status, code, msg)
		})
		if cl == nil {
			return
		}
		tid, ws, ok := s.Dir.WorkspaceByCustomerID(p[2])
		if !ok {
			laError(w, 404, "WorkspaceNotFoundError", "The workspace could not be found")
			return
		}
		if tid != cl.Tid || !cl.HasRole("Data.Read") || !s.Dir.Authorized(cl.Tid, cl.Oid, ws.ResourceID(), directory.PermQueryLogs) {
			laError(w, 403, "InsufficientAccessError", "The provided credentials have insufficient access to perform the requested operation")
			return
		}
		query := r.URL.Query().Get("query")
		if r.Method == http.MethodPost {
			var body struct {
				Query string `json:"query"`
			}
			if err := decode(r, &body); err != nil {
				laError(w, 400, "BadArgumentError", "The request had some invalid properties")
				return
			}
			query = body.Query
		}
		t, qerr := runQuery(ws, query)
		if qerr != "" {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "The request had some invalid properties",
				"code": "BadArgumentError", "correlationId": corr,
				"innererror": map[string]any{"code": "SemanticError", "message": "A semantic error occurred.",
					"innererror": map[string]any{"code": "SEM0100", "message": qerr}}}})
			return
		}
		writeJSON(w, 200, map[string]any{"tables": []any{map[string]any{"name": "PrimaryResult", "columns": t.Columns, "rows": t.Rows}}})
	})
}

var takeRE = regexp.MustCompile(`\|\s*(take|limit)\s+(\d+)`)

// runQuery understands "print ..." and "<Table> [| take N]": enough for
// probes. Anything else is a semantic error naming the unknown table.
func runQuery(ws directory.Workspace, q string) (directory.Table, string) {
	q = strings.TrimSpace(q)
	if q == "" {
		return directory.Table{}, "Query could not be parsed at 'EOF'"
	}
	if rest, ok := strings.CutPrefix(q, "print"); ok {
		val := strings.TrimSpace(rest)
		if n, err := strconv.ParseInt(val, 10, 64); err == nil {
			return directory.Table{Columns: []directory.Column{{Name: "print_0", Type: "long"}}, Rows: [][]any{{n}}}, ""
		}
		return directory.Table{Columns: []directory.Column{{Name: "print_0", Type: "string"}}, Rows: [][]any{{strings.Trim(val, `"'`)}}}, ""
	}
	name := strings.TrimSpace(strings.SplitN(q, "|", 2)[0])
	t, ok := ws.Tables[name]
	if !ok {
		return directory.Table{}, "'" + name + "' operator: Failed to resolve table or column expression named '" + name + "'"
	}
	rows := t.Rows
	if m := takeRE.FindStringSubmatch(q); m != nil {
		if n, _ := strconv.Atoi(m[2]); n < len(rows) {
			rows = rows[:n]
		}
	}
	if rows == nil {
		rows = [][]any{}
	}
	return directory.Table{Columns: t.Columns, Rows: rows}, ""
}
