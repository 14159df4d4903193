/* Byte-level BPE from tokenizer.json; the steps and their order are those of the Rust `tokenizers`
 * library (docs/qwen3-vl-moe.md section 2.3), which made the reference ids in ../shared/ref. */
#include "text/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include "core/error.h"
#include "io/file.h"

/* ------------------------------------------------------------------------------------------------
 * Data */

typedef struct {
    uint32_t piece_off, piece_len; /* model vocabulary string, in pool */
    uint32_t bytes_off, bytes_len; /* what the ByteLevel decoder makes of it, in pool */
    int32_t added;                 /* index into added[], or -1 */
    uint8_t in_vocab;
} tok_entry;

typedef struct {
    int32_t id;
    uint32_t off, len;             /* content, in pool */
    uint32_t bytes_off, bytes_len; /* what the ByteLevel decoder makes of it, in pool */
    uint8_t special, lstrip, rstrip, single_word, normalized;
} added_tok;

/* Added tokens grouped by first byte, longest first, so the first hit at a position is the
 * longest match there (the reference uses a leftmost-longest Aho-Corasick automaton). */
typedef struct {
    uint32_t *order;
    uint32_t start[257];
    size_t n;
} added_set;

typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS } split_behavior;

typedef enum { STEP_SPLIT, STEP_BYTELEVEL } step_kind;

typedef struct {
    step_kind kind;
    pcre2_code *re; /* NULL for ByteLevel with use_regex false */
    split_behavior behavior;
    int invert, add_prefix_space;
} pretok_step;

typedef struct {
    uint64_t key; /* left id << 32 | right id; PAIR_EMPTY when free */
    uint32_t rank;
    int32_t merged;
} pair_slot;
#define PAIR_EMPTY UINT64_MAX

struct modes_tokenizer {
    char *path;
    char *pool;
    size_t pool_len;
    tok_entry *ent;
    size_t n_ent; /* largest id + 1 */
    uint32_t *vix; /* vocabulary string -> id + 1 (0: free slot) */
    size_t vix_mask;
    pair_slot *pairs;
    size_t pair_mask;
    added_tok *added;
    size_t n_added;
    added_set set_raw, set_norm; /* matched before / after normalisation */
    int nfc;
    pretok_step *steps;
    size_t n_steps;
    int ignore_merges, fuse_unk;
    int32_t unk_id;
    int32_t byte_id[256];    /* initial BPE symbol of each byte, -1 when the vocabulary lacks it */
    uint16_t byte_cp[256];   /* GPT-2 bytes_to_unicode */
    int16_t cp_byte[0x144];  /* its inverse over U+0000..U+0143, -1 elsewhere */
    char *chat_template;
    char *cfg_tok[4];        /* token names from tokenizer_config.json, see cfg_keys */
};

static const char *const cfg_keys[4] = {"eos_token", "bos_token", "pad_token", "unk_token"};

/* ------------------------------------------------------------------------------------------------
 * Small helpers */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 4 / elem) return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static size_t table_size(size_t n) {
    size_t s = 64;
    while (s < 2 * n) s *= 2;
    return s;
}

static size_t put_utf8(char *o, uint32_t cp) {
    return (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)o);
}

/* Rust's char::is_whitespace (the White_Space property), used for lstrip/rstrip; also the set
 * that Oniguruma's \s matches, see translate_regex. */
static int is_white_space(int32_t c) {
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_word_char(int32_t c) {
    if (c == '_') return 1;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------------------------------
 * UTF-8 */

enum { U8_OK, U8_BAD, U8_SHORT };

/* Classifies the sequence at s[0..n): U8_OK (a whole valid character), U8_BAD (an invalid maximal
 * subpart), or U8_SHORT (a valid beginning cut off by the end of the data); *k gets its length.
 * Maximal subparts are what Python's and Rust's lossy decoders replace by one U+FFFD each. */
static int utf8_class(const unsigned char *s, size_t n, size_t *k) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    *k = 1;
    if (c < 0x80) return U8_OK;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
    } else return U8_BAD;
    size_t i = 1;
    while (i < need && i < n && s[i] >= lo && s[i] <= hi) {
        lo = 0x80;
        hi = 0xBF;
        i++;
    }
    *k = i;
    if (i == need) return U8_OK;
    return i == n ? U8_SHORT : U8_BAD;
}

/* Appends s[0..n) to out, invalid UTF-8 replaced by U+FFFD. Unless final, an incomplete character
 * at the end is left out; returns the bytes consumed. */
static size_t utf8_repair(const unsigned char *s, size_t n, int final, strbuf *out) {
    size_t i = 0, run = 0;
    if (!n) return 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t k;
        int c = utf8_class(s + i, n - i, &k);
        if (c == U8_OK) { i += k; continue; }
        if (c == U8_SHORT && !final) break;
        sb_append(out, (const char *)s + run, i - run);
        sb_append(out, "\xEF\xBF\xBD", 3);
        i += k;
        run = i;
    }
    sb_append(out, (const char *)s + run, i - run);
    return i;
}

/* Offset of the first byte that is not valid UTF-8, or n. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t k;
        if (utf8_class(s + i, n - i, &k) != U8_OK) return i;
        i += k;
    }
    return n;
}

/* Code point at s (valid UTF-8) and its length. */
static int32_t cp_at(const char *s, size_t n, size_t *len) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &cp);
    *len = k > 0 ? (size_t)k : 1;
    return cp;
}

