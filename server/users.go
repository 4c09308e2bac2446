package server

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/commands"
)

// users builds the accounts from RequirePass (or RequirePassFile) and
// ACLFile. It refuses an ACL file with a rule naming no command or category
// of the command table, and a password given twice for the default user
// (by --requirepass and by the file: Redis keeps the file's silently, and
// the operator then believes in a password that does not work). It warns
// when the file defines users but leaves the default user open, so that
// clients skip every tenant's rules by not authenticating.
func (c Config) users(log *slog.Logger) (*acl.Users, error) {
	pass := c.RequirePass
	if c.RequirePassFile != "" {
		b, err := os.ReadFile(c.RequirePassFile)
		if err != nil {
			return nil, fmt.Errorf("--requirepass-file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	users := acl.NewUsers(pass)
	if c.ACLFile == "" {
		return users, nil
	}
	f, err := os.Open(c.ACLFile)
	if err != nil {
		return nil, fmt.Errorf("--aclfile: %w", err)
	}
	defer f.Close()
	catalog := commands.Catalog()
	if err := users.Load(f, catalog); err != nil {
		return nil, fmt.Errorf("--aclfile %s: %w", c.ACLFile, err)
	}
	if pass != "" && users.Defines("default") {
		return nil, fmt.Errorf("--aclfile %s defines the default user, so --requirepass (or --requirepass-file, "+
			"SLUICE_REQUIREPASS) would be ignored: give the password in the file (user default on >password ...) "+
			"or remove the default user's line", c.ACLFile)
	}
	if len(users.Sorted()) > 1 && users.OpenDefault(catalog) {
		log.Warn("the ACL file defines users but the default user is open: clients that never authenticate run "+
			"as default and bypass every other user's rules; close it with \"user default off\" (or give it a "+
			"password) in the file, or set --requirepass",
			slog.String("aclfile", c.ACLFile), slog.String("default", users.Default().String()))
	}
	return users, nil
}
