package msftsim

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// SeedFile is the JSON a simulator can start from (-seed file.json).
type SeedFile struct {
	// Seed for IDs, secrets and random faults (Options.Seed wins when set).
	Seed    uint64       `json:"seed,omitempty"`
	Tenants []SeedTenant `json:"tenants,omitempty"`
	// Provisioners are multi-tenant apps of the organization, consented in
	// customer tenants.
	Provisioners []SeedProvisioner `json:"provisioners,omitempty"`
	Faults       *faults.Config    `json:"faults,omitempty"`
}

// SeedTenant is one tenant with its workspaces, policy and customer-made apps.
type SeedTenant struct {
	TenantSpec
	Workspaces []Workspace  `json:"workspaces,omitempty"`
	Policy     *PolicySpec  `json:"policy,omitempty"`
	Apps       []AppRequest `json:"apps,omitempty"`
	// AppPolicies are app-specific app-management policies; their
	// appliesTo names apps of Apps by display name.
	AppPolicies []AppPolicySpec    `json:"appManagementPolicies,omitempty"`
	LicenceSet  *map[string]string `json:"licenceStates,omitempty"`
}

// SeedProvisioner is a provisioner app and where it is consented.
type SeedProvisioner struct {
	HomeTenant string `json:"homeTenant"`
	AppRequest
	Consents []SeedConsent `json:"consents,omitempty"`
}

// SeedConsent grants the provisioner roles in a tenant.
type SeedConsent struct {
	Tenant     string      `json:"tenant"`
	Roles      []string    `json:"roles"`
	AzureRoles []AzureRole `json:"azureRoles,omitempty"`
}

// Seeded reports what a seed created, including secrets (written to
// StateDir/seeded.json with mode 0600).
type Seeded struct {
	Tenants      []TenantInfo `json:"tenants"`
	Apps         []AppCreds   `json:"apps"`
	Provisioners []AppCreds   `json:"provisioners"`
}

// LoadSeedFile reads a seed file.
func LoadSeedFile(path string) (*SeedFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading seed file: %w", err)
	}
	var sf SeedFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("parsing seed file %s: %w", path, err)
	}
	return &sf, nil
}

// ApplySeed creates everything in sf.
func (a *Admin) ApplySeed(sf SeedFile) (*Seeded, error) {
	out := &Seeded{}
	for _, t := range sf.Tenants {
		info, err := a.AddTenant(t.TenantSpec)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		if t.LicenceSet != nil {
			if err := a.SetLicences(info.ID, *t.LicenceSet); err != nil {
				return nil, err
			}
		}
		for _, w := range t.Workspaces {
			if _, err := a.AddWorkspace(info.ID, w); err != nil {
				return nil, fmt.Errorf("tenant %s workspace %s: %w", info.ID, w.Name, err)
			}
		}
		if t.Policy != nil {
			if err := a.SetPolicy(info.ID, *t.Policy); err != nil {
				return nil, fmt.Errorf("tenant %s policy: %w", info.ID, err)
			}
		}
		byName := map[string]string{}
		for _, app := range t.Apps {
			c, err := a.CreateApp(info.ID, app)
			if err != nil {
				return nil, fmt.Errorf("tenant %s app %s: %w", info.ID, app.DisplayName, err)
			}
			out.Apps = append(out.Apps, c)
			byName[app.DisplayName] = c.ClientID
		}
		for _, p := range t.AppPolicies {
			for i, name := range p.AppliesTo {
				if id, ok := byName[name]; ok {
					p.AppliesTo[i] = id
				}
			}
			if _, err := a.AddAppPolicy(info.ID, p); err != nil {
				return nil, fmt.Errorf("tenant %s app-management policy %s: %w", info.ID, p.DisplayName, err)
			}
		}
	}
	for _, p := range sf.Provisioners {
		c, err := a.RegisterProvisioner(p.HomeTenant, p.AppRequest)
		if err != nil {
			return nil, fmt.Errorf("provisioner %s: %w", p.DisplayName, err)
		}
		out.Provisioners = append(out.Provisioners, c)
		for _, cs := range p.Consents {
			if _, err := a.Consent(cs.Tenant, c.ClientID, cs.Roles, cs.AzureRoles...); err != nil {
				return nil, fmt.Errorf("consenting %s in %s: %w", c.ClientID, cs.Tenant, err)
			}
		}
	}
	out.Tenants = a.Tenants()
	if sf.Faults != nil {
		a.SetFaults(*sf.Faults)
	}
	return out, nil
}
