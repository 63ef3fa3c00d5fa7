package webhook

import "testing"

func TestRefuseSpecialAddresses(t *testing.T) {
	for addr, refused := range map[string]bool{
		"169.254.169.254:80": true, // cloud metadata
		"[fe80::1]:443":      true,
		"0.0.0.0:443":        true,
		"224.0.0.1:443":      true,
		"127.0.0.1:8080":     false,
		"203.0.113.7:443":    false,
		"[2001:db8::1]:443":  false,
	} {
		if err := refuseSpecial("tcp", addr, nil); (err != nil) != refused {
			t.Errorf("%s: err %v, want refused=%v", addr, err, refused)
		}
	}
}
