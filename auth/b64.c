/*
 * b64.c: unpadded base64url (RFC 4648 section 5), as JWS uses it. The decoder is strict:
 * no padding, no '+' or '/', no whitespace, and the unused low bits of the last character
 * must be zero, so every byte string has exactly one accepted encoding.
 */
#include "auth/auth_int.h"

#include "base/base.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void
auth__b64url_append(struct gw_buf *b, const void *p, size_t n)
{
    const unsigned char *in = p;
    char *out = gw_buf_reserve(b, (n + 2) / 3 * 4);
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t rest = n - i;

        if (rest > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (rest > 2)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (rest > 1)
            out[o++] = alphabet[(v >> 6) & 63];
        if (rest > 2)
            out[o++] = alphabet[v & 63];
    }
    /* gw_buf_reserve() left room for the terminator too. */
    b->len += o;
    b->data[b->len] = '\0';
}

/* The 6-bit value of a base64url character, or -1. */
static int
sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int
auth__b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
    uint32_t acc = 0; /* pending bits, most significant first */
    unsigned bits = 0;
    size_t o = 0;

    if (n % 4 == 1)
        return GW_EPARSE;
    for (size_t i = 0; i < n; i++) {
        int v = sextet((unsigned char)in[i]);

        if (v < 0)
            return GW_EPARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return GW_EPARSE; /* non-canonical: leftover bits set */
    *outlen = o;
    return 0;
}