/* Code point ending at s + end (valid UTF-8, end > 0). */
static int32_t cp_before(const char *s, size_t end, size_t *len) {
    size_t b = end - 1;
    while (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
    return cp_at(s + b, end - b, len);
}

/* ------------------------------------------------------------------------------------------------
 * Regex: the tokenizer.json patterns are written for Oniguruma, which the reference uses; PCRE2
 * differs in three places that matter here, fixed by rewriting the pattern before compiling:
 *  - \s: Oniguruma matches White_Space; PCRE2 also matches U+180E.
 *  - \w and \h: Oniguruma's \w includes marks and connectors, its \h is a hex digit (PCRE2:
 *    horizontal space).
 *  - \p{..}: PCRE2 10.42 knows Unicode 14, the reference and utf8proc (our NFC) know Unicode 15,
 *    so the code points Unicode 15.0 assigned are added to each property class. The table was
 *    made by comparing utf8proc 2.8's categories with PCRE2 10.42's \p{Cn} over all code points;
 *    no character assigned in both changed its major class. */

static const struct {
    char cat[3];
    uint32_t lo, hi;
} uni15_added[] = {
    {"Mc", 0xCF3, 0xCF3},       {"Mn", 0xECE, 0xECE},       {"Mn", 0x10EFD, 0x10EFF},   {"Lo", 0x1123F, 0x11240},
    {"Mn", 0x11241, 0x11241},   {"Po", 0x11B00, 0x11B09},   {"Mn", 0x11F00, 0x11F01},   {"Lo", 0x11F02, 0x11F02},
    {"Mc", 0x11F03, 0x11F03},   {"Lo", 0x11F04, 0x11F10},   {"Lo", 0x11F12, 0x11F33},   {"Mc", 0x11F34, 0x11F35},
    {"Mn", 0x11F36, 0x11F3A},   {"Mc", 0x11F3E, 0x11F3F},   {"Mn", 0x11F40, 0x11F40},   {"Mc", 0x11F41, 0x11F41},
    {"Mn", 0x11F42, 0x11F42},   {"Po", 0x11F43, 0x11F4F},   {"Nd", 0x11F50, 0x11F59},   {"Lo", 0x1342F, 0x1342F},
    {"Cf", 0x13439, 0x1343F},   {"Mn", 0x13440, 0x13440},   {"Lo", 0x13441, 0x13446},   {"Mn", 0x13447, 0x13455},
    {"Lo", 0x1B132, 0x1B132},   {"Lo", 0x1B155, 0x1B155},   {"No", 0x1D2C0, 0x1D2D3},   {"Ll", 0x1DF25, 0x1DF2A},
    {"Lm", 0x1E030, 0x1E06D},   {"Mn", 0x1E08F, 0x1E08F},   {"Lo", 0x1E4D0, 0x1E4EA},   {"Lm", 0x1E4EB, 0x1E4EB},
    {"Mn", 0x1E4EC, 0x1E4EF},   {"Nd", 0x1E4F0, 0x1E4F9},   {"So", 0x1F6DC, 0x1F6DC},   {"So", 0x1F774, 0x1F776},
    {"So", 0x1F77B, 0x1F77F},   {"So", 0x1F7D9, 0x1F7D9},   {"So", 0x1FA75, 0x1FA77},   {"So", 0x1FA87, 0x1FA88},
    {"So", 0x1FAAD, 0x1FAAF},   {"So", 0x1FABB, 0x1FABD},   {"So", 0x1FABF, 0x1FABF},   {"So", 0x1FACE, 0x1FACF},
    {"So", 0x1FADA, 0x1FADB},   {"So", 0x1FAE8, 0x1FAE8},   {"So", 0x1FAF7, 0x1FAF8},   {"Lo", 0x2B739, 0x2B739},
    {"Lo", 0x31350, 0x323AF},
};

#define WS_RANGES "\\t-\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
#define WORD_CLASSES "\\p{L}\\p{M}\\p{Nd}\\p{Pc}"

/* Appends the Unicode 15.0 additions to the property `name` (a category like "Lo" or a major
 * class like "L") as class ranges. */
static void add_uni15(strbuf *o, const char *name, size_t n) {
    if (n != 1 && n != 2) return;
    for (size_t i = 0; i < sizeof uni15_added / sizeof *uni15_added; i++) {
        if (uni15_added[i].cat[0] != name[0] || (n == 2 && uni15_added[i].cat[1] != name[1])) continue;
        sb_printf(o, "\\x{%x}-\\x{%x}", (unsigned)uni15_added[i].lo, (unsigned)uni15_added[i].hi);
    }
}

/* Rewrites one escape at p[i] ('\\'); returns the bytes of the pattern it used. */
static size_t translate_escape(const char *p, size_t i, size_t n, int in_class, strbuf *o) {
    char c = i + 1 < n ? p[i + 1] : 0;
    const char *cls = NULL;
    int neg = 0;
    switch (c) {
    case 's': cls = WS_RANGES; break;
    case 'S': cls = WS_RANGES; neg = 1; break;
    case 'w': cls = WORD_CLASSES; break;
    case 'W': cls = WORD_CLASSES; neg = 1; break;
    case 'h': cls = "0-9a-fA-F"; break;
    case 'H': cls = "0-9a-fA-F"; neg = 1; break;
    default: break;
    }
    if (cls && !(neg && in_class)) { /* a negated class cannot be written inside another class */
        if (!in_class) sb_puts(o, neg ? "[^" : "[");
        sb_puts(o, cls);
        if (!in_class) sb_puts(o, "]");
        return 2;
    }
    if ((c == 'p' || c == 'P') && i + 2 < n && p[i + 2] == '{') {
        const char *close = memchr(p + i + 3, '}', n - i - 3);
        if (close) {
            size_t nl = (size_t)(close - (p + i + 3)), used = nl + 4;
            int negp = c == 'P';
            if (negp && in_class) { sb_append(o, p + i, used); return used; }
            if (!in_class) sb_puts(o, negp ? "[^" : "[");
            sb_append(o, "\\p", 2);
            sb_append(o, p + i + 2, nl + 2);
            add_uni15(o, p + i + 3, nl);
            if (!in_class) sb_puts(o, "]");
            return used;
        }
    }
    size_t k = 2;
    if (i + 1 >= n) k = 1;
    sb_append(o, p + i, k);
    return k;
}

static void translate_regex(const char *p, size_t n, strbuf *o) {
    int depth = 0; /* class nesting: Oniguruma allows [a[b]] */
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (c == '\\') { i += translate_escape(p, i, n, depth > 0, o); continue; }
        if (c == '[') {
            if (depth > 0 && i + 1 < n && p[i + 1] == ':') { /* POSIX [:name:] */
                const char *e = strstr(p + i, ":]");
                size_t k = e ? (size_t)(e - (p + i)) + 2 : n - i;
                sb_append(o, p + i, k);
                i += k;
                continue;
            }
            depth++;
            sb_append(o, p + i, 1);
            i++;
            /* A ']' right after '[' or '[^' is a literal. */
            if (i < n && p[i] == '^') { sb_append(o, p + i, 1); i++; }
            if (i < n && p[i] == ']') { sb_append(o, "\\]", 2); i++; }
            continue;
        }
        if (c == ']' && depth > 0) depth--;
        sb_append(o, p + i, 1);
        i++;
    }
}

static int compile_regex(const char *what, const char *pat, size_t n, pcre2_code **out, modes_error *err) {
    strbuf o = {0};
    translate_regex(pat, n, &o);
    if (o.failed) { sb_free(&o); return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", what); }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(o.data ? o.data : ""), o.len, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    sb_free(&o);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        char shown[124]; /* the pattern on one line, shortened */
        size_t k = 0;
        for (; k < n && k < sizeof shown - 4; k++) shown[k] = (unsigned char)pat[k] < 0x20 ? '?' : pat[k];
        if (k < n) {
            memcpy(shown + k, "...", 3);
            k += 3;
        }
        shown[k] = 0;
        return modes_fail(err, MODES_E_INPUT, "%s: pre_tokenizer regex /%s/ does not compile: %s", what, shown,
                          (const char *)msg);
    }
    /* JIT is an optimisation only: where it is unavailable the interpreter runs. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return 0;
}

/* Escapes a literal Split pattern for PCRE2. */
static int compile_literal(const char *what, const char *s, size_t n, pcre2_code **out, modes_error *err) {
    strbuf o = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            sb_printf(&o, "\\x{%x}", c);
        else sb_append(&o, s + i, 1);
    }
    int rc = o.failed ? modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", what)
                      : compile_regex(what, o.data ? o.data : "", o.len, out, err);
    sb_free(&o);
    return rc;
}

/* ------------------------------------------------------------------------------------------------
 * Look-up tables */

static int vix_find(const modes_tokenizer *t, const char *s, size_t n) {
    size_t i = (size_t)hash_bytes(s, n) & t->vix_mask;
    for (;;) {
        uint32_t v = t->vix[i];
        if (!v) return -1;
        const tok_entry *e = &t->ent[v - 1];
        if (e->piece_len == n && !memcmp(t->pool + e->piece_off, s, n)) return (int)(v - 1);
        i = (i + 1) & t->vix_mask;
    }
}

/* Later duplicates win, as when the reference fills its hash map. */
static void vix_insert(modes_tokenizer *t, int32_t id) {
    const tok_entry *e = &t->ent[id];
    const char *s = t->pool + e->piece_off;
    size_t i = (size_t)hash_bytes(s, e->piece_len) & t->vix_mask;
    for (;;) {
        uint32_t v = t->vix[i];
        if (!v) break;
        const tok_entry *o = &t->ent[v - 1];
        if (o->piece_len == e->piece_len && !memcmp(t->pool + o->piece_off, s, e->piece_len)) break;
        i = (i + 1) & t->vix_mask;
    }
    t->vix[i] = (uint32_t)id + 1;
}

static size_t pair_slot_of(const modes_tokenizer *t, uint64_t key) {
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & t->pair_mask;
    while (t->pairs[i].key != PAIR_EMPTY && t->pairs[i].key != key) i = (i + 1) & t->pair_mask;
    return i;
}

static int pair_find(const modes_tokenizer *t, int32_t a, int32_t b, uint32_t *rank, int32_t *merged) {
    if (!t->pairs) return 0;
    const pair_slot *s = &t->pairs[pair_slot_of(t, (uint64_t)(uint32_t)a << 32 | (uint32_t)b)];
    if (s->key == PAIR_EMPTY) return 0;
    *rank = s->rank;
    *merged = s->merged;
    return 1;
}

