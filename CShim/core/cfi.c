/* The unwind rule of one code address, read from its module's .eh_frame.
 *
 * An x86-64 frame is described by its call frame information (DWARF CFI, the .eh_frame that
 * C++ exceptions use, present in every module built by a current toolchain, frame pointers or
 * not). For a given code address, running the FDE's instructions up to that address yields
 * where the caller's frame begins (the CFA: the stack pointer or the frame pointer plus an
 * offset), where the return address is (CFA - 8 on x86-64), and where the caller's frame
 * pointer was saved, if it was. Those three facts are all a walk needs: the other callee-saved
 * registers never enter a CFA rule in compiled code. Anything else (a CFA computed by a DWARF
 * expression, as in PLT stubs and stack-realigning prologues, a signal frame, a return address
 * kept in a register) is reported as unsupported, and the walk falls back to libunwind.
 *
 * The FDE is found without the loader's lock: _dl_find_object (glibc 2.35) names the module's
 * PT_GNU_EH_FRAME segment, whose binary search table leads to the FDE. Nothing here allocates,
 * takes a lock or makes a system call. */
#include "../base/base.h"
#include "cfi.h"

#include <dlfcn.h>
#include <string.h>

/* _dl_find_object, looked up once at start: the library also loads on older glibc. */
static int (*find_object)(void *, struct dl_find_object *);

int lt_cfi_init(void) {
    find_object = (int (*)(void *, struct dl_find_object *))dlsym(RTLD_DEFAULT, "_dl_find_object");
    return find_object != NULL;
}

/* ---- reading .eh_frame data ---- */

/* DW_EH_PE_* pointer encodings. */
enum {
    PE_ABSPTR = 0x00, PE_ULEB128 = 0x01, PE_UDATA2 = 0x02, PE_UDATA4 = 0x03, PE_UDATA8 = 0x04,
    PE_SLEB128 = 0x09, PE_SDATA2 = 0x0a, PE_SDATA4 = 0x0b, PE_SDATA8 = 0x0c,
    PE_PCREL = 0x10, PE_DATAREL = 0x30, PE_INDIRECT = 0x80, PE_OMIT = 0xff,
};

struct reader {
    const uint8_t *p, *end;
    int bad;
};

static inline uint8_t read_u8(struct reader *r) {
    if (r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

static uint64_t read_uleb(struct reader *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b = read_u8(r);
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t read_sleb(struct reader *r) {
    int64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = read_u8(r);
        v |= (int64_t)(b & 0x7f) << shift;
        shift += 7;
    } while ((b & 0x80) && shift < 64);
    if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
    return v;
}

static uint64_t read_fixed(struct reader *r, size_t size) {
    if ((size_t)(r->end - r->p) < size) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, size); /* little-endian */
    r->p += size;
    return v;
}

/* Reads a pointer in encoding `enc`. `datarel` is the base for DW_EH_PE_datarel (the
 * .eh_frame_hdr start), 0 where that form does not occur. */
static uintptr_t read_encoded(struct reader *r, uint8_t enc, uintptr_t datarel) {
    if (enc == PE_OMIT) {
        r->bad = 1;
        return 0;
    }
    uintptr_t at = (uintptr_t)r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case PE_ABSPTR: v = read_fixed(r, 8); break;
    case PE_ULEB128: v = read_uleb(r); break;
    case PE_UDATA2: v = read_fixed(r, 2); break;
    case PE_UDATA4: v = read_fixed(r, 4); break;
    case PE_UDATA8: v = read_fixed(r, 8); break;
    case PE_SLEB128: v = (uint64_t)read_sleb(r); break;
    case PE_SDATA2: v = (uint64_t)(int64_t)(int16_t)read_fixed(r, 2); break;
    case PE_SDATA4: v = (uint64_t)(int64_t)(int32_t)read_fixed(r, 4); break;
    case PE_SDATA8: v = read_fixed(r, 8); break;
    default: r->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0: break;
    case PE_PCREL: v += at; break;
    case PE_DATAREL:
        if (!datarel) r->bad = 1;
        v += datarel;
        break;
    default: r->bad = 1; return 0; /* textrel, funcrel, aligned: not used on x86-64 */
    }
    /* An indirect pointer (personality routines) is only skipped here, never followed. */
    return (uintptr_t)v;
}

