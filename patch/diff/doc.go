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
package diff
