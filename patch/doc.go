// Package patch is being written.
package patch
