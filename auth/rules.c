/*
 * rules.c: declarative authorization rules.
 *
 * A rule is `allow|deny public|private|any ACTIONS TOPIC [CLAIM=V1|V2 ...]`. The topic
 * pattern is compiled into segments: literal runs, '*' (any run, including empty and ':')
 * and {claim} placeholders. At evaluation a placeholder becomes the identity's claim
 * text, which must be non-empty and free of ':' (else the rule does not match), so the
 * pattern reduces to literals and stars, matched by the classic iterative wildcard walk
 * with one backtrack point: no recursion, no allocation, O(pattern x topic) worst case.
 * Each action bit is decided by the first rule that matches privacy, action, topic and
 * conditions; undecided bits fall back to the public default or deny on private topics.
 */
#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define RULE_MAX_CLAIMS 8 /* placeholders per topic pattern */

enum { SCOPE_PUBLIC = 1u << 0, SCOPE_PRIVATE = 1u << 1 };

enum seg_kind {
    SEG_LIT,   /* literal bytes */
    SEG_STAR,  /* any run of bytes */
    SEG_CLAIM, /* the text of a claim */
};

struct seg {
    enum seg_kind kind; /* what the segment matches */
    char *text;         /* owned: literal bytes or NUL-terminated claim name; NULL for '*' */
    size_t len;         /* bytes of a literal */
};

struct rule {
    bool allow;                  /* allow or deny */
    unsigned scopes;             /* SCOPE_* bits */
    unsigned actions;            /* AUTH_* action bits */
    struct seg *segs;            /* owned topic pattern */
    size_t nsegs;                /* segments */
    size_t nclaims;              /* SEG_CLAIM segments */
    struct gw_claim_cond *conds; /* owned conditions, all must hold */
    size_t nconds;               /* conditions */
};

struct auth_rules {
    bool public_allow;  /* public topics no rule decides are allowed */
    struct rule *rules; /* owned, in evaluation order */
    size_t n;           /* rules */
};

/* A token of the rule text: a run without spaces or tabs. */
struct tok {
    const char *p; /* start, inside the rule text */
    int len;       /* bytes (int for %.*s) */
};

static const struct {
    const char *name;
    unsigned bits;
} action_names[] = {
    { "join", AUTH_JOIN },
    { "broadcast.read", AUTH_BROADCAST_READ },
    { "broadcast.write", AUTH_BROADCAST_WRITE },
    { "broadcast.*", AUTH_BROADCAST_READ | AUTH_BROADCAST_WRITE },
    { "presence.read", AUTH_PRESENCE_READ },
    { "presence.write", AUTH_PRESENCE_WRITE },
    { "presence.*", AUTH_PRESENCE_READ | AUTH_PRESENCE_WRITE },
    { "all", AUTH_ALL },
    { "*", AUTH_ALL },
};

struct auth_rules *
auth_rules_new(bool public_allow)
{
    struct auth_rules *r = gw_xcalloc(1, sizeof(*r));

    r->public_allow = public_allow;
    return r;
}

static void
rule_release(struct rule *ru)
{
    for (size_t i = 0; i < ru->nsegs; i++)
        free(ru->segs[i].text);
    free(ru->segs);
    for (size_t i = 0; i < ru->nconds; i++)
        gw_claim_cond_release(&ru->conds[i]);
    free(ru->conds);
}

void
auth_rules_free(struct auth_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        rule_release(&r->rules[i]);
    free(r->rules);
    free(r);
}

/* Reads the next token at *s; returns false at the end of the text. */
static bool
next_tok(const char **s, struct tok *t)
{
    size_t len;

    if (!gw_next_token(s, &t->p, &len))
        return false;
    t->len = (int)len;
    return true;
}

static bool
tok_is(const struct tok *t, const char *word)
{
    return strlen(word) == (size_t)t->len && memcmp(t->p, word, (size_t)t->len) == 0;
}

static int
parse_effect(struct rule *ru, const struct tok *t, struct gw_buf *err)
{
    if (tok_is(t, "allow") || tok_is(t, "deny")) {
        ru->allow = tok_is(t, "allow");
        return 0;
    }
    gw_buf_printf(err, "expected allow or deny, got '%.*s'", t->len, t->p);
    return GW_EPARSE;
}

static int
parse_scope(struct rule *ru, const struct tok *t, struct gw_buf *err)
{
    if (tok_is(t, "public"))
        ru->scopes = SCOPE_PUBLIC;
    else if (tok_is(t, "private"))
        ru->scopes = SCOPE_PRIVATE;
    else if (tok_is(t, "any"))
        ru->scopes = SCOPE_PUBLIC | SCOPE_PRIVATE;
    else {
        gw_buf_printf(err, "expected public, private or any, got '%.*s'", t->len, t->p);
        return GW_EPARSE;
    }
    return 0;
}

