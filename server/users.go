package server

import (
	"fmt"
	"os"
	"strings"

	"github.com/sluicehq/sluice/acl"
)

// users builds the accounts from RequirePass (or RequirePassFile) and
// ACLFile.
func (c Config) users() (*acl.Users, error) {
	pass := c.RequirePass
	if c.RequirePassFile != "" {
		b, err := os.ReadFile(c.RequirePassFile)
		if err != nil {
			return nil, fmt.Errorf("--requirepass-file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	users := acl.NewUsers(pass)
	if c.ACLFile != "" {
		f, err := os.Open(c.ACLFile)
		if err != nil {
			return nil, fmt.Errorf("--aclfile: %w", err)
		}
		defer f.Close()
		if err := users.Load(f); err != nil {
			return nil, fmt.Errorf("--aclfile %s: %w", c.ACLFile, err)
		}
	}
	return users, nil
}
