package microsoft_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/microsoft"
)

// TestSecretsNotFormatted: the values holding a client secret print and
// log without it, however they are formatted.
func TestSecretsNotFormatted(t *testing.T) {
	const secret = "abc8Q~canary-secret-value-0000000000000"
	values := []any{
		microsoft.Credentials{Cloud: "global", TenantID: "t", ClientID: "c", Secret: secret},
		microsoft.NewPassword{PasswordCredential: microsoft.PasswordCredential{KeyID: "k", Hint: "abc"}, Secret: secret},
	}
	for _, v := range values {
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "v", v)
		for _, out := range []string{fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s", v, v, v, v), logged.String()} {
			if strings.Contains(out, secret) {
				t.Errorf("%T formatted with its secret: %s", v, out)
			}
		}
	}
}
