package microsoft

import (
	"context"
	"time"
)

// AccessToken gets an access token for api and returns it with its
// expiry and the scope requested, for handing to a caller
// (IssueAccessToken, internal/token). The value must never be logged.
// Like Token, it asks the session's credential, so a session reused for
// the same api gets azidentity's cached token; internal/token opens a
// session per fetch, so each call here is a token request.
func (s *Session) AccessToken(ctx context.Context, api API) (value string, expiresOn time.Time, scope string, err error) {
	raw, tok, err := s.rawToken(s.operation(ctx), api)
	if err != nil {
		return "", time.Time{}, "", err
	}
	return raw, tok.ExpiresOn, s.ep.Scope(api), nil
}