/* ---- finding the FDE ---- */

/* Returns the FDE covering `pc` from the module's .eh_frame_hdr binary search table. */
static const uint8_t *find_fde(uintptr_t pc) {
    struct dl_find_object found;
    if (!find_object || find_object((void *)pc, &found) != 0 || !found.dlfo_eh_frame) return NULL;
    const uint8_t *hdr = found.dlfo_eh_frame;
    /* version 1, then the encodings of eh_frame_ptr, fde_count and the table */
    if (hdr[0] != 1 || hdr[3] != (PE_DATAREL | PE_SDATA4)) return NULL;
    struct reader r = {hdr + 4, hdr + 4 + 16, 0};
    read_encoded(&r, hdr[1], (uintptr_t)hdr);
    uint64_t count = read_encoded(&r, hdr[2], (uintptr_t)hdr);
    if (r.bad || count == 0) return NULL;
    const int32_t *table = (const int32_t *)r.p; /* pairs: initial location, FDE; from hdr */
    intptr_t rel = (intptr_t)(pc - (uintptr_t)hdr);
    size_t lo = 0, hi = count;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((intptr_t)table[2 * mid] <= rel) lo = mid;
        else hi = mid;
    }
    if ((intptr_t)table[2 * lo] > rel) return NULL;
    return hdr + table[2 * lo + 1];
}

/* ---- running the CFA program ---- */

enum { HOW_SAME, HOW_OFFSET, HOW_UNDEFINED, HOW_OTHER };

struct reg_rule {
    int8_t how;
    int64_t offset; /* HOW_OFFSET: saved at CFA + offset */
};

struct frame_state {
    uint64_t cfa_reg;
    int64_t cfa_offset;
    int cfa_expression;
    struct reg_rule rbp, ra;
};

#define DWARF_RBP 6
#define DWARF_RSP 7
#define DWARF_RA 16
#define REMEMBER_DEPTH 8

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int has_aug_data, signal_frame;
    const uint8_t *insns, *end;
};

static int parse_cie(const uint8_t *at, struct cie *c) {
    uint32_t length;
    memcpy(&length, at, 4);
    if (length == 0 || length == 0xffffffffu) return 0; /* 64-bit DWARF: not emitted for x86-64 */
    struct reader r = {at + 4, at + 4 + length, 0};
    if (read_fixed(&r, 4) != 0) return 0; /* CIE id */
    uint8_t version = read_u8(&r);
    if (version != 1 && version != 3 && version != 4) return 0;
    const char *aug = (const char *)r.p;
    size_t aug_len = strnlen(aug, (size_t)(r.end - r.p));
    r.p += aug_len + 1;
    if (version == 4) r.p += 2; /* address and segment selector sizes */
    c->code_align = read_uleb(&r);
    c->data_align = read_sleb(&r);
    c->ra_reg = version == 1 ? read_u8(&r) : read_uleb(&r);
    c->fde_enc = PE_ABSPTR;
    c->has_aug_data = aug[0] == 'z';
    c->signal_frame = 0;
    const uint8_t *aug_end = NULL;
    if (c->has_aug_data) {
        uint64_t n = read_uleb(&r);
        aug_end = r.p + n;
        for (const char *a = aug + 1; *a && !r.bad; a++) {
            if (*a == 'R') c->fde_enc = read_u8(&r);
            else if (*a == 'L') read_u8(&r);
            else if (*a == 'P') read_encoded(&r, read_u8(&r) & 0x7f, 0);
            else if (*a == 'S') c->signal_frame = 1;
            else break; /* unknown: the length lets us skip the rest */
        }
        r.p = aug_end;
    } else if (aug[0] != 0) {
        return 0; /* pre-"z" augmentations carry data we cannot size */
    }
    if (r.bad || r.p > r.end) return 0;
    c->insns = r.p;
    c->end = r.end;
    return 1;
}

