// Package verify is being written.
package verify
