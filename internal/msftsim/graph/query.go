package graph

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
)

// filterClause is "prop eq 'value'".
type filterClause struct{ prop, value string }

// parseFilter understands conjunctions of eq comparisons, which is all
// dzconnect sends. ok=false means the filter is not supported.
func parseFilter(f string, allowed ...string) ([]filterClause, string, bool) {
	if strings.TrimSpace(f) == "" {
		return nil, "", true
	}
	var out []filterClause
	for _, part := range splitAnd(f) {
		fields := strings.SplitN(strings.TrimSpace(part), " ", 3)
		if len(fields) != 3 || !strings.EqualFold(fields[1], "eq") {
			return nil, strings.TrimSpace(part), false
		}
		prop := fields[0]
		ok := false
		for _, a := range allowed {
			if strings.EqualFold(a, prop) {
				prop, ok = a, true
			}
		}
		if !ok {
			return nil, prop, false
		}
		v := strings.TrimSpace(fields[2])
		v = strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'"), "''", "'")
		out = append(out, filterClause{prop, v})
	}
	return out, "", true
}

func splitAnd(f string) []string {
	var out []string
	for {
		i := strings.Index(strings.ToLower(f), " and ")
		if i < 0 {
			return append(out, f)
		}
		out = append(out, f[:i])
		f = f[i+5:]
	}
}

func matches(clauses []filterClause, get func(prop string) string) bool {
	for _, cl := range clauses {
		if !strings.EqualFold(get(cl.prop), cl.value) {
			return false
		}
	}
	return true
}

// filterOr400 parses $filter or answers 400 in Graph's shape.
func (c *call) filterOr400(resource string, allowed ...string) ([]filterClause, bool) {
	cl, bad, ok := parseFilter(c.r.URL.Query().Get("$filter"), allowed...)
	if !ok {
		c.fail(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property '"+bad+"' of resource '"+resource+"'.")
		return nil, false
	}
	return cl, true
}

// selectFields applies $select to an entity (id always kept).
func selectFields(m map[string]any, sel string) map[string]any {
	if sel == "" {
		return m
	}
	out := map[string]any{}
	for _, k := range strings.Split(sel, ",") {
		k = strings.TrimSpace(k)
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	if v, ok := m["id"]; ok {
		out["id"] = v
	}
	for k, v := range m {
		if strings.HasPrefix(k, "@odata.") {
			out[k] = v
		}
	}
	return out
}

// page writes a collection with $top/$skiptoken paging and $select.
func (c *call) page(contextFragment string, items []map[string]any) {
	c.pageOf(contextFragment, len(items), func(i int) map[string]any { return items[i] })
}

// pageOf pages n items built on demand by at, so large collections only
// render the page that is returned.
func (c *call) pageOf(contextFragment string, n int, at func(int) map[string]any) {
	q := c.r.URL.Query()
	top := 100
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 999 {
			c.fail(400, "Request_BadRequest", "Invalid value '"+t+"' for query parameter '$top'. The value must be between 1 and 999.")
			return
		}
		top = n
	}
	start := 0
	if st := q.Get("$skiptoken"); st != "" {
		b, err := base64.RawURLEncoding.DecodeString(st)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "o:"))
		if err != nil || err2 != nil || n < 0 {
			c.fail(400, "Directory_InvalidPagingToken", "The specified paging token is invalid.")
			return
		}
		start = n
	}
	if start > n {
		start = n
	}
	end := min(start+top, n)
	sel := q.Get("$select")
	vals := make([]map[string]any, 0, end-start)
	for i := start; i < end; i++ {
		vals = append(vals, selectFields(at(i), sel))
	}
	body := map[string]any{"@odata.context": c.context(contextFragment), "value": vals}
	if end < n {
		q.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte("o:"+strconv.Itoa(end))))
		body["@odata.nextLink"] = c.base() + c.r.URL.EscapedPath() + "?" + encodeQuery(q)
	}
	c.json(200, body)
}

// encodeQuery keeps "$" unescaped in OData system query names, as Graph does.
func encodeQuery(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "%24", "$")
}

// entity writes one entity with $select applied.
func (c *call) entity(status int, contextFragment string, m map[string]any) {
	m = selectFields(m, c.r.URL.Query().Get("$select"))
	m["@odata.context"] = c.context(contextFragment)
	c.json(status, m)
}
