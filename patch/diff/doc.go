// Package diff compares two builds of one module function by function and
// says exactly which functions changed, after resolving every PC-relative and
// base-relocated operand to a layout-independent symbolic target.
//
// Compare matches the functions of an old and a new image (by name, then by
// normalised body hash, then by call-graph neighbours for stripped code),
// classifies every pair as Unchanged, Changed, Added or Removed with the
// reasons, and lists for each Changed function the outside references its new
// body makes, resolved against the old image: what patch building consumes.
//
// A function that only moved, or whose callees or data moved, is Unchanged:
// bodies are compared as instruction bytes with every address field masked,
// plus the symbolic targets of those fields (function + offset by match
// identity, writable data symbol + offset, read-only constant by content,
// import by library!name, jump-table entries as offsets into the function).
// x86-64 and ARM64, PE and ELF, C and Go code are handled alike.
//
// Limits, each erring towards "changed", never towards a missed change
// except where said:
//   - A read-only constant is compared over the bytes both images agree it
//     spans: up to the next symbol or address the code refers to, at most 256
//     bytes; a difference beyond that is missed. Pointers inside constants
//     (under base relocations; in images without them, words that name a
//     function or symbol start, and in Go images any read-only address) are
//     compared by what they point to.
//   - ARM64 ADRP pages are followed through registers, moves, stack spills and
//     joins by a data-flow over the function; an ADRP whose low half is not
//     found is compared as "some page" (a changed target there is missed) and
//     listed as not hot-patchable.
//   - Jump tables are recognised from the instruction that indexes them; the
//     number of entries comes from the bounds check before it, else from the
//     next referenced address.
//   - Writable data is named by the nearest symbol; PE (COFF) symbols carry no
//     size, so a resized global is only detected in ELF images.
//   - Go's go:buildid, which lies in .text, is data and is left out.
package diff
