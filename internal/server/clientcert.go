package server

import (
	"context"
	"net"
	"net/http"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/dropzoneai/dzconnect/internal/auth"
)

// clientCertHeader carries the REST caller's verified client-certificate
// identities from the gateway to the gRPC server over the in-process
// pipe. Only the gateway sets it: it drops the header (and its
// Grpc-Metadata- form) from every request first, and the gRPC side
// believes it only from the pipe.
const clientCertHeader = "X-Dzconnect-Client-Cert"

// clientCertMD is clientCertHeader as gRPC metadata.
var clientCertMD = strings.ToLower(clientCertHeader)

// withClientCert replaces clientCertHeader by the identities of the
// client certificate the TLS handshake verified (none without mutual TLS).
func withClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			if strings.EqualFold(k, clientCertHeader) || strings.EqualFold(k, "Grpc-Metadata-"+clientCertHeader) {
				delete(r.Header, k)
			}
		}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			for _, id := range auth.CertificateIdentities(r.TLS.VerifiedChains[0][0]) {
				r.Header.Add(clientCertHeader, id)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// fromPipe reports whether the call came through the in-process pipe (the
// REST gateway), not from a network client.
func fromPipe(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	return ok && p.Addr != nil && p.Addr.Network() == "bufconn"
}

// clientIdentities returns the verified client certificate's identities:
// a gRPC client's from its TLS connection, a REST caller's as the gateway
// forwarded them.
func clientIdentities(ctx context.Context) []string {
	if fromPipe(ctx) {
		md, _ := metadata.FromIncomingContext(ctx)
		return md.Get(clientCertMD)
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return auth.CertificateIdentities(info.State.VerifiedChains[0][0])
}

// pipeOrTLS is the gRPC server's transport security: TLS (or mutual TLS)
// for network connections, none on the in-process pipe from the REST
// gateway, which has no certificate to present and whose callers the
// HTTP listener's TLS already checked.
type pipeOrTLS struct {
	credentials.TransportCredentials
}

func (c pipeOrTLS) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if conn.LocalAddr().Network() == "bufconn" {
		return insecure.NewCredentials().ServerHandshake(conn)
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c pipeOrTLS) Clone() credentials.TransportCredentials {
	return pipeOrTLS{c.TransportCredentials.Clone()}
}