/* Runs CFA instructions from `insns` while the location stays at or below `target`. Returns
 * 0 if an instruction cannot be followed. */
static int run_cfa_program(const uint8_t *insns, const uint8_t *end, const struct cie *c, uintptr_t loc,
                           uintptr_t target, struct frame_state *s, const struct frame_state *initial) {
    struct frame_state remembered[REMEMBER_DEPTH];
    int depth = 0;
    struct reader r = {insns, end, 0};
    while (r.p < r.end && !r.bad) {
        uint8_t op = read_u8(&r);
        uint64_t reg, delta = 0;
        int64_t off;
        struct reg_rule *rule;
        switch (op >> 6) {
        case 1: delta = op & 0x3f; goto advance;          /* DW_CFA_advance_loc */
        case 2:                                            /* DW_CFA_offset */
            reg = op & 0x3f;
            off = (int64_t)read_uleb(&r) * c->data_align;
            goto set_offset;
        case 3:                                            /* DW_CFA_restore */
            reg = op & 0x3f;
            goto restore;
        }
        switch (op) {
        case 0x00: break;                                            /* nop */
        case 0x01: loc = read_encoded(&r, c->fde_enc, 0); if (loc > target) return 1; break;
        case 0x02: delta = read_fixed(&r, 1); goto advance;
        case 0x03: delta = read_fixed(&r, 2); goto advance;
        case 0x04: delta = read_fixed(&r, 4); goto advance;
        case 0x05: reg = read_uleb(&r); off = (int64_t)read_uleb(&r) * c->data_align; goto set_offset;
        case 0x06: reg = read_uleb(&r); goto restore;
        case 0x07: reg = read_uleb(&r); if (reg == DWARF_RBP) s->rbp.how = HOW_UNDEFINED;
                   else if (reg == DWARF_RA) s->ra.how = HOW_UNDEFINED;
                   break;
        case 0x08: reg = read_uleb(&r); if (reg == DWARF_RBP) s->rbp.how = HOW_SAME;
                   else if (reg == DWARF_RA) s->ra.how = HOW_OTHER;
                   break;
        case 0x09: reg = read_uleb(&r); read_uleb(&r); goto set_other;  /* register */
        case 0x0a:                                                       /* remember_state */
            if (depth == REMEMBER_DEPTH) return 0;
            remembered[depth++] = *s;
            break;
        case 0x0b:                                                       /* restore_state */
            if (depth == 0) return 0;
            *s = remembered[--depth];
            break;
        case 0x0c: s->cfa_reg = read_uleb(&r); s->cfa_offset = (int64_t)read_uleb(&r); s->cfa_expression = 0; break;
        case 0x0d: s->cfa_reg = read_uleb(&r); s->cfa_expression = 0; break;
        case 0x0e: s->cfa_offset = (int64_t)read_uleb(&r); break;
        case 0x0f: r.p += read_uleb(&r); s->cfa_expression = 1; break;  /* def_cfa_expression */
        case 0x10: reg = read_uleb(&r); r.p += read_uleb(&r); goto set_other;  /* expression */
        case 0x11: reg = read_uleb(&r); off = read_sleb(&r) * c->data_align; goto set_offset;
        case 0x12: s->cfa_reg = read_uleb(&r); s->cfa_offset = read_sleb(&r) * c->data_align; s->cfa_expression = 0; break;
        case 0x13: s->cfa_offset = read_sleb(&r) * c->data_align; break;
        case 0x14: reg = read_uleb(&r); read_uleb(&r); goto set_other;  /* val_offset */
        case 0x15: reg = read_uleb(&r); read_sleb(&r); goto set_other;  /* val_offset_sf */
        case 0x16: reg = read_uleb(&r); r.p += read_uleb(&r); goto set_other;  /* val_expression */
        case 0x2e: read_uleb(&r); break;                                 /* GNU_args_size */
        case 0x2f: reg = read_uleb(&r); off = -(int64_t)read_uleb(&r) * c->data_align; goto set_offset;
        default: return 0;
        }
        continue;
    advance:
        loc += delta * c->code_align;
        if (loc > target) return 1;
        continue;
    set_offset:
        rule = reg == DWARF_RBP ? &s->rbp : reg == DWARF_RA ? &s->ra : NULL;
        if (rule) *rule = (struct reg_rule){HOW_OFFSET, off};
        continue;
    restore:
        if (!initial) return 0; /* DW_CFA_restore inside a CIE */
        if (reg == DWARF_RBP) s->rbp = initial->rbp;
        else if (reg == DWARF_RA) s->ra = initial->ra;
        continue;
    set_other:
        if (reg == DWARF_RBP) s->rbp.how = HOW_OTHER;
        else if (reg == DWARF_RA) s->ra.how = HOW_OTHER;
        continue;
    }
    return !r.bad;
}

