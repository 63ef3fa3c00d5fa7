package vault

// Logins is the number of AppRole logins made (tests).
func (s *Store) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Token is the token in use (tests).
func (s *Store) Token() string { return s.client.Token() }