static void byte_level_tables(modes_tokenizer *t) {
    int next = 256;
    for (int i = 0; i < 0x144; i++) t->cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->byte_cp[b] = (uint16_t)(printable ? b : next++);
        t->cp_byte[t->byte_cp[b]] = (int16_t)b;
    }
}

/* ------------------------------------------------------------------------------------------------
 * Loading */

typedef struct {
    modes_tokenizer *t;
    const char *what; /* the tokenizer.json path */
    strbuf pool;
    char *tmp; /* 2 * TOK_MAX_TOKEN_BYTES of scratch */
    modes_error *err;
} loader;

static int pool_add(loader *L, const char *s, size_t n, uint32_t *off) {
    if (L->pool.len > UINT32_MAX - n - 1) return modes_fail(L->err, MODES_E_INPUT, "%s: strings too large", L->what);
    *off = (uint32_t)L->pool.len;
    sb_append(&L->pool, s, n);
    if (L->pool.failed) return modes_fail(L->err, MODES_E_INTERNAL, "%s: out of memory", L->what);
    L->t->pool = L->pool.data; /* look-ups during loading read the strings */
    L->t->pool_len = L->pool.len;
    return 0;
}

static int check_id(loader *L, const json_node *v, const char *where, int64_t *id) {
    if (!json_is_int(v) || v->u.num < 0 || v->u.num >= (double)TOK_MAX_ID)
        return modes_fail(L->err, MODES_E_INPUT, "%s: %s: id must be an integer in [0, %lld)", L->what, where,
                          (long long)TOK_MAX_ID);
    *id = (int64_t)v->u.num;
    return 0;
}

static int max_id(loader *L, const json_node *vocab, const json_node *added, size_t *n_ent) {
    int64_t mx = -1, id = 0;
    for (size_t i = 0; i < vocab->n; i++) {
        if (check_id(L, json_val_at(vocab, i), "model.vocab", &id)) return MODES_E_INPUT;
        if (id > mx) mx = id;
    }
    for (size_t i = 0; added && i < added->n; i++) {
        const json_node *a = json_at(added, i);
        if (!a || a->type != JSON_OBJECT)
            return modes_fail(L->err, MODES_E_INPUT, "%s: added_tokens[%zu] is not an object", L->what, i);
        if (check_id(L, json_get(a, "id"), "added_tokens", &id)) return MODES_E_INPUT;
        if (id > mx) mx = id;
    }
    *n_ent = (size_t)(mx + 1);
    return 0;
}

/* What the ByteLevel decoder makes of a token string (added tokens included, as the reference
 * decodes them with the same decoder): each character mapped back to its byte, or the string's
 * own bytes when some character is outside the byte alphabet. The string is at pool + off. */
static int decoded_bytes(loader *L, uint32_t off, size_t n, uint32_t *bytes_off, uint32_t *bytes_len) {
    const char *s = L->pool.data + off;
    char *tmp = L->tmp;
    size_t m = 0, i = 0;
    while (i < n) {
        size_t k;
        int32_t cp = cp_at(s + i, n - i, &k);
        if (cp < 0 || cp >= 0x144 || L->t->cp_byte[cp] < 0) break;
        tmp[m++] = (char)L->t->cp_byte[cp];
        i += k;
    }
    if (i < n || (m == n && !memcmp(tmp, s, n))) {
        *bytes_off = off;
        *bytes_len = (uint32_t)n;
        return 0;
    }
    *bytes_len = (uint32_t)m;
    return pool_add(L, tmp, m, bytes_off);
}

static int load_vocab(loader *L, const json_node *vocab) {
    modes_tokenizer *t = L->t;
    for (size_t i = 0; i < vocab->n; i++) {
        const json_node *k = json_key_at(vocab, i);
        int32_t id = (int32_t)json_val_at(vocab, i)->u.num;
        if (k->n > TOK_MAX_TOKEN_BYTES)
            return modes_fail(L->err, MODES_E_INPUT, "%s: model.vocab entry %d is longer than %zu bytes", L->what, id,
                              TOK_MAX_TOKEN_BYTES);
        if (k->n == 0)
            return modes_fail(L->err, MODES_E_INPUT, "%s: model.vocab has an empty string (id %d)", L->what, id);
        tok_entry *e = &t->ent[id];
        if (pool_add(L, k->u.str, k->n, &e->piece_off)) return MODES_E_INTERNAL;
        e->piece_len = (uint32_t)k->n;
        e->in_vocab = 1;
        if (decoded_bytes(L, e->piece_off, k->n, &e->bytes_off, &e->bytes_len)) return MODES_E_INTERNAL;
    }
    size_t size = table_size(vocab->n);
    t->vix = calloc(size, sizeof *t->vix);
    if (!t->vix) return modes_fail(L->err, MODES_E_INTERNAL, "%s: out of memory", L->what);
    t->vix_mask = size - 1;
    for (size_t i = 0; i < vocab->n; i++) {
        int32_t id = (int32_t)json_val_at(vocab, i)->u.num;
        vix_insert(t, id);
    }
    return 0;
}

static int get_flag(loader *L, const json_node *a, const char *key, int def, uint8_t *out) {
    int v;
    if (json_get_bool(a, key, def, &v, L->what, L->err)) return MODES_E_INPUT;
    *out = (uint8_t)v;
    return 0;
}

static int load_added(loader *L, const json_node *added) {
    modes_tokenizer *t = L->t;
    if (!added || added->n == 0) return 0;
    if (added->n > TOK_MAX_ADDED)
        return modes_fail(L->err, MODES_E_INPUT, "%s: %zu added tokens, over the limit of %zu", L->what, added->n,
                          TOK_MAX_ADDED);
    t->added = calloc(added->n, sizeof *t->added);
    if (!t->added) return modes_fail(L->err, MODES_E_INTERNAL, "%s: out of memory", L->what);
    for (size_t i = 0; i < added->n; i++) {
        const json_node *a = json_at(added, i), *c = json_get(a, "content");
        added_tok *x = &t->added[t->n_added];
        x->id = (int32_t)json_get(a, "id")->u.num;
        if (!c || c->type != JSON_STRING || c->n == 0 || c->n > TOK_MAX_TOKEN_BYTES)
            return modes_fail(L->err, MODES_E_INPUT, "%s: added_tokens[%zu] (id %d) needs a non-empty \"content\" string",
                              L->what, i, x->id);
        if (get_flag(L, a, "special", 0, &x->special) || get_flag(L, a, "lstrip", 0, &x->lstrip) ||
            get_flag(L, a, "rstrip", 0, &x->rstrip) || get_flag(L, a, "single_word", 0, &x->single_word) ||
            get_flag(L, a, "normalized", !x->special, &x->normalized))
            return MODES_E_INPUT;
        if (pool_add(L, c->u.str, c->n, &x->off) || decoded_bytes(L, x->off, c->n, &x->bytes_off, &x->bytes_len))
            return MODES_E_INTERNAL;
        x->len = (uint32_t)c->n;
        t->ent[x->id].added = (int32_t)t->n_added;
        t->n_added++;
    }
    return 0;
}

/* The sort key of an added token: first byte, then longest first, then id (then the original order,
 * so the sort is stable). qsort has no context argument in C17, so the keys are copied out. */
typedef struct {
    uint32_t first, len, idx;
    int32_t id;
} added_key;

static int cmp_added_key(const void *a, const void *b) {
    const added_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* O(n log n): a file may hold up to TOK_MAX_ADDED added tokens. */
static int sort_set(uint32_t *v, size_t n, const modes_tokenizer *t) {
    added_key *k = malloc((n ? n : 1) * sizeof *k);
    if (!k) return -1;
    for (size_t i = 0; i < n; i++) {
        const added_tok *a = &t->added[v[i]];
        k[i] = (added_key){(unsigned char)t->pool[a->off], a->len, v[i], a->id};
    }
    qsort(k, n, sizeof *k, cmp_added_key);
    for (size_t i = 0; i < n; i++) v[i] = k[i].idx;
    free(k);
    return 0;
}

static int build_set(loader *L, added_set *s, int normalized) {
    modes_tokenizer *t = L->t;
    for (size_t i = 0; i < t->n_added; i++) s->n += t->added[i].normalized == normalized;
    if (!s->n) return 0;
    s->order = malloc(s->n * sizeof *s->order);
    if (!s->order) return modes_fail(L->err, MODES_E_INTERNAL, "%s: out of memory", L->what);
    size_t k = 0;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].normalized == normalized) s->order[k++] = (uint32_t)i;
    if (sort_set(s->order, s->n, t)) return modes_fail(L->err, MODES_E_INTERNAL, "%s: out of memory", L->what);
    size_t j = 0;
    for (int b = 0; b <= 256; b++) {
        while (j < s->n && (unsigned char)t->pool[t->added[s->order[j]].off] < b) j++;
        s->start[b] = (uint32_t)j;
    }
    return 0;
}

