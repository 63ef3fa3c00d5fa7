package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// readRetries and readRetryWait: a read is sent again after a transport
// error or a 5xx (not 501), as the Vault API client does (MaxRetries 2,
// waiting about a second), within the operation timeout.
const (
	readRetries   = 2
	readRetryWait = time.Second
)

// maxReadBody caps what is read of Vault's answer to a KV read.
const maxReadBody = 1 << 20

// ReadClientSecret implements integration.SecretStore: one version of a
// KV v2 secret, read with a plain GET {addr}/v1/{mount}/data/{path}?version=N
// through the Vault client's HTTP client (its TLS, connections and
// tracing), decoding only the client secret. Every check reads one
// (BenchmarkSweep: the API client's generic request and answer, a map per
// answer and retryablehttp's copies, were about 0.1 ms of CPU per read,
// four times what the read itself costs). Errors are the API client's
// (api.ResponseError with the status and Vault's error messages, never a
// body that could hold the secret), so classify and the AppRole re-login
// on 403 treat them as before.
func (s *Store) ReadClientSecret(ctx context.Context, p string, version int64) (string, error) {
	var val string
	err := s.do(ctx, func(ctx context.Context) error {
		v, err := s.readVersion(ctx, p, version)
		if err != nil {
			return err
		}
		if v == nil {
			return apperr.New(apperr.NotFound, "secret version %d at %s has no %s", version, p, secretField)
		}
		val = *v
		return nil
	})
	return val, err
}

// readVersion reads the client secret of version (0: the current one) at
// p; nil when that version has none (deleted or destroyed).
func (s *Store) readVersion(ctx context.Context, p string, version int64) (*string, error) {
	u := strings.TrimSuffix(s.client.Address(), "/") + "/v1/" + strings.Trim(s.cfg.Mount, "/") + "/data/" +
		escapePath(s.full(p))
	if version > 0 {
		u += "?version=" + strconv.FormatInt(version, 10)
	}
	for attempt := 0; ; attempt++ {
		v, retry, err := s.readOnce(ctx, u)
		if !retry || attempt >= readRetries || ctx.Err() != nil {
			return v, err
		}
		t := time.NewTimer(readRetryWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// readOnce makes one GET; retry reports a failure worth another attempt.
func (s *Store) readOnce(ctx context.Context, u string) (v *string, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("X-Vault-Token", s.client.Token())
	if ns := s.client.Namespace(); ns != "" {
		req.Header.Set("X-Vault-Namespace", ns)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, fmt.Errorf("reading from Vault: %w", err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxReadBody)
	if resp.StatusCode != http.StatusOK {
		// Vault's error answer: {"errors": [...]} (never the secret).
		var e struct {
			Errors []string `json:"errors"`
		}
		_ = json.NewDecoder(body).Decode(&e)
		_, _ = io.Copy(io.Discard, body)
		rerr := &api.ResponseError{HTTPMethod: http.MethodGet, URL: redactQuery(u), StatusCode: resp.StatusCode, Errors: e.Errors}
		if resp.StatusCode == http.StatusNotFound {
			// A deleted or destroyed version, or no secret at the path:
			// as the API client's GetVersion answers it.
			return nil, false, fmt.Errorf("%w: %w", api.ErrSecretNotFound, rerr)
		}
		return nil, resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented, rerr
	}
	var out struct {
		Data *struct {
			Data *struct {
				ClientSecret *string `json:"client_secret"`
			} `json:"data"`
		} `json:"data"`
	}
	if err := json.NewDecoder(body).Decode(&out); err != nil {
		// Never the body: it holds the secret.
		return nil, false, fmt.Errorf("decoding Vault's answer to a KV read (status %d): malformed JSON", resp.StatusCode)
	}
	_, _ = io.Copy(io.Discard, body)
	if out.Data == nil || out.Data.Data == nil {
		return nil, false, nil
	}
	return out.Data.Data.ClientSecret, false, nil
}

// escapePath escapes each segment of a secret path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// redactQuery drops the query string (the version) from a URL for errors.
func redactQuery(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}
