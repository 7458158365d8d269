// Package gomonkey compares hotpatch's in-process apply+rollback and call
// overhead with github.com/agiledragon/gomonkey/v2 on the same function.
// It is a separate module so that the library never depends on gomonkey.
//
// Run: cd bench/gomonkey && go test -bench . -gcflags=all=-l
package gomonkey