static int merge_parts(loader *L, const json_node *m, size_t i, const char **a, size_t *na, const char **b,
                       size_t *nb) {
    if (m && m->type == JSON_STRING) {
        const char *sp = memchr(m->u.str, ' ', m->n);
        if (sp && !memchr(sp + 1, ' ', m->n - (size_t)(sp + 1 - m->u.str))) {
            *a = m->u.str;
            *na = (size_t)(sp - m->u.str);
            *b = sp + 1;
            *nb = m->n - *na - 1;
            return 0;
        }
    } else if (m && m->type == JSON_ARRAY && m->n == 2 && json_at(m, 0)->type == JSON_STRING &&
               json_at(m, 1)->type == JSON_STRING) {
        *a = json_at(m, 0)->u.str;
        *na = json_at(m, 0)->n;
        *b = json_at(m, 1)->u.str;
        *nb = json_at(m, 1)->n;
        return 0;
    }
    return modes_fail(L->err, MODES_E_INPUT, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", L->what, i);
}

static int merge_token(loader *L, size_t i, const char *s, size_t n, int32_t *id) {
    *id = vix_find(L->t, s, n);
    if (*id < 0)
        return modes_fail(L->err, MODES_E_INPUT, "%s: model.merges[%zu] refers to \"%.*s\", which is not in model.vocab",
                          L->what, i, (int)(n > 60 ? 60 : n), s);
    return 0;
}

static int load_merges(loader *L, const json_node *merges) {
    modes_tokenizer *t = L->t;
    if (!merges || merges->type == JSON_NULL || merges->n == 0) return 0;
    if (merges->type != JSON_ARRAY) return modes_fail(L->err, MODES_E_INPUT, "%s: model.merges is not an array", L->what);
    if (merges->n > TOK_MAX_MERGES)
        return modes_fail(L->err, MODES_E_INPUT, "%s: %zu merges, over the limit of %zu", L->what, merges->n,
                          TOK_MAX_MERGES);
    size_t size = table_size(merges->n);
    t->pairs = malloc(size * sizeof *t->pairs);
    if (!t->pairs) return modes_fail(L->err, MODES_E_INTERNAL, "%s: out of memory", L->what);
    for (size_t i = 0; i < size; i++) t->pairs[i].key = PAIR_EMPTY;
    t->pair_mask = size - 1;
    char *cat = L->tmp;
    for (size_t i = 0; i < merges->n; i++) {
        const char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        int32_t ia, ib, im;
        if (merge_parts(L, json_at(merges, i), i, &a, &na, &b, &nb) || merge_token(L, i, a, na, &ia) ||
            merge_token(L, i, b, nb, &ib))
            return MODES_E_INPUT;
        memcpy(cat, a, na);
        memcpy(cat + na, b, nb);
        if (merge_token(L, i, cat, na + nb, &im)) return MODES_E_INPUT;
        uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
        pair_slot *s = &t->pairs[pair_slot_of(t, key)];
        s->key = key;
        s->rank = (uint32_t)i;
        s->merged = im;
    }
    return 0;
}

static int is_empty_str(const json_node *v) {
    return !v || v->type == JSON_NULL || (v->type == JSON_STRING && v->n == 0);
}

static int load_model(loader *L, const json_node *root) {
    modes_tokenizer *t = L->t;
    const json_node *m = json_get(root, "model");
    if (!m || m->type != JSON_OBJECT) return modes_fail(L->err, MODES_E_INPUT, "%s: no \"model\" object", L->what);
    const json_node *type = json_get(m, "type");
    if (type && !(type->type == JSON_STRING && !strcmp(type->u.str, "BPE")))
        return modes_fail(L->err, MODES_E_INPUT, "%s: model type \"%s\" is not supported (only BPE)", L->what,
                          type->type == JSON_STRING ? type->u.str : json_type_name(type->type));
    const json_node *vocab = json_get(m, "vocab");
    if (!vocab || vocab->type != JSON_OBJECT)
        return modes_fail(L->err, MODES_E_INPUT, "%s: model.vocab is missing or not an object", L->what);
    if (vocab->n > TOK_MAX_VOCAB)
        return modes_fail(L->err, MODES_E_INPUT, "%s: %zu vocabulary entries, over the limit of %zu", L->what, vocab->n,
                          TOK_MAX_VOCAB);
    const json_node *dropout = json_get(m, "dropout"), *byte_fallback = json_get(m, "byte_fallback");
    if (dropout && dropout->type != JSON_NULL && !(dropout->type == JSON_NUMBER && dropout->u.num == 0))
        return modes_fail(L->err, MODES_E_INPUT, "%s: BPE dropout is not supported", L->what);
    if (byte_fallback && byte_fallback->type == JSON_TRUE)
        return modes_fail(L->err, MODES_E_INPUT, "%s: BPE byte_fallback is not supported (only byte-level BPE)", L->what);
    if (!is_empty_str(json_get(m, "continuing_subword_prefix")) || !is_empty_str(json_get(m, "end_of_word_suffix")))
        return modes_fail(L->err, MODES_E_INPUT,
                          "%s: BPE continuing_subword_prefix / end_of_word_suffix are not supported", L->what);
    if (json_get_bool(m, "ignore_merges", 0, &t->ignore_merges, L->what, L->err) ||
        json_get_bool(m, "fuse_unk", 0, &t->fuse_unk, L->what, L->err))
        return MODES_E_INPUT;
    const json_node *added = json_get(root, "added_tokens");
    if (added && added->type != JSON_NULL && added->type != JSON_ARRAY)
        return modes_fail(L->err, MODES_E_INPUT, "%s: added_tokens is not an array", L->what);
    if (added && added->type == JSON_NULL) added = NULL;
    if (vocab->n == 0) return modes_fail(L->err, MODES_E_INPUT, "%s: model.vocab is empty, so no text can be encoded", L->what);
    if (max_id(L, vocab, added, &t->n_ent)) return MODES_E_INPUT;
    if (t->n_ent == 0) return modes_fail(L->err, MODES_E_INPUT, "%s: the vocabulary is empty", L->what);
    t->ent = calloc(t->n_ent, sizeof *t->ent);
    if (!t->ent) return modes_fail(L->err, MODES_E_INTERNAL, "%s: out of memory", L->what);
    for (size_t i = 0; i < t->n_ent; i++) t->ent[i].added = -1;
    int rc;
    if ((rc = load_vocab(L, vocab)) || (rc = load_added(L, added)) || (rc = load_merges(L, json_get(m, "merges"))))
        return rc;
    t->unk_id = -1;
    const json_node *unk = json_get(m, "unk_token");
    if (unk && unk->type == JSON_STRING) {
        t->unk_id = vix_find(t, unk->u.str, unk->n);
        if (t->unk_id < 0)
            return modes_fail(L->err, MODES_E_INPUT, "%s: unk_token \"%.*s\" is not in model.vocab", L->what,
                              (int)(unk->n > 60 ? 60 : unk->n), unk->u.str);
    }
    return 0;
}

static const char *type_of(const json_node *o) {
    const json_node *ty = json_get(o, "type");
    return ty && ty->type == JSON_STRING ? ty->u.str : NULL;
}

static int load_normalizer(loader *L, const json_node *n) {
    if (!n || n->type == JSON_NULL) return 0;
    const char *ty = type_of(n);
    if (ty && !strcmp(ty, "NFC")) { L->t->nfc = 1; return 0; }
    if (ty && !strcmp(ty, "Sequence")) {
        const json_node *list = json_get(n, "normalizers");
        if (!list || list->type != JSON_ARRAY)
            return modes_fail(L->err, MODES_E_INPUT, "%s: normalizer Sequence has no \"normalizers\" array", L->what);
        for (size_t i = 0; i < list->n; i++)
            if (load_normalizer(L, json_at(list, i))) return MODES_E_INPUT;
        return 0;
    }
    return modes_fail(L->err, MODES_E_INPUT, "%s: normalizer type \"%s\" is not supported (only NFC)", L->what,
                      ty ? ty : "?");
}

static int add_step(loader *L, pretok_step s) {
    modes_tokenizer *t = L->t;
    if (t->n_steps >= 16) {
        if (s.re) pcre2_code_free(s.re);
        return modes_fail(L->err, MODES_E_INPUT, "%s: more than 16 pre_tokenizer steps", L->what);
    }
    pretok_step *v = realloc(t->steps, (t->n_steps + 1) * sizeof *v);
    if (!v) {
        if (s.re) pcre2_code_free(s.re);
        return modes_fail(L->err, MODES_E_INTERNAL, "%s: out of memory", L->what);
    }
    t->steps = v;
    t->steps[t->n_steps++] = s;
    return 0;
}

static int parse_behavior(loader *L, const json_node *b, split_behavior *out) {
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; b && b->type == JSON_STRING && i < 5; i++)
        if (!strcmp(b->u.str, names[i])) { *out = (split_behavior)i; return 0; }
    return modes_fail(L->err, MODES_E_INPUT, "%s: Split behavior %s is not one of Removed, Isolated, MergedWithPrevious, "
                      "MergedWithNext, Contiguous", L->what, b && b->type == JSON_STRING ? b->u.str : "(missing)");
}

