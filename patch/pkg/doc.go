// Package pkg is the hot patch package: what Build makes from two builds of a
// module, what an operator signs and ships, and what Apply links and writes
// into a process; one versioned, deterministic, ed25519-signed file format.
//
// # Pipeline
//
//	old, new image --diff.Compare--> Report --Build--> *Package --Sign, Marshal--> file
//	file --Load (signature first)--> *Package --Link(module base, patch memory)--> bytes to write
//
// Build carries every Changed function's new body as a blob whose outside
// references are relocations: to the old image (calls to old functions, its
// globals and import slots), to another blob of the package, or to a carried
// read-only constant. Jump tables are copied into the blob in front of the
// code. What cannot be hot-patched is refused, every function with every
// reason, in one *RefusedError.
//
// For Apply: Base.VerifyCode checks the live module's code hash from the
// package alone (the old file is not needed; headers are compared by the
// caller against Base.Identity); each function's PreImage must equal the
// live bytes at its entry; Link gives the bytes to write into memory
// allocated within reach of the module (Build emits near forms: rel32 and
// ADRP to the old image's globals); entry jumps go from module+OldRVA to
// Linked.Entries[i]. Build refuses functions shorter than the near jump
// (5 bytes on x86-64, 4 on ARM64); one shorter than the far jump (14, 16)
// needs that near jump, which the near allocation provides.
//
// # File format, version 1
//
// All integers are little-endian. "bytes" is a u32 length then that many
// bytes; "str" is bytes holding UTF-8. Counts are u32. There are no maps,
// no optional padding and no timestamps: one Package has exactly one
// encoding, Load refuses every other one, and so Marshal(Load(b)) == b for
// every b that Load accepts.
//
// Header, 24 bytes:
//
//	 0  8  magic   "\x89HPK\r\n\x1a\n"
//	 8  2  version 1
//	10  2  flags   bit 0: signed; other bits zero
//	12  4  body length (bytes between the header and the signature)
//	16  8  key ID  first 8 bytes of SHA-256(ed25519 public key); zero when unsigned
//
// Body, in this order:
//
//	u8 format (1 PE, 2 ELF)        u8 arch (1 amd64, 2 arm64)
//	str module                     u64 preferred image base   u32 mapped image size
//	identity: u16 machine, u32 TimeDateStamp, u32 CheckSum, u32 SizeOfImage,
//	          u8 CodeView present (0/1), [16 GUID, u32 age] when present,
//	          bytes build ID, 32 code hash (image.Identity without the PDB path)
//	count code sections, each: u32 RVA, u32 mapped size   (sorted, disjoint)
//	count code relocs, each: u32 RVA, u16 type, u8 size (4/8), u64 addend,
//	          u64 bytes the file holds there              (sorted by RVA)
//	u32 sequence (>= 1)            u32 requires (< sequence; 0 = none)
//	str description
//	count functions, each:
//	    str name, u8 new (0/1), u32 old RVA, u32 old size,
//	    bytes pre-image (first bytes of the old function), 32 SHA-256 of the old body,
//	    u32 new RVA, u32 entry offset in the blob, bytes blob,
//	    count relocs, each: u32 offset, u8 kind, u32 aux, u8 target,
//	                        u32 index, u64 addend (two's complement)
//	count constants, each: str name, bytes data
//
// Signature, present when flags bit 0 is set: 64 bytes, ed25519 over the
// header and the body (everything before it, key ID included).
//
// Relocation kinds: 1 rel32 (x86-64; aux = end of the instruction),
// 2 abs64, 3 abs32, 4 ARM64 B/BL imm26, 5 B.cond/CBZ/CBNZ imm19, 6 TBZ/TBNZ
// imm14, 7 ADR, 8 ADRP (aux = offset of the ADD or load/store taking the low
// 12 bits), 9 LDR (literal), 10 low 12 bits in an ADD or load/store (aux =
// the ADRP, linked before it, whose page must be the target's). Targets: 1
// the old image (addend = RVA), 2 the blob of function index (addend =
// offset), 3 constant index (addend = offset). Validate lists every rule Load enforces beyond the layout.
//
// # Loading untrusted input
//
// Load looks at the size limit, then the 24-byte header, then the signature,
// and only then at the body: a tampered manifest is never interpreted. It
// finds the trusted key by the key ID (a missing key is a *SignatureError
// with the ID), refuses unsigned packages unless LoadOptions.AllowUnsigned,
// and decodes the body with every count checked against the bytes left and
// against Limits before anything is allocated. Every failure is typed:
// *FormatError{Offset, What}, *SignatureError, ErrUnsigned, *LimitError
// (ErrTooLarge), *VersionError. Defaults (DefaultLimits): 64 MiB file,
// 65536 functions, 1 MiB per blob, 65536 relocations per function, 65536
// constants of at most 1 MiB, 2^20 code relocations, 64 KiB strings, 64-byte
// pre-images and build IDs, 256 code sections.
//
// # Keys
//
// GenerateKey makes an ed25519 pair. Keys are written as PEM (PKIX "PUBLIC
// KEY", PKCS #8 "PRIVATE KEY", the files openssl reads and writes) or as one
// text line, "hotpatch-ed25519-public <base64 of the 32-byte key>" or
// "hotpatch-ed25519-seed <base64 of the 32-byte seed>"; ParsePublicKey and
// ParsePrivateKey accept both forms.
//
// # Linking
//
// Layout places the blobs (in function order) then the constants, each at a
// 16-byte boundary, from the start of the patch memory. Link fills every
// field for a module loaded at a given base and patch memory at another; a
// field that cannot reach its target is a *LinkError. NeedsNear says whether
// the memory must be allocated near the module (rel32 +-2 GiB; ARM64 B/BL
// +-128 MiB, ADRP +-4 GiB, ADR and literals +-1 MiB): Build emits near forms,
// since the old image's globals are reached with rel32/ADRP.
//
// # Applied set (design note for Apply)
//
// The record of what a process has applied lives in the process, next to the
// code it describes, so that it exists exactly as long as the patch does: it
// survives the agent (a second run, another agent, a crash mid-way) and dies
// with the process (no stale state file after a restart, no PID reuse
// confusion). Apply allocates the patch memory near the module as
//
//	page 0: AppliedRecord (MarshalBinary), then read-only
//	page 1...: Link's Code at base = region + page size, then read+execute
//
// The record holds the module base, the package's code hash, sequence and
// requires, the SHA-256 of the package file, the signer's key ID, the region,
// and for each redirected entry the bytes the jump overwrote, so any later
// run can revert without the package. To find the applied set, enumerate the
// target's private mappings within reach of the module (Linux /proc/PID/maps,
// Windows VirtualQueryEx over the +-2 GiB window), read AppliedHeaderSize bytes
// at each mapping's start, and parse those whose magic matches
// (AppliedRecordLen, ParseAppliedRecord; the record's SHA-256 trailer rejects
// torn or foreign bytes). Keep those whose ModuleBase and CodeHash are the
// module's. The applied sequence is the highest Sequence among them; package
// N applies only when its Requires equals it (0: nothing applied), and Revert
// goes in decreasing Sequence and frees the region, record included. Writing
// the record before the entry jumps (and freeing it after restoring them)
// keeps the record a superset of what is live: a crash in between leaves a
// record whose entries a later run checks against the live bytes.
package pkg
