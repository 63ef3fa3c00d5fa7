package directory

import "strings"

// Group is a security group: a principal directory roles can be assigned
// to when IsAssignableToRole is set (role-assignable groups).
type Group struct {
	ID                 string `json:"id"`
	DisplayName        string `json:"displayName"`
	IsAssignableToRole bool   `json:"isAssignableToRole"`
}

// AddGroup creates a security group in tenant (ID generated when empty).
func (d *Directory) AddGroup(tenant string, g Group) (Group, error) {
	if g.ID == "" {
		g.ID = d.NewID()
	}
	if !IsGUID(g.ID) {
		return Group{}, errf(400, "Request_BadRequest", "Invalid object identifier '%s'.", g.ID)
	}
	g.ID = strings.ToLower(g.ID)
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return Group{}, err
	}
	for _, x := range t.groups {
		if x.ID == g.ID {
			return Group{}, errf(409, "Conflict", "group %s already exists", g.ID)
		}
	}
	t.groups = append(t.groups, g)
	return g, nil
}

// AddUser creates a user in tenant (ID generated when empty).
func (d *Directory) AddUser(tenant string, u User) (User, error) {
	if u.ID == "" {
		u.ID = d.NewID()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return User{}, err
	}
	if u.UserPrincipalName == "" {
		u.UserPrincipalName = strings.ToLower(strings.ReplaceAll(u.DisplayName, " ", ".")) + "@" + t.DefaultDomain
	}
	u.AccountEnabled = true
	// users is append-only (Users hands it out without copying).
	t.users = append(t.users[:len(t.users):len(t.users)], u)
	return u, nil
}

// checkRolePrincipalLocked accepts a user, a role-assignable group or a
// service principal of t as a directory role's principal.
func (d *Directory) checkRolePrincipalLocked(t *Tenant, id string) *Error {
	if !IsGUID(id) {
		return errf(400, "Request_BadRequest", "Invalid object identifier '%s'.", id)
	}
	for _, u := range t.users {
		if strings.EqualFold(u.ID, id) {
			return nil
		}
	}
	for _, g := range t.groups {
		if strings.EqualFold(g.ID, id) {
			if !g.IsAssignableToRole {
				// Unconfirmed wording: Entra refuses a group that is not
				// role-assignable; no page shows the error body.
				return errf(400, "Request_BadRequest", "The group '%s' is not role-assignable: create it with isAssignableToRole set to true.", id)
			}
			return nil
		}
	}
	if _, err := d.findSP(t, SPKey{ID: id}, d.clock.Now()); err == nil {
		return nil
	}
	return errf(400, "Request_BadRequest", "Invalid principalId: resource '%s' does not exist.", id)
}