static int load_split(loader *L, const json_node *n) {
    pretok_step s = {.kind = STEP_SPLIT};
    const json_node *pat = json_get(n, "pattern"), *rx = json_get(pat, "Regex"), *str = json_get(pat, "String");
    int inv;
    if (parse_behavior(L, json_get(n, "behavior"), &s.behavior) ||
        json_get_bool(n, "invert", 0, &inv, L->what, L->err))
        return MODES_E_INPUT;
    s.invert = inv;
    int rc;
    if (rx && rx->type == JSON_STRING) rc = compile_regex(L->what, rx->u.str, rx->n, &s.re, L->err);
    else if (str && str->type == JSON_STRING) rc = compile_literal(L->what, str->u.str, str->n, &s.re, L->err);
    else
        return modes_fail(L->err, MODES_E_INPUT, "%s: Split pre_tokenizer needs pattern {\"Regex\": ...} or {\"String\": ...}",
                          L->what);
    return rc ? rc : add_step(L, s);
}

/* The GPT-2 pattern the ByteLevel pre-tokenizer applies when use_regex is true. */
static const char gpt2_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int load_byte_level(loader *L, const json_node *n, int *seen) {
    pretok_step s = {.kind = STEP_BYTELEVEL, .behavior = SPLIT_ISOLATED};
    int use_regex;
    if (json_get_bool(n, "add_prefix_space", 1, &s.add_prefix_space, L->what, L->err) ||
        json_get_bool(n, "use_regex", 1, &use_regex, L->what, L->err))
        return MODES_E_INPUT;
    int rc = use_regex ? compile_regex(L->what, gpt2_pattern, sizeof gpt2_pattern - 1, &s.re, L->err) : 0;
    if (rc) return rc;
    *seen = 1;
    return add_step(L, s);
}

static int load_pretok(loader *L, const json_node *n, int *seen_byte_level) {
    if (!n || n->type == JSON_NULL) return 0;
    const char *ty = type_of(n);
    if (ty && !strcmp(ty, "Sequence")) {
        const json_node *list = json_get(n, "pretokenizers");
        if (!list || list->type != JSON_ARRAY)
            return modes_fail(L->err, MODES_E_INPUT, "%s: pre_tokenizer Sequence has no \"pretokenizers\" array", L->what);
        for (size_t i = 0; i < list->n; i++) {
            int rc = load_pretok(L, json_at(list, i), seen_byte_level);
            if (rc) return rc;
        }
        return 0;
    }
    if (ty && !strcmp(ty, "Split")) return load_split(L, n);
    if (ty && !strcmp(ty, "ByteLevel")) return load_byte_level(L, n, seen_byte_level);
    return modes_fail(L->err, MODES_E_INPUT, "%s: pre_tokenizer type \"%s\" is not supported (Split, ByteLevel, Sequence)",
                      L->what, ty ? ty : "?");
}

static int check_decoder(loader *L, const json_node *d) {
    const char *ty = d && d->type == JSON_OBJECT ? type_of(d) : NULL;
    if (ty && !strcmp(ty, "ByteLevel")) return 0;
    if (ty && !strcmp(ty, "Sequence")) {
        const json_node *list = json_get(d, "decoders");
        for (size_t i = 0; list && list->type == JSON_ARRAY && i < list->n; i++)
            if (check_decoder(L, json_at(list, i))) return MODES_E_INPUT;
        if (list && list->type == JSON_ARRAY && list->n) return 0;
    }
    return modes_fail(L->err, MODES_E_INPUT, "%s: decoder %s%s%s is not supported (only ByteLevel)", L->what,
                      ty ? "type \"" : "", ty ? ty : "missing", ty ? "\"" : "");
}

static int load_pipeline(loader *L, const json_node *root) {
    int byte_level = 0, rc;
    if ((rc = load_normalizer(L, json_get(root, "normalizer"))) ||
        (rc = load_pretok(L, json_get(root, "pre_tokenizer"), &byte_level)) ||
        (rc = check_decoder(L, json_get(root, "decoder"))))
        return rc;
    if (!byte_level)
        return modes_fail(L->err, MODES_E_INPUT, "%s: pre_tokenizer has no ByteLevel step; only byte-level BPE is supported",
                          L->what);
    return 0;
}

static void finish_tables(modes_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char s[4];
        size_t n = put_utf8(s, t->byte_cp[b]);
        t->byte_id[b] = vix_find(t, s, n);
    }
}

/* Byte-level BPE starts every text from one symbol per byte: a byte the vocabulary lacks would be
 * dropped from the ids without a word (or become unk_token, when there is one). */
static int check_byte_coverage(const modes_tokenizer *t, modes_error *err) {
    int missing = 0, first = -1;
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0 && missing++ == 0) first = b;
    if (!missing || t->unk_id >= 0) return 0;
    return modes_fail(err, MODES_E_INPUT,
                      "%s: model.vocab lacks the byte-level tokens of %d of the 256 bytes (byte 0x%02x first) and has no "
                      "unk_token, so text holding them cannot be encoded",
                      t->path, missing, first);
}

