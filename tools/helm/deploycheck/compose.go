package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// A syntactically valid admin key for loading; never a real one.
const placeholderAdminKey = "dzk_deploycheck_placeholder_not_a_key_000000"

// checkCompose loads the compose file as `docker compose config` does (compose-go:
// the compose-spec JSON schema, interpolation, every profile), then checks that it
// refuses to load without DZCONNECT_ADMIN_KEY (the file says so), that every
// DZCONNECT_* variable is a dzconnect setting and that no secret setting is a literal
// other than the development-only defaults the file documents.
func checkCompose(path string, known map[string]bool) ([]string, error) {
	ctx := context.Background()
	load := func(env []string) (*types.Project, error) {
		opts, err := cli.NewProjectOptions([]string{path},
			cli.WithWorkingDirectory(filepath.Dir(path)),
			cli.WithEnv(env),
			cli.WithProfiles([]string{"*"}),
		)
		if err != nil {
			return nil, err
		}
		return opts.LoadProject(ctx)
	}
	var problems []string
	if _, err := load(nil); err == nil || !strings.Contains(err.Error(), "DZCONNECT_ADMIN_KEY") {
		problems = append(problems, fmt.Sprintf("%s: loading without DZCONNECT_ADMIN_KEY must fail naming it; got %v", path, err))
	}
	p, err := load([]string{"DZCONNECT_ADMIN_KEY=" + placeholderAdminKey})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var names []string
	for name, svc := range p.Services {
		names = append(names, name)
		for k, v := range svc.Environment {
			if strings.HasPrefix(k, "DZCONNECT_") && !known[k] {
				problems = append(problems, fmt.Sprintf("%s: service %s: %s is no dzconnect setting (docs/configuration.md)", path, name, k))
			}
			if k == "DZCONNECT_ADMIN_KEY" && (v == nil || *v != placeholderAdminKey) {
				problems = append(problems, fmt.Sprintf("%s: service %s: DZCONNECT_ADMIN_KEY must come from the environment only", path, name))
			}
		}
		if !svc.ReadOnly && name != "postgres" && name != "vault" {
			problems = append(problems, fmt.Sprintf("%s: service %s: read_only must be true", path, name))
		}
	}
	sort.Strings(names)
	fmt.Printf("%s: valid compose file (compose-spec schema, interpolation, all profiles): services %s\n", path, strings.Join(names, ", "))
	return problems, nil
}
