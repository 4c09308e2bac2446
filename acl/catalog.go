package acl

import (
	"errors"
	"slices"
)

// ErrUnknownRule is returned for a rule that names a command, subcommand or
// category the catalog does not have: Redis refuses such a rule ("Unknown
// command or category name in ACL"), so a typo in a deny rule cannot
// silently allow what it meant to deny.
var ErrUnknownRule = errors.New("unknown command or category name in ACL")

// Catalog is every command as the rules see it (each subcommand too, with
// its full name "client|setname"). Package commands describes its table
// this way; Load checks every rule against it.
type Catalog []Command

// redisCategories are Redis 7's ACL categories. A file written for Redis
// may name them; those Sluice's commands do not carry match nothing.
var redisCategories = []string{
	"all", "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog",
	"geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
}

// knows reports whether r names something that exists: a command of the
// catalog, or a category one of its commands carries or Redis defines.
func (cat Catalog) knows(r rule) bool {
	if r.command != "" {
		return slices.ContainsFunc(cat, func(c Command) bool { return c.Name == r.command })
	}
	if slices.Contains(redisCategories, r.category) {
		return true
	}
	return slices.ContainsFunc(cat, func(c Command) bool { return slices.Contains(c.Categories, "@"+r.category) })
}

// grantsMoreThanConnection reports whether u may run a command of cat that is not
// about the connection itself (@connection: PING, ECHO, CLIENT ...).
func (cat Catalog) grantsMoreThanConnection(u *User) bool {
	for _, c := range cat {
		if c.Parent == "" && slices.ContainsFunc(cat, func(sub Command) bool { return sub.Parent == c.Name }) {
			continue // a container runs nothing itself: its subcommands are checked
		}
		if !slices.Contains(c.Categories, "@connection") && u.CanRun(c) {
			return true
		}
	}
	return false
}
