// textrel_pe.c: a small x64 DLL fixture for the image package, linked at
// 0x140000000 (where a Go test binary sits) so the system loader must
// relocate it, with a table of function addresses inside .text so the
// relocation reaches code (IMAGE_REL_BASED_DIR64 in .text). Built by build.sh.
__declspec(dllexport) __attribute__((noinline)) int fx_leaf(int a, int b) { return a * 3 + b; }
__declspec(dllexport) __attribute__((noinline)) int fx_caller(int a) { return fx_leaf(a, 7) + 1; }

__asm__(".text\n"
        ".globl fx_table\n"
        ".p2align 3\n"
        "fx_table:\n"
        ".quad fx_leaf\n"
        ".quad fx_caller\n");

extern int (*const fx_table[2])(int, int);

__declspec(dllexport) int fx_dispatch(int i, int a) { return fx_table[i & 1](a, 1); }
