// Package acl owns Sluice's accounts: the users, their passwords and the
// rules that say which commands each may run and which keys it may touch,
// in Redis's ACL syntax, and the ACL file that declares them.
//
// It knows no command table: a rule is checked against a [Command], the
// name, container and categories the command table describes each command
// with, and an ACL file is checked against a [Catalog] of them, so that a
// rule naming no command or category is refused as Redis refuses it. The replies a refusal earns (NOAUTH, NOPERM, WRONGPASS) are worded
// by package commands, which calls this package at dispatch; errors here
// are plain Go errors.
package acl