static int parse_json_file(const char *path, json_doc **doc, modes_error *err) {
    char *text;
    size_t len;
    int rc = read_file(path, TOK_MAX_FILE_BYTES, &text, &len, err);
    if (rc) return rc;
    json_limits lim = {.max_bytes = TOK_MAX_FILE_BYTES, .max_depth = 64, .max_nodes = (size_t)48 << 20};
    rc = json_parse(text, len, &lim, path, doc, err);
    free(text);
    if (!rc && json_root(*doc)->type != JSON_OBJECT) {
        json_free(*doc);
        *doc = NULL;
        return modes_fail(err, MODES_E_INPUT, "%s: the top level is not a JSON object", path);
    }
    return rc;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* A special-token entry of tokenizer_config.json: a string, or an object with "content". */
static const json_node *token_name(const json_node *v) {
    if (v && v->type == JSON_OBJECT) v = json_get(v, "content");
    return v && v->type == JSON_STRING ? v : NULL;
}

static const json_node *template_text(const json_node *ct) {
    if (ct && ct->type == JSON_ARRAY) { /* named templates: take "default" */
        for (size_t i = 0; i < ct->n; i++) {
            const json_node *e = json_at(ct, i), *name = json_get(e, "name");
            if (name && name->type == JSON_STRING && !strcmp(name->u.str, "default")) return json_get(e, "template");
        }
        return ct->n ? json_get(json_at(ct, 0), "template") : NULL;
    }
    return ct;
}

static int load_config(modes_tokenizer *t, const char *dir, modes_error *err) {
    char *cfg = path_join(dir, "tokenizer_config.json"), *jinja = path_join(dir, "chat_template.jinja");
    int rc = 0;
    if (!cfg || !jinja) { rc = modes_fail(err, MODES_E_INTERNAL, "out of memory"); goto done; }
    FILE *f = fopen(cfg, "rb");
    if (f) {
        fclose(f);
        json_doc *doc;
        if ((rc = parse_json_file(cfg, &doc, err))) goto done;
        const json_node *r = json_root(doc), *ct = template_text(json_get(r, "chat_template"));
        if (ct && ct->type == JSON_STRING && !(t->chat_template = dup_n(ct->u.str, ct->n))) rc = MODES_E_INTERNAL;
        for (int i = 0; i < 4 && !rc; i++) {
            const json_node *v = token_name(json_get(r, cfg_keys[i]));
            if (v && !(t->cfg_tok[i] = dup_n(v->u.str, v->n))) rc = MODES_E_INTERNAL;
        }
        json_free(doc);
        if (rc) { rc = modes_fail(err, rc, "%s: out of memory", cfg); goto done; }
    }
    if (!t->chat_template && (f = fopen(jinja, "rb"))) {
        fclose(f);
        size_t n;
        rc = read_file(jinja, TOK_MAX_FILE_BYTES, &t->chat_template, &n, err);
    }
done:
    free(cfg);
    free(jinja);
    return rc;
}

static int resolve_paths(const char *path, char **json_path, char **dir) {
    if (path_is_dir(path)) {
        *json_path = path_join(path, "tokenizer.json");
        *dir = *json_path ? path_dirname(*json_path) : NULL;
    } else {
        *json_path = dup_n(path, strlen(path));
        *dir = path_dirname(path);
    }
    return *json_path && *dir ? 0 : -1;
}

int tok_load(const char *path, modes_tokenizer **out, modes_error *err) {
    *out = NULL;
    modes_tokenizer *t = calloc(1, sizeof *t);
    char *dir = NULL;
    if (!t || resolve_paths(path, &t->path, &dir)) {
        free(dir);
        tok_free(t);
        return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", path);
    }
    byte_level_tables(t);
    json_doc *doc = NULL;
    loader L = {.t = t, .what = t->path, .err = err, .tmp = malloc(2 * TOK_MAX_TOKEN_BYTES)};
    int rc = L.tmp ? parse_json_file(t->path, &doc, err) : modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", path);
    if (!rc) rc = load_model(&L, json_root(doc));
    t->pool = L.pool.data; /* owned by t from here on, even on failure */
    t->pool_len = L.pool.len;
    free(L.tmp);
    if (!rc) rc = load_pipeline(&L, json_root(doc));
    if (!rc) rc = build_set(&L, &t->set_raw, 0);
    if (!rc) rc = build_set(&L, &t->set_norm, 1);
    json_free(doc);
    if (!rc) {
        finish_tables(t);
        rc = check_byte_coverage(t, err);
        if (!rc) rc = load_config(t, dir, err);
    }
    free(dir);
    if (rc) {
        tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void tok_free(modes_tokenizer *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_steps; i++) pcre2_code_free(t->steps[i].re);
    free(t->steps);
    free(t->set_raw.order);
    free(t->set_norm.order);
    free(t->added);
    free(t->pairs);
    free(t->vix);
    free(t->ent);
    free(t->pool);
    free(t->chat_template);
    for (int i = 0; i < 4; i++) free(t->cfg_tok[i]);
    free(t->path);
    free(t);
}

/* ------------------------------------------------------------------------------------------------
 * Encoding */

typedef struct {
    size_t off, len;
} span;

typedef struct {
    size_t off, len;
    int match;
} seg;

typedef struct {
    int32_t id;
    int32_t prev, next;
    int alive;
} bpe_sym;

typedef struct {
    uint32_t rank, pos;
    int32_t merged;
} bpe_cand;

typedef struct {
    const modes_tokenizer *t;
    modes_error *err;
    int32_t *ids;
    size_t n, cap;
    char *work; /* the text the pre-tokenizer pieces point into */
    size_t work_len, work_cap;
    char *work2;
    size_t work2_cap;
    span *pcs, *pcs2;
    size_t npcs, pcs_cap, npcs2, pcs2_cap;
    seg *segs;
    size_t nsegs, segs_cap;
    bpe_sym *sym;
    size_t sym_cap;
    bpe_cand *heap;
    size_t nheap, heap_cap;
    pcre2_match_data *md;
    int no_special; /* special added tokens written in the text are encoded as plain text */
} encoder;

static int oom(encoder *e) {
    return modes_fail(e->err, MODES_E_INTERNAL, "%s: out of memory while encoding", e->t->path);
}

static int emit(encoder *e, int32_t id) {
    if (grow((void **)&e->ids, &e->cap, e->n + 1, sizeof *e->ids)) return oom(e);
    e->ids[e->n++] = id;
    return 0;
}

static int heap_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(encoder *e, bpe_cand c) {
    if (grow((void **)&e->heap, &e->heap_cap, e->nheap + 1, sizeof *e->heap)) return oom(e);
    size_t i = e->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&c, &e->heap[p])) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = c;
    return 0;
}

static bpe_cand heap_pop(encoder *e) {
    bpe_cand top = e->heap[0], last = e->heap[--e->nheap];
    size_t i = 0, n = e->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!heap_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

static int push_pair(encoder *e, int32_t pos) {
    const bpe_sym *a = &e->sym[pos];
    if (a->next < 0) return 0;
    uint32_t rank;
    int32_t merged;
    if (!pair_find(e->t, a->id, e->sym[a->next].id, &rank, &merged)) return 0;
    return heap_push(e, (bpe_cand){rank, (uint32_t)pos, merged});
}

/* Initial symbols: one per byte, through the GPT-2 byte alphabet. */
static int bpe_symbols(encoder *e, const unsigned char *s, size_t n, size_t *count) {
    if (grow((void **)&e->sym, &e->sym_cap, n, sizeof *e->sym)) return oom(e);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = e->t->byte_id[s[i]];
        if (id < 0) {
            /* Without a byte symbol the reference emits unk (fused when asked) or drops the byte. */
            if (e->t->unk_id < 0 || (e->t->fuse_unk && m && e->sym[m - 1].id == e->t->unk_id)) continue;
            id = e->t->unk_id;
        }
        e->sym[m] = (bpe_sym){id, (int32_t)m - 1, (int32_t)m + 1, 1};
        m++;
    }
    if (m) e->sym[m - 1].next = -1;
    *count = m;
    return 0;
}

/* Merges the lowest-ranked adjacent pair first (leftmost among equals), as the reference's
 * priority queue does; stale queue entries are recognised because the pair no longer merges to
 * the same token. O(n log n) in the word length, so very long words stay cheap. */
static int bpe_merge_all(encoder *e, size_t m) {
    e->nheap = 0;
    for (size_t i = 0; i + 1 < m; i++)
        if (push_pair(e, (int32_t)i)) return MODES_E_INTERNAL;
    while (e->nheap) {
        bpe_cand c = heap_pop(e);
        bpe_sym *a = &e->sym[c.pos];
        if (!a->alive || a->next < 0) continue;
        bpe_sym *b = &e->sym[a->next];
        uint32_t rank;
        int32_t merged;
        if (!pair_find(e->t, a->id, b->id, &rank, &merged) || merged != c.merged) continue;
        a->id = merged;
        b->alive = 0;
        a->next = b->next;
        if (b->next >= 0) e->sym[b->next].prev = (int32_t)c.pos;
        if ((a->prev >= 0 && push_pair(e, a->prev)) || push_pair(e, (int32_t)c.pos)) return MODES_E_INTERNAL;
    }
    return 0;
}

