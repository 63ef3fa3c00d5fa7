package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// clientConn dials the server once per invocation. The connection is lazy:
// errors reaching the server surface on the first RPC.
func (inv *invocation) clientConn() (*grpc.ClientConn, error) {
	if inv.conn != nil {
		return inv.conn, nil
	}
	creds, err := inv.transportCredentials()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("dzctl"),
		grpc.WithDefaultServiceConfig(retryServiceConfig()),
		grpc.WithChainUnaryInterceptor(bearerAuth(inv.apiKey)),
	}
	opts = append(opts, inv.app.dialOpts...)
	conn, err := grpc.NewClient(inv.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", inv.addr, err)
	}
	inv.conn = conn
	return conn, nil
}

// transportCredentials is plaintext unless --tls, --ca-file or
// --insecure-skip-verify is given.
func (inv *invocation) transportCredentials() (credentials.TransportCredentials, error) {
	if !inv.useTLS && inv.caFile == "" && !inv.insecureSkipVerify {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: inv.insecureSkipVerify} //nolint:gosec // opt-in flag for testing
	if inv.caFile != "" {
		pem, err := os.ReadFile(inv.caFile)
		if err != nil {
			return nil, fmt.Errorf("reading --ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading --ca-file %s: no PEM certificate found", inv.caFile)
		}
		cfg.RootCAs = pool
	}
	return credentials.NewTLS(cfg), nil
}

// bearerAuth adds "authorization: Bearer KEY" to every call when a key is set.
func bearerAuth(key string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if key != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// retryServiceConfig retries UNAVAILABLE a few times on every dzconnect RPC.
// The server reports UNAVAILABLE only when nothing was written, and creates
// carry the invocation's request ID, so retries are safe.
func retryServiceConfig() string {
	services := []string{
		dzconnectv1.OrganizationService_ServiceDesc.ServiceName,
		dzconnectv1.ApiKeyService_ServiceDesc.ServiceName,
		dzconnectv1.TenantService_ServiceDesc.ServiceName,
		dzconnectv1.IntegrationService_ServiceDesc.ServiceName,
		dzconnectv1.AuditService_ServiceDesc.ServiceName,
		dzconnectv1.CatalogService_ServiceDesc.ServiceName,
	}
	names := make([]map[string]string, 0, len(services))
	for _, s := range services {
		names = append(names, map[string]string{"service": s})
	}
	cfg := map[string]any{
		"methodConfig": []any{map[string]any{
			"name": names,
			"retryPolicy": map[string]any{
				"maxAttempts":          4,
				"initialBackoff":       "0.2s",
				"maxBackoff":           "2s",
				"backoffMultiplier":    2,
				"retryableStatusCodes": []string{"UNAVAILABLE"},
			},
		}},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		panic(err) // static data
	}
	return string(b)
}

// clients returns the typed clients on the invocation's connection.
type clients struct {
	orgs         dzconnectv1.OrganizationServiceClient
	apiKeys      dzconnectv1.ApiKeyServiceClient
	tenants      dzconnectv1.TenantServiceClient
	integrations dzconnectv1.IntegrationServiceClient
	audit        dzconnectv1.AuditServiceClient
	catalog      dzconnectv1.CatalogServiceClient
}

func (inv *invocation) clients() (*clients, error) {
	conn, err := inv.clientConn()
	if err != nil {
		return nil, err
	}
	return &clients{
		orgs:         dzconnectv1.NewOrganizationServiceClient(conn),
		apiKeys:      dzconnectv1.NewApiKeyServiceClient(conn),
		tenants:      dzconnectv1.NewTenantServiceClient(conn),
		integrations: dzconnectv1.NewIntegrationServiceClient(conn),
		audit:        dzconnectv1.NewAuditServiceClient(conn),
		catalog:      dzconnectv1.NewCatalogServiceClient(conn),
	}, nil
}
