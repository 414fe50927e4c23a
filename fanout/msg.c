/*
 * msg.c: refcounted frames and messages with lazily encoded per-variant frames.
 *
 * A frame is one allocation: the struct, then `headroom` free bytes, then the data, so
 * the owner can prepend a header in place. A message is one allocation: the struct and a
 * copy of the body. It captures the fanout's encode callback and its ud at creation, so
 * fanout_msg_frame() works without the fanout (even after fanout_free). Each variant is
 * encoded at most once: the `tried` bit remembers attempts, so a NULL answer (no such
 * variant) is not retried. The last message unref releases its frames; a frame another
 * holder referenced lives on until that holder unrefs it.
 */
#include "fanout/fanout.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fanout/fanout_int.h"

struct fanout_msg {
    uint32_t refs;                                /* references held */
    unsigned tag;                                 /* caller-defined tag */
    unsigned tried;                               /* bit v set: variant v was encoded */
    fanout_encode_fn *encode;                     /* the fanout's encode callback */
    void *ud;                                     /* its ud */
    struct fanout_frame *frames[FANOUT_VARIANTS]; /* built frames, NULL = none (yet) */
    size_t len;                                   /* bytes of body */
    unsigned char body[];                         /* copy of the body */
};

struct fanout_frame *
fanout_frame_new(size_t headroom, size_t cap)
{
    struct fanout_frame *f;

    if (headroom > UINT32_MAX || cap > SIZE_MAX - sizeof(*f) - headroom) {
        fprintf(stderr, "fanout: frame of %zu + %zu bytes is too large\n", headroom, cap);
        abort();
    }
    f = gw_xmalloc(sizeof(*f) + headroom + cap);
    f->refs = 1;
    f->headroom = (uint32_t)headroom;
    f->len = 0;
    f->data = f->mem + headroom;
    return f;
}

struct fanout_frame *
fanout_frame_ref(struct fanout_frame *f)
{
    if (f)
        f->refs++;
    return f;
}

void
fanout_frame_unref(struct fanout_frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}

struct fanout_msg *
fanout_msg_new(struct fanout *fo, const void *body, size_t len, unsigned tag)
{
    struct fanout_msg *m;

    if (!fo || (!body && len > 0) || len > SIZE_MAX - sizeof(*m))
        return NULL;
    m = gw_xcalloc(1, sizeof(*m) + len);
    m->refs = 1;
    m->tag = tag;
    m->encode = fo->encode;
    m->ud = fo->ud;
    m->len = len;
    if (len > 0)
        memcpy(m->body, body, len);
    return m;
}

struct fanout_msg *
fanout_msg_ref(struct fanout_msg *m)
{
    if (m)
        m->refs++;
    return m;
}

void
fanout_msg_unref(struct fanout_msg *m)
{
    if (!m || --m->refs > 0)
        return;
    for (unsigned v = 0; v < FANOUT_VARIANTS; v++)
        fanout_frame_unref(m->frames[v]);
    free(m);
}

const void *
fanout_msg_body(const struct fanout_msg *m, size_t *len)
{
    if (len)
        *len = m ? m->len : 0;
    return m ? m->body : NULL;
}

unsigned
fanout_msg_tag(const struct fanout_msg *m)
{
    return m ? m->tag : 0;
}

struct fanout_frame *
fanout_msg_frame(struct fanout_msg *m, unsigned variant)
{
    if (!m || variant >= FANOUT_VARIANTS)
        return NULL;
    if (!(m->tried & (1u << variant))) {
        /* Set before calling, so an encoder asking for its own variant gets NULL. */
        m->tried |= 1u << variant;
        m->frames[variant] = m->encode(m->ud, m, variant);
    }
    return m->frames[variant];
}
