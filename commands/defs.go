package commands

// throttleArgs documents THROTTLE's arguments.
var throttleArgs = []Arg{
	{Name: "key", Type: "key"},
	{Name: "max_burst", Type: "integer"},
	{Name: "count", Type: "integer"},
	{Name: "period", Type: "integer"},
	{Name: "quantity", Type: "integer", Optional: true},
}

const throttleSummary = "Applies one GCRA rate-limit request to a key: replies [limited, limit, remaining, retry_after, reset_after]."

// commandTable declares every command Sluice serves.
func commandTable() []*Command {
	keyed := func(c *Command) *Command { c.FirstKey, c.LastKey, c.Step = 1, 1, 1; return c }
	variadic := func(c *Command) *Command { c.FirstKey, c.LastKey, c.Step = 1, -1, 1; return c }
	return append([]*Command{
		keyed(&Command{Name: "throttle", Arity: -5, Flags: []string{"write", "denyoom", "fast"},
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.1.0",
			Summary: throttleSummary, Complexity: "O(1)", Args: throttleArgs, Handler: throttle}),
		keyed(&Command{Name: "cl.throttle", Arity: -5, Flags: []string{"write", "denyoom", "fast"},
			Categories: []string{"@write", "@fast", "@throttle"}, Group: "throttle", Since: "0.1.0",
			Summary: throttleSummary + " redis-cell's name for THROTTLE.", Complexity: "O(1)", Args: throttleArgs, Handler: throttle}),
		variadic(&Command{Name: "del", Arity: -2, Flags: []string{"write"}, Categories: []string{"@keyspace", "@write", "@slow"},
			Group: "generic", Since: "0.1.0", Summary: "Deletes the throttle state of keys, resetting their limits. Replies with how many had live state.",
			Complexity: "O(N) where N is the number of keys", Args: []Arg{{Name: "key", Type: "key", Multiple: true}}, Handler: del}),
		variadic(&Command{Name: "exists", Arity: -2, Flags: []string{"readonly", "fast"}, Categories: []string{"@keyspace", "@read", "@fast"},
			Group: "generic", Since: "0.1.0", Summary: "Counts the keys that have live throttle state.",
			Complexity: "O(N) where N is the number of keys", Args: []Arg{{Name: "key", Type: "key", Multiple: true}}, Handler: exists}),
		keyed(&Command{Name: "ttl", Arity: 2, Flags: []string{"readonly", "fast"}, Categories: []string{"@keyspace", "@read", "@fast"},
			Group: "generic", Since: "0.1.0", Summary: "Seconds until a key's state expires (its TAT), -2 when it has none.",
			Complexity: "O(1)", Args: []Arg{{Name: "key", Type: "key"}}, Handler: ttl}),
		keyed(&Command{Name: "pttl", Arity: 2, Flags: []string{"readonly", "fast"}, Categories: []string{"@keyspace", "@read", "@fast"},
			Group: "generic", Since: "0.1.0", Summary: "Milliseconds until a key's state expires (its TAT), -2 when it has none.",
			Complexity: "O(1)", Args: []Arg{{Name: "key", Type: "key"}}, Handler: pttl}),
		{Name: "dbsize", Arity: 1, Flags: []string{"readonly", "fast"}, Categories: []string{"@keyspace", "@read", "@fast"},
			Group: "server", Since: "0.1.0", Summary: "Number of keys with throttle state.", Complexity: "O(shards)", Handler: dbsize},
		{Name: "flushall", Arity: -1, Flags: []string{"write"}, Categories: []string{"@keyspace", "@write", "@slow", "@dangerous"},
			Group: "server", Since: "0.1.0", Summary: "Removes all throttle state.", Complexity: "O(shards)",
			Args: []Arg{{Name: "flush-type", Type: "oneof", Optional: true, Args: []Arg{{Name: "async", Type: "pure-token", Token: "ASYNC"}, {Name: "sync", Type: "pure-token", Token: "SYNC"}}}}, Handler: flush},
		{Name: "flushdb", Arity: -1, Flags: []string{"write"}, Categories: []string{"@keyspace", "@write", "@slow", "@dangerous"},
			Group: "server", Since: "0.1.0", Summary: "Removes all throttle state (there is one database).", Complexity: "O(shards)",
			Args: []Arg{{Name: "flush-type", Type: "oneof", Optional: true, Args: []Arg{{Name: "async", Type: "pure-token", Token: "ASYNC"}, {Name: "sync", Type: "pure-token", Token: "SYNC"}}}}, Handler: flush},
		{Name: "ping", Arity: -1, Flags: []string{"fast"}, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Returns PONG, or the message.", Complexity: "O(1)", Args: []Arg{{Name: "message", Type: "string", Optional: true}}, Handler: ping},
		{Name: "echo", Arity: 2, Flags: []string{"fast"}, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Returns the message.", Complexity: "O(1)", Args: []Arg{{Name: "message", Type: "string"}}, Handler: echo},
		{Name: "quit", Arity: -1, Flags: []string{"noauth", "fast"}, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Closes the connection after replying OK.", Complexity: "O(1)", Handler: quit},
		{Name: "select", Arity: 2, Flags: []string{"fast"}, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Selects database 0, the only one.", Complexity: "O(1)", Args: []Arg{{Name: "index", Type: "integer"}}, Handler: selectDB},
		{Name: "auth", Arity: -2, Flags: []string{"noauth", "fast", "no-auth"}, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Authenticates the connection.", Complexity: "O(N) where N is the number of passwords defined for the user",
			Args: []Arg{{Name: "username", Type: "string", Optional: true}, {Name: "password", Type: "string"}}, Handler: auth},
		{Name: "hello", Arity: -1, Flags: []string{"noauth", "fast", "no-auth"}, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Handshakes: selects RESP2 or RESP3, optionally authenticates and names the connection.", Complexity: "O(1)",
			Args: []Arg{{Name: "arguments", Type: "block", Optional: true, Args: []Arg{
				{Name: "protover", Type: "integer"},
				{Name: "auth", Type: "block", Token: "AUTH", Optional: true, Args: []Arg{{Name: "username", Type: "string"}, {Name: "password", Type: "string"}}},
				{Name: "clientname", Type: "string", Token: "SETNAME", Optional: true}}}}, Handler: hello},
		{Name: "client", Arity: -2, Group: "connection", Since: "0.1.0", Summary: "A container for client connection commands.", Complexity: "Depends on subcommand.",
			Categories: []string{"@slow"}, Subs: []*Command{
				{Name: "id", Arity: 2, Flags: []string{"noscript", "loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "connection", Since: "0.1.0", Summary: "Returns the unique client ID of the connection.", Complexity: "O(1)", Handler: clientID},
				{Name: "setname", Arity: 3, Flags: []string{"noscript", "loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "connection", Since: "0.1.0", Summary: "Sets the connection name.", Complexity: "O(1)", Args: []Arg{{Name: "connection-name", Type: "string"}}, Handler: clientSetName},
				{Name: "getname", Arity: 2, Flags: []string{"noscript", "loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "connection", Since: "0.1.0", Summary: "Returns the name of the connection.", Complexity: "O(1)", Handler: clientGetName},
				{Name: "setinfo", Arity: 4, Flags: []string{"noscript", "loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "connection", Since: "0.1.0", Summary: "Sets information specific to the client or connection.", Complexity: "O(1)",
					Args: []Arg{{Name: "attr", Type: "oneof", Args: []Arg{{Name: "libname", Type: "string", Token: "LIB-NAME"}, {Name: "libver", Type: "string", Token: "LIB-VER"}}}}, Handler: clientSetInfo},
				{Name: "info", Arity: 2, Flags: []string{"noscript", "loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "connection", Since: "0.1.0", Summary: "Returns information about the connection.", Complexity: "O(1)", Handler: clientInfo},
				{Name: "list", Arity: -2, Flags: []string{"admin", "noscript", "loading", "stale"}, Categories: []string{"@admin", "@slow", "@dangerous", "@connection"}, Group: "connection", Since: "0.1.0", Summary: "Lists open connections.", Complexity: "O(N) where N is the number of client connections", Handler: clientList},
				{Name: "help", Arity: 2, Flags: []string{"loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "connection", Since: "0.1.0", Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)", Handler: clientHelp},
			}},
		{Name: "command", Arity: -1, Flags: []string{"loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "server", Since: "0.1.0",
			Summary: "Returns detailed information about all commands.", Complexity: "O(N) where N is the total number of commands", Handler: commandAll, Subs: []*Command{
				{Name: "count", Arity: 2, Flags: []string{"loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "server", Since: "0.1.0", Summary: "Returns a count of commands.", Complexity: "O(1)", Handler: commandCount},
				{Name: "list", Arity: 2, Flags: []string{"loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "server", Since: "0.1.0", Summary: "Returns a list of command names.", Complexity: "O(N) where N is the total number of commands", Handler: commandList},
				{Name: "info", Arity: -2, Flags: []string{"loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "server", Since: "0.1.0", Summary: "Returns information about one, multiple or all commands.", Complexity: "O(N) where N is the number of commands to look up",
					Args: []Arg{{Name: "command-name", Type: "string", Optional: true, Multiple: true}}, Handler: commandInfo},
				{Name: "docs", Arity: -2, Flags: []string{"loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "server", Since: "0.1.0", Summary: "Returns documentary information about one, multiple or all commands.", Complexity: "O(N) where N is the number of commands to look up",
					Args: []Arg{{Name: "command-name", Type: "string", Optional: true, Multiple: true}}, Handler: commandDocs},
				{Name: "getkeys", Arity: -3, Flags: []string{"loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "server", Since: "0.1.0", Summary: "Extracts the key names from an arbitrary command.", Complexity: "O(N) where N is the number of arguments to the command",
					Args: []Arg{{Name: "command", Type: "string"}, {Name: "arg", Type: "string", Optional: true, Multiple: true}}, Handler: commandGetKeys},
				{Name: "help", Arity: 2, Flags: []string{"loading", "stale"}, Categories: []string{"@slow", "@connection"}, Group: "server", Since: "0.1.0", Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)", Handler: commandHelp},
			}},
		{Name: "info", Arity: -1, Flags: []string{"loading", "stale"}, Categories: []string{"@slow", "@dangerous"}, Group: "server", Since: "0.1.0",
			Summary: "Returns information and statistics about the server.", Complexity: "O(1)", Args: []Arg{{Name: "section", Type: "string", Optional: true, Multiple: true}}, Handler: info},
		{Name: "time", Arity: 1, Flags: []string{"loading", "stale", "fast"}, Categories: []string{"@fast"}, Group: "server", Since: "0.1.0",
			Summary: "Returns the server clock (the one THROTTLE uses) as seconds and microseconds.", Complexity: "O(1)", Handler: timeCmd},
		{Name: "config", Arity: -2, Group: "server", Since: "0.1.0", Summary: "A container for server configuration commands.", Complexity: "Depends on subcommand.",
			Categories: []string{"@slow"}, Subs: []*Command{
				{Name: "get", Arity: -3, Flags: []string{"admin", "noscript", "loading", "stale"}, Categories: []string{"@admin", "@slow", "@dangerous"}, Group: "server", Since: "0.1.0", Summary: "Returns the effective values of configuration parameters.", Complexity: "O(N) when N is the number of configuration parameters provided",
					Args: []Arg{{Name: "parameter", Type: "string", Multiple: true}}, Handler: configGet},
				{Name: "help", Arity: 2, Flags: []string{"loading", "stale"}, Categories: []string{"@slow"}, Group: "server", Since: "0.1.0", Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)", Handler: configHelp},
			}},
		{Name: "debug", Arity: -2, Flags: []string{"admin", "noscript", "loading", "stale"}, Categories: []string{"@admin", "@slow", "@dangerous"}, Group: "server", Since: "0.1.0",
			Summary: "Test controls, refused unless the server runs with --enable-debug-command: CLOCK SET <unix-ns> | CLOCK REAL | CLOCK GET | SWEEP.", Complexity: "Depends on subcommand.",
			Args: []Arg{{Name: "subcommand", Type: "string"}, {Name: "arg", Type: "string", Optional: true, Multiple: true}}, Handler: debug},
	}, beyondCommands()...)
}
