package commands

import (
	"github.com/sluicehq/sluice/resp"
)

// aclCommands declares ACL and its subcommands.
func aclCommands() []*Command {
	return []*Command{
		{Name: "acl", Arity: -2, Group: "server", Since: "0.1.0", Summary: "A container for access list commands.", Complexity: "Depends on subcommand.",
			Categories: []string{"@slow"}, Subs: []*Command{
				{Name: "whoami", Arity: 2, Flags: FlagNoScript | FlagLoading | FlagStale, Categories: []string{"@slow"}, Group: "server", Since: "0.1.0",
					Summary: "Returns the authenticated username of the connection.", Complexity: "O(1)", Handler: aclWhoAmI},
				{Name: "list", Arity: 2, Flags: FlagAdmin | FlagNoScript | FlagLoading | FlagStale, Categories: []string{"@admin", "@slow", "@dangerous"}, Group: "server", Since: "0.1.0",
					Summary: "Dumps the effective rules, passwords redacted.", Complexity: "O(N). Where N is the number of configured users.", Handler: aclList},
				{Name: "users", Arity: 2, Flags: FlagAdmin | FlagNoScript | FlagLoading | FlagStale, Categories: []string{"@admin", "@slow", "@dangerous"}, Group: "server", Since: "0.1.0",
					Summary: "Lists all users.", Complexity: "O(N). Where N is the number of configured users.", Handler: aclUsers},
				{Name: "help", Arity: 2, Flags: FlagLoading | FlagStale, Categories: []string{"@slow"}, Group: "server", Since: "0.1.0",
					Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)", Handler: aclHelp},
			}},
	}
}

func aclWhoAmI(_ *Server, c *resp.Conn, _ [][]byte) { c.WriteBulkString(sessionOf(c).user.Load().Name) }

func aclList(s *Server, c *resp.Conn, _ [][]byte) {
	users := s.cfg.Users.Sorted()
	c.WriteArray(len(users))
	for _, u := range users {
		c.WriteBulkString(u.String())
	}
}

func aclUsers(s *Server, c *resp.Conn, _ [][]byte) {
	users := s.cfg.Users.Sorted()
	c.WriteArray(len(users))
	for _, u := range users {
		c.WriteBulkString(u.Name)
	}
}

func aclHelp(_ *Server, c *resp.Conn, _ [][]byte) {
	writeHelp(c, "ACL", []string{
		"WHOAMI", "    Return the current connection username.",
		"LIST", "    Show users and their rules, passwords redacted.",
		"USERS", "    List all the registered usernames.",
	})
}
