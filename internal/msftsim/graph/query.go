package graph

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// filterClause is "prop eq 'value'" or "startswith(prop, 'value')".
type filterClause struct{ prop, value, op string }

// parseFilter understands conjunctions of eq comparisons and startswith
// calls, which is what dzconnect and tenants' tools send. ok=false means
// the filter is not supported.
func parseFilter(f string, allowed ...string) ([]filterClause, string, bool) {
	if strings.TrimSpace(f) == "" {
		return nil, "", true
	}
	var out []filterClause
	for _, part := range splitAnd(f) {
		part = strings.TrimSpace(part)
		var prop, v, op string
		if lp := strings.ToLower(part); strings.HasPrefix(lp, "startswith(") && strings.HasSuffix(lp, ")") {
			p, val, ok := strings.Cut(part[len("startswith("):len(part)-1], ",")
			if !ok {
				return nil, part, false
			}
			prop, v, op = strings.TrimSpace(p), strings.TrimSpace(val), "startswith"
		} else {
			fields := strings.SplitN(part, " ", 3)
			if len(fields) != 3 || !strings.EqualFold(fields[1], "eq") {
				return nil, part, false
			}
			prop, v, op = fields[0], strings.TrimSpace(fields[2]), "eq"
		}
		ok := false
		for _, a := range allowed {
			if strings.EqualFold(a, prop) {
				prop, ok = a, true
			}
		}
		if !ok {
			return nil, prop, false
		}
		v = strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'"), "''", "'")
		out = append(out, filterClause{prop, v, op})
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
		v := get(cl.prop)
		if cl.op == "startswith" {
			if !strings.HasPrefix(strings.ToLower(v), strings.ToLower(cl.value)) {
				return false
			}
			continue
		}
		if !strings.EqualFold(v, cl.value) {
			return false
		}
	}
	return true
}

// advanced reports whether the request carries the advanced query
// parameters: the ConsistencyLevel: eventual header and $count=true
// [G-advanced-queries].
func (c *call) advanced() bool {
	return c.eventual() && strings.EqualFold(c.r.URL.Query().Get("$count"), "true")
}

func (c *call) eventual() bool {
	return strings.EqualFold(strings.TrimSpace(c.r.Header.Get("ConsistencyLevel")), "eventual")
}

// dirQuery is a directory collection's $filter, $orderby and $count.
type dirQuery struct {
	clauses []filterClause
	orderBy string
	desc    bool
}

// directoryQuery reads $filter and $orderby of a directory collection as
// "Advanced query capabilities on Microsoft Entra ID objects" documents
// them [G-advanced-queries]: $orderby on orderDefault works by default, on
// orderAdvanced only with the advanced query parameters, as does
// $filter with $orderby; $count=true adds @odata.count with the
// ConsistencyLevel header and is silently ignored without it.
func (c *call) directoryQuery(resource string, filterable, orderDefault, orderAdvanced []string) (dirQuery, bool) {
	cl, ok := c.filterOr400(resource, filterable...)
	if !ok {
		return dirQuery{}, false
	}
	q := dirQuery{clauses: cl}
	ob := strings.TrimSpace(c.r.URL.Query().Get("$orderby"))
	if ob == "" {
		if c.advanced() {
			c.count = true
		}
		return q, true
	}
	prop, dir, _ := strings.Cut(ob, " ")
	dir = strings.TrimSpace(dir)
	if dir != "" && !strings.EqualFold(dir, "asc") && !strings.EqualFold(dir, "desc") {
		c.fail(400, "BadRequest", "Invalid $orderby expression '"+ob+"'.")
		return q, false
	}
	q.desc = strings.EqualFold(dir, "desc")
	needsAdvanced := len(cl) > 0
	known := false
	for _, p := range orderDefault {
		if strings.EqualFold(p, prop) {
			q.orderBy, known = p, true
		}
	}
	for _, p := range orderAdvanced {
		if strings.EqualFold(p, prop) {
			q.orderBy, known, needsAdvanced = p, true, true
		}
	}
	if !known {
		c.fail(400, "Request_UnsupportedQuery", "Unsupported sort property '"+prop+"' of resource '"+resource+"'.")
		return q, false
	}
	if needsAdvanced && !c.advanced() {
		c.fail(400, "Request_UnsupportedQuery", "Sorting by '"+prop+"' is not supported because the required parameters might be missing. "+
			"Try adding $count=true query parameter and ConsistencyLevel:eventual header. "+
			"Refer to https://aka.ms/graph-docs/advanced-queries for more information")
		return q, false
	}
	c.count = c.advanced()
	return q, true
}

// sortItems orders items by q.orderBy (case-insensitive), stably.
func sortItems[T any](q dirQuery, items []T, key func(item T, prop string) string) {
	if q.orderBy == "" {
		return
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := strings.ToLower(key(items[i], q.orderBy)), strings.ToLower(key(items[j], q.orderBy))
		if q.desc {
			return a > b
		}
		return a < b
	})
}

// countSegment answers GET /{collection}/$count: the number as text/plain
// with ConsistencyLevel: eventual, else 400 "$count is not currently
// supported." [G-advanced-queries].
func (c *call) countSegment(n int) {
	if !c.eventual() {
		c.fail(400, "Request_BadRequest", "$count is not currently supported.")
		return
	}
	c.w.Header().Set("Content-Type", "text/plain")
	c.w.WriteHeader(200)
	_, _ = c.w.Write([]byte(strconv.Itoa(n)))
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
	if c.count {
		body["@odata.count"] = n
	}
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

// entity writes one entity with $select applied; a 201 carries the new
// entity's address in Location.
func (c *call) entity(status int, contextFragment string, m map[string]any) {
	if id, _ := m["id"].(string); status == 201 && id != "" {
		c.w.Header().Set("Location", c.location(contextFragment, id))
	}
	m = selectFields(m, c.r.URL.Query().Get("$select"))
	m["@odata.context"] = c.context(contextFragment)
	c.json(status, m)
}

// location is a created entity's address. Directory objects are addressed
// as Graph's own @odata.id values show them
// (https://graph.microsoft.com/v2/{tenant}/directoryObjects/{id}/Microsoft.DirectoryServices.Application,
// …/v2/{tenant}/roleAssignments/{id}) [G-unifiedroleassignment-post]; other
// entities by their v1.0 URL.
func (c *call) location(contextFragment, id string) string {
	v2 := c.base() + "/v2/" + c.tenant
	switch strings.TrimSuffix(contextFragment, "/$entity") {
	case "applications":
		return v2 + "/directoryObjects/" + id + "/Microsoft.DirectoryServices.Application"
	case "servicePrincipals":
		return v2 + "/directoryObjects/" + id + "/Microsoft.DirectoryServices.ServicePrincipal"
	case "roleManagement/directory/roleAssignments":
		return v2 + "/roleAssignments/" + id
	}
	return c.base() + "/v1.0/" + strings.TrimSuffix(contextFragment, "/$entity") + "/" + id
}
