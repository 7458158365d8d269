// Command hotpatch is the operator's tool beside an agent that embeds the
// hotpatch library: it shows what the library sees in a module, which
// functions differ between two builds of it, and builds, signs and shows
// the patch packages an agent applies, and applies, lists and reverts them
// in a running process.
//
// Usage:
//
//	hotpatch <command> [flags] [arguments]
//
// The commands are:
//
//	inspect IMAGE     identity, sections and functions of a PE or ELF module
//	diff OLD NEW      which functions changed between two builds
//	keygen NAME       an ed25519 key pair for signing packages
//	build OLD NEW     a signed patch package from two builds
//	show PACKAGE      verify a package's signature and print what it carries
//	apply PACKAGE     apply a package to a running process (-pid)
//	status [PACKAGE]  which packages a running process has applied
//	revert PACKAGE    undo an applied package in a running process
//	help [COMMAND]    this text, or the usage and flags of one command
//
// Exit status: 0 on success, 1 when the operation fails (one line on stderr:
// "hotpatch: COMMAND: what failed"), 2 for a usage error.
//
// Every command is the library's public API put on the command line; read
// the command's source next to `go doc` of the package it calls.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand: its flags are declared by setup on a fresh
// FlagSet, and exec runs it once the flags are parsed.
type command struct {
	name  string
	args  string // the positional arguments, for the usage line
	short string // one line for the command list
	long  string // the paragraph `hotpatch help NAME` prints
	nargs int    // number of positional arguments
	// optArgs is how many more (trailing) positional arguments may be
	// given: status takes a package or none.
	optArgs int
	setup   func(fs *flag.FlagSet) func(e *env, args []string) error
}

// env is what a running command writes to: results to stdout, progress and
// diagnostics to stderr.
type env struct {
	name           string // the command, for the prefix of progress lines
	stdout, stderr io.Writer
}

// progress writes one line of progress to stderr.
func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.stderr, "hotpatch: %s: %s\n", e.name, fmt.Sprintf(format, args...))
}

// commands lists every subcommand in the order `hotpatch -h` shows them. A
// command is listed only once the library parts it needs exist.
var commands = []*command{inspectCommand, diffCommand, keygenCommand, buildCommand, showCommand, applyCommand, statusCommand, revertCommand}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run is the whole program: it parses args (without the program name),
// runs one command, and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		mainUsage(stderr)
		return exitUsage
	}
	switch name := args[0]; name {
	case "-h", "-help", "--help":
		mainUsage(stdout)
		return exitOK
	case "help":
		return help(args[1:], stdout, stderr)
	default:
		c := lookup(name)
		if c == nil {
			fmt.Fprintf(stderr, "hotpatch: unknown command %q\n", name)
			fmt.Fprintf(stderr, "Run 'hotpatch help' for usage.\n")
			return exitUsage
		}
		return c.run(args[1:], stdout, stderr)
	}
}

// run parses the command's flags and arguments and executes it.
func (c *command) run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	exec := c.setup(fs)
	fs.Usage = func() { c.usage(fs.Output(), fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// -h asked for this: it is the answer, not an error.
			c.usage(stdout, fs)
			return exitOK
		}
		// flag has already printed the problem and the usage.
		return exitUsage
	}
	if n := fs.NArg(); n < c.nargs || n > c.nargs+c.optArgs {
		want := fmt.Sprint(c.nargs)
		if c.optArgs > 0 {
			want = fmt.Sprintf("%d to %d", c.nargs, c.nargs+c.optArgs)
		}
		fmt.Fprintf(stderr, "hotpatch %s: want %s arguments (%s), got %d\n", c.name, want, c.args, n)
		c.usage(stderr, fs)
		return exitUsage
	}
	e := &env{name: c.name, stdout: stdout, stderr: stderr}
	if err := exec(e, fs.Args()); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "hotpatch %s: %s\n", c.name, ue)
			c.usage(stderr, fs)
			return exitUsage
		}
		fmt.Fprintf(stderr, "hotpatch: %s: %s\n", c.name, oneLine(err))
		return exitFailure
	}
	return exitOK
}

// usage writes the command's usage line, description and flags.
func (c *command) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: hotpatch %s [flags] %s\n\n%s\n", c.name, c.args, c.long)
	var hasFlags bool
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

func mainUsage(w io.Writer) {
	fmt.Fprintf(w, `hotpatch shows what the hotpatch library sees in a module, which functions
changed between two builds of it, builds and signs patch packages, and applies
and reverts them in running processes.

usage: hotpatch <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %-14s %s\n", c.name, c.args, c.short)
	}
	fmt.Fprintf(w, "  %-8s %-14s %s\n", "help", "[COMMAND]", "this text, or one command's usage and flags")
	fmt.Fprintf(w, `
Run 'hotpatch help COMMAND' (or 'hotpatch COMMAND -h') for a command's flags.
Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
`)
}

// help implements `hotpatch help [COMMAND]`.
func help(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		mainUsage(stdout)
		return exitOK
	case 1:
		c := lookup(args[0])
		if c == nil {
			fmt.Fprintf(stderr, "hotpatch help: unknown command %q\n", args[0])
			fmt.Fprintf(stderr, "Run 'hotpatch help' for usage.\n")
			return exitUsage
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.setup(fs)
		c.usage(stdout, fs)
		return exitOK
	default:
		fmt.Fprintf(stderr, "usage: hotpatch help [COMMAND]\n")
		return exitUsage
	}
}

// oneLine keeps a failure to one line on stderr: wrapped errors from deep
// layers sometimes carry newlines.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
