package webhook

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxURLLength bounds a webhook URL.
const MaxURLLength = 2048

// CheckURL validates a webhook URL: absolute https (http only for loopback
// hosts, for local development), a host, no user info (credentials belong
// in the signature, not the URL), no fragment, at most MaxURLLength bytes.
// The error text is meant for the caller.
func CheckURL(raw string) error {
	switch {
	case raw == "":
		return errors.New("required")
	case len(raw) > MaxURLLength:
		return errors.New("must be at most 2048 characters")
	case !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("must not contain spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("must be a valid URL like https://hooks.example.com/dzconnect")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must be an https URL")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return errors.New("must be an absolute URL with a host, like https://hooks.example.com/dzconnect")
	case u.User != nil:
		return errors.New("must not contain user info (user:password@); deliveries are authenticated by their signature")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not contain a fragment (#...)")
	case u.Scheme == "http" && !IsLoopback(u.Hostname()):
		return errors.New("must be an https URL (http is allowed only for loopback hosts such as 127.0.0.1)")
	}
	return nil
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