/* ---- the rule ---- */

static uint64_t encode_rule(const struct frame_state *s) {
    if (s->ra.how == HOW_UNDEFINED) return LT_RULE_OUTERMOST;
    if (s->cfa_expression || s->ra.how != HOW_OFFSET || s->ra.offset != -8) return LT_RULE_UNSUPPORTED;
    if (s->cfa_reg != DWARF_RSP && s->cfa_reg != DWARF_RBP) return LT_RULE_UNSUPPORTED;
    if (s->cfa_offset != (int32_t)s->cfa_offset) return LT_RULE_UNSUPPORTED;
    uint64_t rule = s->cfa_reg == DWARF_RSP ? LT_RULE_CFA_SP : LT_RULE_CFA_BP;
    rule |= (uint64_t)(uint32_t)(int32_t)s->cfa_offset << LT_RULE_CFA_SHIFT;
    switch (s->rbp.how) {
    case HOW_SAME: break;
    case HOW_UNDEFINED: rule |= LT_RULE_BP_LOST; break;
    case HOW_OFFSET:
        if (s->rbp.offset != (int16_t)s->rbp.offset) return LT_RULE_UNSUPPORTED;
        rule |= LT_RULE_BP_SAVED | (uint64_t)(uint16_t)(int16_t)s->rbp.offset << LT_RULE_BP_SHIFT;
        break;
    default: return LT_RULE_UNSUPPORTED;
    }
    return rule;
}

uint64_t lt_cfi_rule(uintptr_t pc) {
    const uint8_t *fde = find_fde(pc);
    if (!fde) return LT_RULE_UNSUPPORTED;
    uint32_t length, cie_offset;
    memcpy(&length, fde, 4);
    if (length == 0 || length == 0xffffffffu) return LT_RULE_UNSUPPORTED;
    memcpy(&cie_offset, fde + 4, 4);
    if (cie_offset == 0) return LT_RULE_UNSUPPORTED; /* that is a CIE, not an FDE */
    struct cie c;
    if (!parse_cie(fde + 4 - cie_offset, &c) || c.ra_reg != DWARF_RA || c.signal_frame) return LT_RULE_UNSUPPORTED;
    struct reader r = {fde + 8, fde + 4 + length, 0};
    uintptr_t begin = read_encoded(&r, c.fde_enc, 0);
    uintptr_t range = read_encoded(&r, c.fde_enc & 0x0f, 0);
    if (r.bad || pc < begin || pc - begin >= range) return LT_RULE_UNSUPPORTED;
    if (c.has_aug_data) r.p += read_uleb(&r);
    if (r.bad || r.p > r.end) return LT_RULE_UNSUPPORTED;
    /* The return address has no rule until the CIE gives it one (x86-64 CIEs all do). */
    struct frame_state s = {.rbp = {HOW_SAME, 0}, .ra = {HOW_OTHER, 0}};
    if (!run_cfa_program(c.insns, c.end, &c, 0, UINTPTR_MAX, &s, NULL)) return LT_RULE_UNSUPPORTED;
    struct frame_state initial = s;
    if (!run_cfa_program(r.p, r.end, &c, begin, pc, &s, &initial)) return LT_RULE_UNSUPPORTED;
    return encode_rule(&s);
}
