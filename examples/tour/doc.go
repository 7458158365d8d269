// Package tour holds the README's five-minute tour of the hotpatch API as
// runnable Example tests: every snippet the README shows is compiled and its
// output checked here, so the README cannot drift from the library.
package tour
