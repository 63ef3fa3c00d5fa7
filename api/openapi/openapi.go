// Package openapi embeds the generated OpenAPI v2 description of the REST
// API, which the server serves at /openapi.json.
package openapi

import _ "embed"

// Spec is the merged OpenAPI document produced by `make generate`.
//
//go:embed dzconnect.swagger.json
var Spec []byte
