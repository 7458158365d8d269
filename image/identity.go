package image

// Identity is what binds a patch to exactly one build of a module. Two images
// with equal identities have the same code; a patch records its base image's
// Identity and refuses any module that does not match it.
type Identity struct {
	// Machine is the PE machine (0x8664, 0xaa64) or ELF e_machine (62, 183).
	Machine uint16
	// PE header fields; zero for ELF.
	TimeDateStamp uint32
	CheckSum      uint32
	SizeOfImage   uint32
	// CodeView is the RSDS record of the debug directory, nil when absent.
	CodeView *CodeView
	// BuildID is the ELF NT_GNU_BUILD_ID note (or Go build ID note), nil when absent.
	BuildID []byte
	// CodeHash is the SHA-256 of the executable sections' mapped bytes in
	// section order, each padded with zeros to its mapped size, as the file
	// has them (before any base relocation is applied).
	CodeHash [32]byte
}

// CodeView is a CodeView RSDS debug record: the key that ties an image to its PDB.
type CodeView struct {
	GUID [16]byte
	Age  uint32
	Path string // PDB path as recorded; not part of identity comparisons
}