static int bpe_word(encoder *e, const unsigned char *s, size_t n) {
    const modes_tokenizer *t = e->t;
    if (n == 1 && t->byte_id[s[0]] >= 0) return emit(e, t->byte_id[s[0]]);
    if (t->ignore_merges && n <= TOK_MAX_TOKEN_BYTES) {
        /* Byte-alphabet characters are below U+0144, so at most 2 bytes each. */
        if (grow((void **)&e->work2, &e->work2_cap, 2 * n, 1)) return oom(e);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += put_utf8(e->work2 + k, t->byte_cp[s[i]]);
        int id = vix_find(t, e->work2, k);
        if (id >= 0) return emit(e, id);
    }
    size_t m = 0;
    if (bpe_symbols(e, s, n, &m) || bpe_merge_all(e, m)) return MODES_E_INTERNAL;
    for (size_t i = 0; i < m; i++)
        if (e->sym[i].alive && emit(e, e->sym[i].id)) return MODES_E_INTERNAL;
    return 0;
}

static int regex_error(encoder *e, int rc) {
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return modes_fail(e->err, MODES_E_INPUT, "%s: pre_tokenizer regex failed on the input: %s", e->t->path,
                      (const char *)msg);
}

static int add_seg(encoder *e, size_t off, size_t len, int match) {
    if (!len) return 0;
    if (grow((void **)&e->segs, &e->segs_cap, e->nsegs + 1, sizeof *e->segs)) return oom(e);
    e->segs[e->nsegs++] = (seg){off, len, match};
    return 0;
}

/* Cuts one piece into matches and the gaps between them (empty matches are ignored, as they
 * make no piece in the reference either). */
static int find_segments(encoder *e, const pcre2_code *re, span p) {
    const char *s = e->work + p.off;
    size_t start = 0, prev = 0;
    e->nsegs = 0;
    while (start < p.len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, p.len, start, PCRE2_NO_UTF_CHECK, e->md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(re, (PCRE2_SPTR)s, p.len, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, e->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return regex_error(e, rc);
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms || ms < prev) { /* empty: search again one character further on */
            size_t at = ms > start ? ms : start, k;
            if (at >= p.len) break;
            cp_at(s + at, p.len - at, &k);
            start = at + k;
            continue;
        }
        if (add_seg(e, p.off + prev, ms - prev, 0) || add_seg(e, p.off + ms, me - ms, 1)) return MODES_E_INTERNAL;
        prev = start = me;
    }
    return add_seg(e, p.off + prev, p.len - prev, 0);
}

static int out_piece(encoder *e, size_t off, size_t len) {
    if (!len) return 0;
    if (grow((void **)&e->pcs2, &e->pcs2_cap, e->npcs2 + 1, sizeof *e->pcs2)) return oom(e);
    e->pcs2[e->npcs2++] = (span){off, len};
    return 0;
}

/* The reference's SplitDelimiterBehavior, applied to the segments of one piece. */
static int apply_behavior(encoder *e, split_behavior b, int invert) {
    seg *v = e->segs;
    size_t n = e->nsegs;
    for (size_t i = 0; i < n; i++) v[i].match ^= invert;
    if (b == SPLIT_MERGED_NEXT) { /* mirror image of MergedWithPrevious: walk backwards */
        int prev_match = 0;
        size_t w = n; /* merged segments are collected at the end of v, in order */
        for (size_t i = n; i-- > 0;) {
            if (v[i].match && !prev_match && w < n) {
                v[w].len += v[w].off - v[i].off;
                v[w].off = v[i].off;
            } else v[--w] = v[i];
            prev_match = v[i].match;
        }
        for (size_t i = w; i < n; i++)
            if (out_piece(e, v[i].off, v[i].len)) return MODES_E_INTERNAL;
        return 0;
    }
    int prev_match = 0;
    size_t base = e->npcs2;
    for (size_t i = 0; i < n; i++) {
        const seg *s = &v[i];
        int extend = 0;
        if (b == SPLIT_REMOVED && s->match) continue;
        if (b == SPLIT_MERGED_PREV) extend = s->match && !prev_match;
        if (b == SPLIT_CONTIGUOUS) extend = s->match == prev_match;
        if (extend && e->npcs2 > base) e->pcs2[e->npcs2 - 1].len = s->off + s->len - e->pcs2[e->npcs2 - 1].off;
        else if (out_piece(e, s->off, s->len)) return MODES_E_INTERNAL;
        prev_match = s->match;
    }
    return 0;
}

static void swap_pieces(encoder *e) {
    span *p = e->pcs;
    size_t c = e->pcs_cap;
    e->pcs = e->pcs2;
    e->pcs_cap = e->pcs2_cap;
    e->npcs = e->npcs2;
    e->pcs2 = p;
    e->pcs2_cap = c;
    e->npcs2 = 0;
}

/* ByteLevel's add_prefix_space puts a space before every piece that lacks one, so the text is
 * rebuilt with the spaces in place. */
static int add_prefix_spaces(encoder *e) {
    size_t need = e->work_len + e->npcs;
    if (grow((void **)&e->work2, &e->work2_cap, need + 1, 1)) return oom(e);
    size_t o = 0;
    for (size_t i = 0; i < e->npcs; i++) {
        span *p = &e->pcs[i];
        size_t start = o;
        if (e->work[p->off] != ' ') e->work2[o++] = ' ';
        memcpy(e->work2 + o, e->work + p->off, p->len);
        o += p->len;
        *p = (span){start, o - start};
    }
    char *w = e->work;
    size_t c = e->work_cap;
    e->work = e->work2;
    e->work_cap = e->work2_cap;
    e->work2 = w;
    e->work2_cap = c;
    e->work_len = o;
    return 0;
}

static int run_step(encoder *e, const pretok_step *st) {
    if (st->kind == STEP_BYTELEVEL && st->add_prefix_space && add_prefix_spaces(e)) return MODES_E_INTERNAL;
    if (!st->re) return 0;
    e->npcs2 = 0;
    for (size_t i = 0; i < e->npcs; i++) {
        int rc = find_segments(e, st->re, e->pcs[i]);
        if (rc || (rc = apply_behavior(e, st->behavior, st->invert))) return rc;
    }
    swap_pieces(e);
    return 0;
}

/* Pre-tokenizes and BPE-encodes normalised text that holds no added token. */
static int encode_plain(encoder *e, const char *s, size_t n) {
    if (!n) return 0;
    if (grow((void **)&e->work, &e->work_cap, n + 1, 1) || grow((void **)&e->pcs, &e->pcs_cap, 1, sizeof *e->pcs))
        return oom(e);
    memcpy(e->work, s, n);
    e->work_len = n;
    e->pcs[0] = (span){0, n};
    e->npcs = 1;
    for (size_t i = 0; i < e->t->n_steps; i++) {
        int rc = run_step(e, &e->t->steps[i]);
        if (rc) return rc;
    }
    for (size_t i = 0; i < e->npcs; i++)
        if (bpe_word(e, (const unsigned char *)e->work + e->pcs[i].off, e->pcs[i].len)) return MODES_E_INTERNAL;
    return 0;
}

/* The next added token of set at or after from; HF semantics for single_word (the match is
 * dropped, and its text not searched again) and lstrip/rstrip (the match takes in the white space
 * beside it, never before prev_end). */
static const added_tok *find_added(const modes_tokenizer *t, const added_set *set, int no_special, const char *s,
                                   size_t n, size_t from, size_t prev_end, size_t *ms, size_t *me) {
    if (!set->n) return NULL;
    for (size_t i = from; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        const added_tok *hit = NULL;
        for (uint32_t k = set->start[b]; k < set->start[b + 1] && !hit; k++) {
            const added_tok *a = &t->added[set->order[k]];
            if (no_special && a->special) continue;
            if (a->len <= n - i && !memcmp(s + i, t->pool + a->off, a->len)) hit = a;
        }
        if (!hit) continue;
        size_t st = i, en = i + hit->len, k;
        if (hit->single_word && ((st > 0 && is_word_char(cp_before(s, st, &k))) ||
                                 (en < n && is_word_char(cp_at(s + en, n - en, &k))))) {
            i = en - 1;
            continue;
        }
        while (hit->lstrip && st > prev_end && is_white_space(cp_before(s, st, &k)) && st - k >= prev_end) st -= k;
        while (hit->rstrip && en < n && is_white_space(cp_at(s + en, n - en, &k))) en += k;
        *ms = st;
        *me = en;
        return hit;
    }
    return NULL;
}