/* Parses a comma list of action names. */
static int
parse_actions(struct rule *ru, const struct tok *t, struct gw_buf *err)
{
    const char *p = t->p, *end = t->p + t->len;

    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        struct tok item = { p, (int)((comma ? comma : end) - p) };
        size_t i = 0;

        if (item.len == 0) {
            gw_buf_printf(err, "empty action in '%.*s'", t->len, t->p);
            return GW_EPARSE;
        }
        while (i < sizeof(action_names) / sizeof(action_names[0]) &&
               !tok_is(&item, action_names[i].name))
            i++;
        if (i == sizeof(action_names) / sizeof(action_names[0])) {
            gw_buf_printf(err, "unknown action '%.*s'", item.len, item.p);
            return GW_EPARSE;
        }
        ru->actions |= action_names[i].bits;
        p = (comma ? comma : end) + 1;
    }
    return 0;
}

static void
push_seg(struct rule *ru, enum seg_kind kind, const char *p, size_t len)
{
    struct seg *s;

    ru->segs = gw_xrealloc(ru->segs, (ru->nsegs + 1) * sizeof(*ru->segs));
    s = &ru->segs[ru->nsegs++];
    s->kind = kind;
    s->text = kind == SEG_STAR ? NULL : gw_xstrndup(p, len);
    s->len = len;
}

/* Parses a {claim} placeholder at p (which points at '{'); returns bytes consumed or 0. */
static size_t
parse_placeholder(struct rule *ru, const struct tok *t, const char *p, struct gw_buf *err)
{
    const char *end = t->p + t->len;
    const char *close = memchr(p, '}', (size_t)(end - p));
    const char *open = memchr(p + 1, '{', (size_t)(end - p - 1));

    if (!close || (open && open < close)) {
        gw_buf_printf(err, "unterminated placeholder in '%.*s'", t->len, t->p);
        return 0;
    }
    if (close == p + 1) {
        gw_buf_printf(err, "empty placeholder in '%.*s'", t->len, t->p);
        return 0;
    }
    if (ru->nclaims == RULE_MAX_CLAIMS) {
        gw_buf_printf(err, "more than %d placeholders in '%.*s'", RULE_MAX_CLAIMS, t->len, t->p);
        return 0;
    }
    push_seg(ru, SEG_CLAIM, p + 1, (size_t)(close - p - 1));
    ru->nclaims++;
    return (size_t)(close - p + 1);
}

/* Compiles a topic pattern into segments. */
static int
parse_pattern(struct rule *ru, const struct tok *t, struct gw_buf *err)
{
    const char *p = t->p, *end = t->p + t->len;

    while (p < end) {
        size_t n = 0;

        if (*p == '*') {
            if (!ru->nsegs || ru->segs[ru->nsegs - 1].kind != SEG_STAR)
                push_seg(ru, SEG_STAR, NULL, 0);
            n = 1;
        } else if (*p == '{') {
            n = parse_placeholder(ru, t, p, err);
            if (!n)
                return GW_EPARSE;
        } else if (*p == '}') {
            gw_buf_printf(err, "unexpected '}' in '%.*s'", t->len, t->p);
            return GW_EPARSE;
        } else {
            while (p + n < end && p[n] != '*' && p[n] != '{' && p[n] != '}')
                n++;
            push_seg(ru, SEG_LIT, p, n);
        }
        p += n;
    }
    return 0;
}

/* Parses CLAIM=V1|V2 (the claim name is up to the first '='). */
static int
parse_cond(struct rule *ru, const struct tok *t, struct gw_buf *err)
{
    struct gw_claim_cond c;
    int rc = gw_claim_cond_parse(&c, t->p, (size_t)t->len, err);

    if (rc)
        return rc;
    ru->conds = gw_xrealloc(ru->conds, (ru->nconds + 1) * sizeof(*ru->conds));
    ru->conds[ru->nconds++] = c;
    return 0;
}

