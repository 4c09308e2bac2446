// Package commands owns Sluice's command table, its handlers, argument
// parsing and every Redis error reply.
//
// Every command is one declaration (see [Command]): its name, arity (negative
// means "at least"), [Flag]s, key positions, ACL categories, documentation and
// handler. Dispatch, arity errors, ACL checks, COMMAND INFO/DOCS/COUNT/LIST
// and key extraction all read that same declaration, so adding a command is
// adding one entry and one handler. The registry refuses, by panicking when
// the server is built, two commands or two subcommands of one name.
//
// Files follow the commands' subjects: each cmd_<group>.go declares its
// group's commands and holds their handlers (throttle, multi, window,
// policy, lease, counter, slidinglog, keys, connection, server, acl,
// replication, cluster). registry.go holds the Command type and the table,
// dispatch.go the path of one call, session.go the per-connection state,
// describe.go the COMMAND INFO, DOCS and HELP reply shapes, args.go the
// argument parsers, errors.go the replies, memory.go the bounds one call
// may make the server hold (maxmemory's -OOM check at dispatch, the limits
// of THROTTLE.MULTI and of leases), routing.go cluster mode's check at
// dispatch (-MOVED, -CROSSSLOT, -TRYAGAIN) and the background drop of the
// keys of slots a node lost, migrate.go moving slots with their state
// between nodes (CLUSTERX MIGRATE, IMPORT, APPLY, SETSLOT), cmdstats.go
// the per-command counters of INFO commandstats and CONFIG RESETSTAT's
// baseline, slowlog.go the slow log (SLOWLOG).
//
// [Server] implements resp.Handler: the network layer hands it one parsed
// command at a time and it writes the reply through the connection's
// encoders. It knows nothing of sockets; the state lives in a gcra.Table and
// the window and lease stores, and time comes from an injected clock,
// stamped once per command by dispatch (the same stamp ends one command's
// timing and starts the next one's in a pipelined batch; see run). Accounts and their rules belong to package acl, which
// dispatch asks.
//
// Error replies use Redis's wording wherever Redis has one; they are defined
// once, as values, in errors.go, which also words the packages' Go errors
// (see errorReply).
package commands
