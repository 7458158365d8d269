/*
 * stable.c: identical in v1 and v2 and linked before funcs.c, so calls_moved
 * stays at the same address in both builds while its callee moved_mix moves
 * (v2 grows and inserts functions before it): the only difference between
 * the two builds of calls_moved is the call's displacement.
 */
#include "fixture.h"

FIXTURE int calls_moved(int x) { return moved_mix(x) + 1; }
