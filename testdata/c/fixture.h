/*
 * fixture.h: the interface the harness (loop.c) calls in both versions of the
 * fixture program. v1/funcs.c and v2/funcs.c implement it; what each function
 * is for and what v2 changes is written in ../README.md and ../groundtruth.json.
 *
 * Everything here is libc-free so the same sources build for the ARM64 PE,
 * which is linked without a C runtime.
 */
#ifndef HOTPATCH_FIXTURE_H
#define HOTPATCH_FIXTURE_H

/*
 * FIXTURE marks a function of interest: it must stay a real, separate function
 * with its own symbol at -O2. gcc's noipa also stops identical-code folding,
 * constprop/isra/part clones and IPA register allocation, which would rename or
 * merge functions; clang has no noipa, and noinline is enough there (clang does
 * not clone externally visible functions without LTO).
 */
#if defined(__clang__)
#define FIXTURE __attribute__((noinline, used))
#else
#define FIXTURE __attribute__((noipa, used))
#endif

#define SLOT_CAP 16 /* storage in slots[] */
#define SLOT_USED 8 /* valid entries; the rest hold 0xdead */

int calls_moved(int x);
int leaf_mix(int a, int b);
int zero(void);
long long read_total(void);
int read_hits(void);
int clamp_small(int x);
const char *greeting(void);
int slot_get(int i);
long long record(int x);
int scale(int x);
int dispatch(int op, int x);
int fib(int n);
int moved_mix(int x);
const char *label(int n);
int classify(int kind, int x);

/* Harness: loop.c runs the loop, an os_*.c file supplies these. */
void fixture_run(long long iterations, int interval_ms);
void os_write(const char *buf, int len);
void os_sleep_ms(int ms);
int os_pid(void);

#endif
