// Package image loads an executable module (PE for Windows, ELF for Linux;
// x86-64 and ARM64) into one format-neutral model: sections, functions,
// symbols, imports, exports, base relocations and an identity to bind patches to.
//
// Open and Parse accept untrusted input: malformed files give a *FormatError
// naming the offset, never a panic. Functions are sorted by RVA and can be
// looked up by name or by any address they contain in O(log n).
package image
