// Package api holds the generated API code: Go types, gRPC stubs and REST
// gateway handlers in dzconnect/v1, the OpenAPI spec in openapi, and the
// HTTP mapping (http.yaml). Sources are in proto/; run `make generate`.
package api
