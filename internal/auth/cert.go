package auth

import (
	"crypto/x509"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxIdentityBytes bounds one certificate identity.
const maxIdentityBytes = 512

// CertificateIdentities lists the identities of a verified client
// certificate in mapping order: each URI SAN (a SPIFFE ID such as
// spiffe://example.org/ns/team/sa/platform), then the subject common
// name. Values that are not printable or too long are left out.
func CertificateIdentities(leaf *x509.Certificate) []string {
	if leaf == nil {
		return nil
	}
	var out []string
	add := func(s string) {
		if s != "" && len(s) <= maxIdentityBytes && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
			out = append(out, s)
		}
	}
	for _, u := range leaf.URIs {
		add(u.String())
	}
	add(leaf.Subject.CommonName)
	return out
}