typedef int (*segment_fn)(encoder *e, const char *s, size_t n);

/* Splits s on the added tokens of set: the tokens are emitted, the text between goes to fn. */
static int split_added(encoder *e, const added_set *set, const char *s, size_t n, segment_fn fn) {
    size_t pos = 0;
    for (;;) {
        size_t ms = n, me = n;
        const added_tok *a = find_added(e->t, set, e->no_special, s, n, pos, pos, &ms, &me);
        int rc = ms > pos ? fn(e, s + pos, ms - pos) : 0;
        if (rc) return rc;
        if (!a) return 0;
        if (emit(e, a->id)) return MODES_E_INTERNAL;
        pos = me;
    }
}

/* Every code point below U+0300 is unchanged by NFC and composes with nothing before U+0300, so
 * text without a lead byte of U+0300 or above needs no normalisation. */
static int may_need_nfc(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0xCC) return 1;
    return 0;
}

static int encode_segment(encoder *e, const char *s, size_t n) {
    if (!e->t->nfc || !may_need_nfc(s, n)) return split_added(e, &e->t->set_norm, s, n, encode_plain);
    utf8proc_uint8_t *norm = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &norm,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m < 0) {
        free(norm);
        return modes_fail(e->err, m == UTF8PROC_ERROR_NOMEM ? MODES_E_INTERNAL : MODES_E_INPUT,
                          "%s: NFC normalisation failed: %s", e->t->path, utf8proc_errmsg(m));
    }
    int rc = split_added(e, &e->t->set_norm, (const char *)norm, (size_t)m, encode_plain);
    free(norm);
    return rc;
}

static void encoder_free(encoder *e) {
    free(e->work);
    free(e->work2);
    free(e->pcs);
    free(e->pcs2);
    free(e->segs);
    free(e->sym);
    free(e->heap);
    pcre2_match_data_free(e->md);
}

int tok_encode(const modes_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n, modes_error *err) {
    return tok_encode_special(t, text, len, 1, ids, n, err);
}

int tok_encode_special(const modes_tokenizer *t, const char *text, size_t len, int parse_special, int32_t **ids,
                       size_t *n, modes_error *err) {
    *ids = NULL;
    *n = 0;
    if (len > TOK_MAX_TEXT_BYTES)
        return modes_fail(err, MODES_E_INPUT, "text to encode has %zu bytes, over the limit of %zu", len,
                          TOK_MAX_TEXT_BYTES);
    size_t bad = utf8_invalid_at((const unsigned char *)text, len);
    if (bad < len) return modes_fail(err, MODES_E_INPUT, "text to encode is not valid UTF-8 (at byte %zu)", bad);
    encoder e = {.t = t, .err = err, .no_special = !parse_special};
    e.md = pcre2_match_data_create(1, NULL);
    int rc = e.md ? split_added(&e, &t->set_raw, text, len, encode_segment) : oom(&e);
    if (!rc && !e.ids && grow((void **)&e.ids, &e.cap, 1, sizeof *e.ids)) rc = oom(&e);
    encoder_free(&e);
    if (rc) {
        free(e.ids);
        return rc;
    }
    *ids = e.ids;
    *n = e.n;
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Decoding */

static int check_decode_id(const modes_tokenizer *t, int32_t id, modes_error *err) {
    if (id < 0 || (size_t)id >= t->n_ent)
        return modes_fail(err, MODES_E_INPUT, "token id %d is out of range (vocabulary of %zu)", id, t->n_ent);
    return 0;
}

/* An added token stands for its content, the other ids for their vocabulary string; either goes
 * through the ByteLevel decoder. */
static const char *id_bytes(const modes_tokenizer *t, int32_t id, int skip_special, size_t *len) {
    const tok_entry *e = &t->ent[id];
    if (e->added >= 0) {
        const added_tok *a = &t->added[e->added];
        if (skip_special && a->special) return NULL;
        *len = a->bytes_len;
        return t->pool + a->bytes_off;
    }
    if (!e->in_vocab) return NULL;
    *len = e->bytes_len;
    return t->pool + e->bytes_off;
}

int tok_decode(const modes_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out, size_t *len,
               modes_error *err) {
    *out = NULL;
    *len = 0;
    strbuf raw = {0}, text = {0};
    for (size_t i = 0; i < n; i++) {
        if (check_decode_id(t, ids[i], err)) {
            sb_free(&raw);
            return MODES_E_INPUT;
        }
        size_t k;
        const char *b = id_bytes(t, ids[i], skip_special, &k);
        if (b) sb_append(&raw, b, k);
    }
    utf8_repair((const unsigned char *)raw.data, raw.len, 1, &text);
    sb_append(&text, "", 0); /* a NUL-terminated buffer even for empty output */
    sb_free(&raw);
    if (text.failed) {
        sb_free(&text);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory decoding %zu tokens", n);
    }
    *out = text.data;
    *len = text.len;
    return 0;
}

void tok_stream_init(tok_stream *st) { st->npending = 0; }

int tok_stream_push(const modes_tokenizer *t, tok_stream *st, int32_t id, int skip_special, strbuf *out,
                    modes_error *err) {
    if (check_decode_id(t, id, err)) return MODES_E_INPUT;
    size_t k = 0;
    const char *b = id_bytes(t, id, skip_special, &k);
    if (!b || !k) return 0;
    unsigned char small[64];
    size_t n = st->npending + k;
    unsigned char *buf = n <= sizeof small ? small : malloc(n);
    if (!buf) return modes_fail(err, MODES_E_INTERNAL, "out of memory decoding a token");
    memcpy(buf, st->pending, st->npending);
    memcpy(buf + st->npending, b, k);
    size_t used = utf8_repair(buf, n, 0, out);
    /* What is left is a valid beginning of one character, so at most 3 bytes. */
    st->npending = n - used;
    memcpy(st->pending, buf + used, st->npending);
    if (buf != small) free(buf);
    return 0;
}

void tok_stream_finish(tok_stream *st, strbuf *out) {
    utf8_repair(st->pending, st->npending, 1, out);
    st->npending = 0;
}

/* ------------------------------------------------------------------------------------------------
 * Queries */

size_t tok_vocab_size(const modes_tokenizer *t) { return t->n_ent; }
const char *tok_path(const modes_tokenizer *t) { return t->path; }
const char *tok_chat_template(const modes_tokenizer *t) { return t->chat_template; }

const char *tok_id_to_piece(const modes_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= t->n_ent) return NULL;
    const tok_entry *e = &t->ent[id];
    if (e->added >= 0) {
        if (len) *len = t->added[e->added].len;
        return t->pool + t->added[e->added].off;
    }
    if (!e->in_vocab) return NULL;
    if (len) *len = e->piece_len;
    return t->pool + e->piece_off;
}

const char *tok_id_to_bytes(const modes_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= t->n_ent) return NULL;
    size_t k = 0;
    const char *b = id_bytes(t, id, 0, &k);
    if (b && len) *len = k;
    return b;
}

int32_t tok_token_to_id(const modes_tokenizer *t, const char *piece) {
    size_t n = strlen(piece);
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->pool + t->added[i].off, piece, n)) return t->added[i].id;
    return vix_find(t, piece, n);
}

int tok_is_special(const modes_tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->n_ent && t->ent[id].added >= 0 && t->added[t->ent[id].added].special;
}

int tok_is_added(const modes_tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->n_ent && t->ent[id].added >= 0;
}

int32_t tok_config_token_id(const modes_tokenizer *t, const char *key) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(key, cfg_keys[i])) return t->cfg_tok[i] ? tok_token_to_id(t, t->cfg_tok[i]) : -1;
    return -1;
}
