/* The unwind rule of a code address (cfi.c), packed in 64 bits so that a table of rules can
 * publish one with a single store. 0 means "not known yet". */
#ifndef LT_CFI_H
#define LT_CFI_H

#include <stdint.h>

#define LT_RULE_KIND_MASK   0x3ull
#define LT_RULE_CFA_SP      0x1ull  /* CFA = stack pointer + offset */
#define LT_RULE_CFA_BP      0x2ull  /* CFA = frame pointer (rbp) + offset */
#define LT_RULE_OUTERMOST   0x3ull  /* no caller: the return address is undefined */
#define LT_RULE_UNSUPPORTED 0x4ull  /* a frame this walker cannot step: libunwind must */
#define LT_RULE_BP_SAVED    0x8ull  /* the caller's rbp is saved at CFA + bp offset */
#define LT_RULE_BP_LOST     0x10ull /* the caller's rbp is undefined */
/* Bits 8-15 are free for the table that keeps rules (walk.c: a generation). */
#define LT_RULE_BP_SHIFT    16      /* int16: where rbp is saved, from the CFA */
#define LT_RULE_CFA_SHIFT   32      /* int32: the CFA's offset from its register */

static inline int64_t lt_rule_cfa_offset(uint64_t rule) { return (int32_t)(rule >> LT_RULE_CFA_SHIFT); }
static inline int64_t lt_rule_bp_offset(uint64_t rule) { return (int16_t)(rule >> LT_RULE_BP_SHIFT); }

/* Looks up _dl_find_object; returns 0 when this glibc has none (then every rule is
 * unsupported). */
int lt_cfi_init(void);

/* The rule for the frame executing at `pc` (a return address minus one). Lock-free, no
 * allocation, no system call. */
uint64_t lt_cfi_rule(uintptr_t pc);

#endif
