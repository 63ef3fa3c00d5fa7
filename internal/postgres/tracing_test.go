package postgres

import "testing"

func TestQueryName(t *testing.T) {
	for sql, want := range map[string]string{
		"-- name: GetTenant :one\nselect * from tenants where id = $1": "GetTenant",
		"\n  -- name: JobInsertFastMany :many\ninsert into river_job":  "JobInsertFastMany",
		"begin":      "begin",
		"  SELECT 1": "select",
		"-- a comment\n/* another */ update x set y = $1": "update",
		"/* unterminated": "sql",
		"":                "sql",
		"$1":              "sql",
	} {
		if got := QueryName(sql); got != want {
			t.Errorf("QueryName(%q) = %q, want %q", sql, got, want)
		}
	}
}