/* Parses the four fixed fields and the conditions of a rule. */
static int
parse_rule(struct rule *ru, const char *text, struct gw_buf *err)
{
    static const char *const fields[] = { "allow or deny", "public, private or any", "actions",
                                          "topic pattern" };
    int (*const parse[])(struct rule *, const struct tok *,
                         struct gw_buf *) = { parse_effect, parse_scope, parse_actions,
                                              parse_pattern };
    const char *s = text;
    struct tok t;
    int rc;

    for (size_t i = 0; i < 4; i++) {
        if (!next_tok(&s, &t)) {
            gw_buf_printf(err,
                          "missing %s in rule '%s' (expected: allow|deny "
                          "public|private|any ACTIONS TOPIC [CLAIM=V1|V2 ...])",
                          fields[i], text);
            return GW_EPARSE;
        }
        rc = parse[i](ru, &t, err);
        if (rc < 0)
            return rc;
    }
    while (next_tok(&s, &t)) {
        rc = parse_cond(ru, &t, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
auth_rules_add(struct auth_rules *r, const char *rule, struct gw_buf *err)
{
    struct gw_buf scratch;
    struct rule ru;
    int rc;

    if (!r || !rule)
        return GW_EINVAL;
    gw_buf_init(&scratch);
    memset(&ru, 0, sizeof(ru));
    rc = parse_rule(&ru, rule, err ? err : &scratch);
    gw_buf_release(&scratch);
    if (rc < 0) {
        rule_release(&ru);
        return rc;
    }
    r->rules = gw_xrealloc(r->rules, (r->n + 1) * sizeof(*r->rules));
    r->rules[r->n++] = ru;
    return 0;
}

/* Resolves the placeholders of ru to claim texts; false when one cannot match. */
static bool
resolve_claims(const struct rule *ru, const struct auth_identity *id, const char **val,
               size_t *vlen)
{
    size_t k = 0;

    for (size_t i = 0; i < ru->nsegs; i++) {
        const char *v;

        if (ru->segs[i].kind != SEG_CLAIM)
            continue;
        v = auth_identity_claim(id, ru->segs[i].text);
        if (!v || !*v || strchr(v, ':'))
            return false;
        val[k] = v;
        vlen[k++] = strlen(v);
    }
    return true;
}

/* The bytes and length of segment si, with placeholders resolved. */
static const char *
seg_text(const struct rule *ru, const char *const *val, const size_t *vlen, size_t si, size_t *len)
{
    size_t k = 0;

    if (ru->segs[si].kind == SEG_LIT) {
        *len = ru->segs[si].len;
        return ru->segs[si].text;
    }
    for (size_t i = 0; i < si; i++)
        k += ru->segs[i].kind == SEG_CLAIM;
    *len = vlen[k];
    return val[k];
}

/* Wildcard match of the resolved pattern against t[0..n). */
static bool
topic_matches(const struct rule *ru, const char *const *val, const size_t *vlen, const char *t,
              size_t n)
{
    size_t si = 0, off = 0, ti = 0;         /* pattern segment, offset in it, text index */
    size_t star_si = SIZE_MAX, star_ti = 0; /* segment after the last '*', text it resumes at */
    const char *cur = NULL;                 /* text of segment si when it is not a star */
    size_t cur_len = 0;

    while (ti < n) {
        if (si < ru->nsegs && ru->segs[si].kind == SEG_STAR) {
            star_si = ++si;
            star_ti = ti;
            off = 0;
            continue;
        }
        if (si < ru->nsegs && off == 0)
            cur = seg_text(ru, val, vlen, si, &cur_len);
        if (si < ru->nsegs && cur[off] == t[ti]) {
            ti++;
            if (++off == cur_len) {
                si++;
                off = 0;
            }
            continue;
        }
        if (star_si == SIZE_MAX)
            return false;
        /* Let the last star swallow one more byte and retry the rest from there. */
        si = star_si;
        off = 0;
        ti = ++star_ti;
    }
    while (si < ru->nsegs && off == 0 && ru->segs[si].kind == SEG_STAR)
        si++;
    return si == ru->nsegs;
}

static bool
rule_matches(const struct rule *ru, const struct auth_identity *id, const char *topic, size_t len)
{
    const char *val[RULE_MAX_CLAIMS];
    size_t vlen[RULE_MAX_CLAIMS];

    for (size_t i = 0; i < ru->nconds; i++) {
        if (!gw_claim_cond_holds(&ru->conds[i], auth_identity_claim(id, ru->conds[i].claim)))
            return false;
    }
    return resolve_claims(ru, id, val, vlen) && topic_matches(ru, val, vlen, topic, len);
}

unsigned
auth_rules_eval(const struct auth_rules *r, const struct auth_identity *id, bool is_private,
                const char *subtopic, size_t len)
{
    unsigned scope = is_private ? SCOPE_PRIVATE : SCOPE_PUBLIC;
    unsigned decided = 0, allowed = 0;

    if (!r)
        return 0;
    if (!subtopic)
        len = 0;
    for (size_t i = 0; i < r->n && decided != AUTH_ALL; i++) {
        const struct rule *ru = &r->rules[i];
        unsigned todo = ru->actions & ~decided;

        if (!todo || !(ru->scopes & scope) || !rule_matches(ru, id, subtopic ? subtopic : "", len))
            continue;
        decided |= todo;
        if (ru->allow)
            allowed |= todo;
    }
    if (!is_private && r->public_allow)
        allowed |= AUTH_ALL & ~decided;
    return allowed;
}
