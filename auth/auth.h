/*
 * auth: JWT verification and declarative authorization rules. Pure: no sockets, no loop;
 * files (PEM, JWKS) are read once by auth_new().
 *
 * Verification pins the algorithm to the key type: HS256 only with `jwt_secret`, RS256 and
 * ES256 only with a public key (PEM file or JWKS entry selected by `kid`). `alg:none`,
 * unknown algorithms and HS256 tokens signed with a public key are rejected. `exp` and the
 * role claim are required; `nbf` and `iat` are checked when present (with leeway).
 *
 * Rules (option `rule`, see conf/tidings.conf.example) decide, per identity and topic, which
 * actions (join, broadcast.read, broadcast.write, presence.read, presence.write) are
 * allowed. First matching rule wins; with no match, public topics use the default policy
 * and private topics are denied.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_buf;
struct auth;
struct auth_identity;
struct auth_rules;

struct auth_config {
    const char *jwt_secret;     /* HS256 secret, or NULL/"" */
    const char *jwt_public_key; /* path of a PEM SubjectPublicKeyInfo (RSA or P-256), or NULL */
    const char *jwks_file;      /* path of a JWKS JSON file, or NULL */
    const char *anon_key;       /* opaque API key accepted as role "anon", or NULL */
    const char *role_claim;     /* claim holding the role; NULL means "role" */
    unsigned leeway_s;          /* clock leeway for exp/nbf/iat, seconds */
};

/* Creates the verifier. On failure returns NULL and appends a message to err (may be NULL).
 * At least one of jwt_secret, jwt_public_key, jwks_file or anon_key must be set. */
struct auth *auth_new(const struct auth_config *cfg, struct gw_buf *err);
void auth_free(struct auth *a);

/* Why a token was refused. */
enum auth_reason {
    AUTH_OK = 0,
    AUTH_MISSING,   /* no token at all ("API key is missing") */
    AUTH_MALFORMED, /* not a JWT, bad base64/JSON, unknown or disallowed alg, unknown key */
    AUTH_SIGNATURE, /* signature does not verify */
    AUTH_EXPIRED,   /* exp in the past (see expired_for_s) */
    AUTH_CLAIMS,    /* role or exp missing or of the wrong type */
    AUTH_NOT_YET,   /* nbf in the future */
};

struct auth_failure {
    enum auth_reason reason; /* AUTH_OK when verification succeeded */
    int64_t expired_for_s;   /* for AUTH_EXPIRED: seconds since exp */
};

/*
 * Verifies `token` (len bytes, not NUL-terminated) at time now_s (Unix seconds).
 * On success returns 0 and *out holds a new identity (refs = 1, caller unrefs).
 * On failure returns GW_EAUTH or GW_EEXPIRED, sets *why and leaves *out NULL.
 * An `anon_key` match gives role "anon" and no expiry.
 */
int auth_verify(struct auth *a, const char *token, size_t len, int64_t now_s,
                struct auth_identity **out, struct auth_failure *why);

/* Writes the human message of a failure as PROTOCOL.md words it, e.g.
 * "Token has expired 12 seconds ago", NUL-terminated, truncated to cap. */
void auth_failure_message(const struct auth_failure *why, char *buf, size_t cap);
/* The join-error code prefix: "InvalidJWTToken", "MalformedJWT" or "JwtSignatureError". */
const char *auth_failure_code(const struct auth_failure *why);

struct auth_identity *auth_identity_ref(struct auth_identity *id);
/* Drops a reference; frees with the last. Accepts NULL. */
void auth_identity_unref(struct auth_identity *id);
/* A claim as text (strings as is, numbers and booleans formatted, NULL when absent or
 * an object/array/null). Valid while the identity is referenced. Names may contain ':'. */
const char *auth_identity_claim(const struct auth_identity *id, const char *name);
/* The role (from the configured role claim), never NULL. */
const char *auth_identity_role(const struct auth_identity *id);
/* exp in Unix seconds, 0 when the identity never expires (opaque API key). */
int64_t auth_identity_exp(const struct auth_identity *id);
/* The `sub` claim or NULL. */
const char *auth_identity_sub(const struct auth_identity *id);

/* Actions, as bits. */
enum auth_action {
    AUTH_JOIN = 1u << 0,
    AUTH_BROADCAST_READ = 1u << 1,
    AUTH_BROADCAST_WRITE = 1u << 2,
    AUTH_PRESENCE_READ = 1u << 3,
    AUTH_PRESENCE_WRITE = 1u << 4,
    AUTH_ALL = 0x1f,
};

/* Creates an empty rule set. public_allow: what public topics get when no rule matches. */
struct auth_rules *auth_rules_new(bool public_allow);
void auth_rules_free(struct auth_rules *r);

/*
 * Parses one rule (the value of a `rule` option) and appends it:
 *   allow|deny  public|private|any  ACTIONS  TOPIC  [CLAIM=V1|V2 ...]
 * ACTIONS is a comma list of join, broadcast.read, broadcast.write, broadcast.*,
 * presence.read, presence.write, presence.*, all (or *). TOPIC is a subtopic pattern:
 * '*' matches any run of characters, {claim} matches a non-empty run without ':' that must
 * equal the identity's claim. A CLAIM condition holds when the claim equals one of the
 * values ('*' = present with any value). Returns 0, or GW_EPARSE with a message in err.
 */
int auth_rules_add(struct auth_rules *r, const char *rule, struct gw_buf *err);

/*
 * Returns the bitmask of allowed actions for `id` on `subtopic` (len bytes) of the given
 * privacy. Each action bit is decided by the first rule that matches the topic, privacy,
 * conditions and that action. Pure and cheap: no allocation.
 */
unsigned auth_rules_eval(const struct auth_rules *r, const struct auth_identity *id,
                         bool is_private, const char *subtopic, size_t len);

/* Builds an identity from claims JSON text (for tests and the `token` command). Returns
 * NULL when the text is not a JSON object. exp is read from the claims (0 if absent). */
struct auth_identity *auth_identity_from_json(const char *claims_json, const char *role_claim);

/*
 * Signs a HS256 token over `claims_json` (a JSON object text) with `secret`. Returns a
 * malloc'd NUL-terminated token (caller frees) or NULL on invalid input. For the `token`
 * command and tests.
 */
char *auth_sign_hs256(const char *secret, const char *claims_json);

#endif
