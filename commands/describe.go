package commands

import "github.com/sluicehq/sluice/resp"

// writeInfo writes one COMMAND INFO entry in Redis 7's ten-field shape.
func writeInfo(c *resp.Conn, cmd *Command) {
	c.WriteArray(10)
	c.WriteBulkString(cmd.FullName())
	c.WriteInt(int64(cmd.Arity))
	flags := cmd.Flags.Names()
	c.WriteSet(len(flags))
	for _, f := range flags {
		c.WriteSimple(f)
	}
	c.WriteInt(int64(cmd.FirstKey))
	c.WriteInt(int64(cmd.LastKey))
	c.WriteInt(int64(cmd.Step))
	c.WriteSet(len(cmd.Categories))
	for _, cat := range cmd.Categories {
		c.WriteSimple(cat)
	}
	c.WriteArray(0) // tips
	writeKeySpecs(c, cmd)
	c.WriteArray(len(cmd.Subs))
	for _, sub := range cmd.Subs {
		writeInfo(c, sub)
	}
}

// writeKeySpecs describes the key positions as one Redis 7 key spec.
func writeKeySpecs(c *resp.Conn, cmd *Command) {
	if cmd.FirstKey == 0 {
		c.WriteArray(0)
		return
	}
	access := "RO"
	if cmd.Flags.Has(FlagWrite) {
		access = "RW"
	}
	c.WriteArray(1)
	c.WriteMap(3)
	c.WriteBulkString("flags")
	c.WriteSet(1)
	c.WriteSimple(access)
	c.WriteBulkString("begin_search")
	c.WriteMap(2)
	c.WriteBulkString("type")
	c.WriteBulkString("index")
	c.WriteBulkString("spec")
	c.WriteMap(1)
	c.WriteBulkString("index")
	c.WriteInt(int64(cmd.FirstKey))
	c.WriteBulkString("find_keys")
	c.WriteMap(2)
	c.WriteBulkString("type")
	c.WriteBulkString("range")
	c.WriteBulkString("spec")
	c.WriteMap(3)
	c.WriteBulkString("lastkey")
	if cmd.LastKey < 0 {
		c.WriteInt(int64(cmd.LastKey))
	} else {
		c.WriteInt(int64(cmd.LastKey - cmd.FirstKey))
	}
	c.WriteBulkString("keystep")
	c.WriteInt(int64(max(cmd.Step, 1)))
	c.WriteBulkString("limit")
	c.WriteInt(0)
}

// writeDocs writes one COMMAND DOCS entry.
func writeDocs(c *resp.Conn, cmd *Command) {
	n := 4
	if len(cmd.Args) > 0 {
		n++
	}
	if len(cmd.Subs) > 0 {
		n++
	}
	c.WriteMap(n)
	c.WriteBulkString("summary")
	c.WriteBulkString(cmd.Summary)
	c.WriteBulkString("since")
	c.WriteBulkString(cmd.Since)
	c.WriteBulkString("group")
	c.WriteBulkString(cmd.Group)
	c.WriteBulkString("complexity")
	c.WriteBulkString(cmd.Complexity)
	if len(cmd.Args) > 0 {
		c.WriteBulkString("arguments")
		writeArgs(c, cmd.Args)
	}
	if len(cmd.Subs) > 0 {
		c.WriteBulkString("subcommands")
		c.WriteMap(len(cmd.Subs))
		for _, sub := range cmd.Subs {
			c.WriteBulkString(sub.FullName())
			writeDocs(c, sub)
		}
	}
}

func writeArgs(c *resp.Conn, args []Arg) {
	c.WriteArray(len(args))
	for _, a := range args {
		var flags []string
		if a.Optional {
			flags = append(flags, "optional")
		}
		if a.Multiple {
			flags = append(flags, "multiple")
		}
		n := 2
		if a.Type != "pure-token" && a.Type != "oneof" && a.Type != "block" {
			n++ // display_text
		}
		if a.Token != "" {
			n++
		}
		if len(flags) > 0 {
			n++
		}
		if len(a.Args) > 0 {
			n++
		}
		c.WriteMap(n)
		c.WriteBulkString("name")
		c.WriteBulkString(a.Name)
		c.WriteBulkString("type")
		c.WriteBulkString(a.Type)
		if a.Type != "pure-token" && a.Type != "oneof" && a.Type != "block" {
			c.WriteBulkString("display_text")
			c.WriteBulkString(a.Name)
		}
		if a.Token != "" {
			c.WriteBulkString("token")
			c.WriteBulkString(a.Token)
		}
		if len(flags) > 0 {
			c.WriteBulkString("flags")
			c.WriteSet(len(flags))
			for _, f := range flags {
				c.WriteSimple(f)
			}
		}
		if len(a.Args) > 0 {
			c.WriteBulkString("arguments")
			writeArgs(c, a.Args)
		}
	}
}

// writeHelp writes a container command's HELP reply: the usage line, the
// subcommands with their descriptions, then HELP itself.
func writeHelp(c *resp.Conn, name string, lines []string) {
	c.WriteArray(len(lines) + 3)
	c.WriteSimple(name + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		c.WriteSimple(l)
	}
	c.WriteSimple("HELP")
	c.WriteSimple("    Print this help.")
}
