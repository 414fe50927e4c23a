/*
 * test_auth_rules.c: rule parsing (and its error messages) and evaluation: the example
 * partner/admin policy, defaults, placeholders (including claim names with ':'), glob
 * patterns, conditions and the NULL identity.
 */
#include <string.h>

#include "auth/auth.h"
#include "base/base.h"
#include "harness.h"

#define PARTNER_READ (AUTH_JOIN | AUTH_BROADCAST_READ | AUTH_PRESENCE_READ | AUTH_PRESENCE_WRITE)
#define USER_TOPIC   (AUTH_JOIN | AUTH_BROADCAST_READ | AUTH_BROADCAST_WRITE)

static const char *const example[] = {
    "allow any all * role=admin|super_admin",
    "allow any join,broadcast.read,presence.* partner:{business_id} role=user",
    "deny any all partner:*",
    "allow private join,broadcast.read,broadcast.write user:{sub}",
};

static struct auth_rules *
load(bool public_allow, const char *const *rules, size_t n)
{
    struct auth_rules *r = auth_rules_new(public_allow);

    for (size_t i = 0; i < n; i++) {
        if (auth_rules_add(r, rules[i], NULL) != 0) {
            auth_rules_free(r);
            return NULL;
        }
    }
    return r;
}

static unsigned
eval(const struct auth_rules *r, const struct auth_identity *id, bool priv, const char *topic)
{
    return auth_rules_eval(r, id, priv, topic, strlen(topic));
}

static void
test_example_admin(void)
{
    struct auth_rules *r = load(true, example, 4);
    struct auth_identity *admin = auth_identity_from_json("{\"role\":\"admin\"}", NULL);
    struct auth_identity *super = auth_identity_from_json("{\"role\":\"super_admin\"}", NULL);

    ASSERT_NOT_NULL(r);
    ASSERT_UINT_EQ(eval(r, admin, false, "room1"), AUTH_ALL);
    ASSERT_UINT_EQ(eval(r, admin, true, "room1"), AUTH_ALL);
    ASSERT_UINT_EQ(eval(r, admin, true, "partner:43"), AUTH_ALL);
    ASSERT_UINT_EQ(eval(r, super, true, "user:someone"), AUTH_ALL);
    ASSERT_UINT_EQ(eval(r, super, true, ""), AUTH_ALL);
    auth_identity_unref(admin);
    auth_identity_unref(super);
    auth_rules_free(r);
}

static void
test_example_partner(void)
{
    struct auth_rules *r = load(true, example, 4);
    struct auth_identity *u =
        auth_identity_from_json("{\"role\":\"user\",\"business_id\":42,\"sub\":\"abc\"}", NULL);
    struct auth_identity *other =
        auth_identity_from_json("{\"role\":\"viewer\",\"business_id\":42}", NULL);

    ASSERT_NOT_NULL(r);
    ASSERT_UINT_EQ(eval(r, u, false, "partner:42"), PARTNER_READ);
    ASSERT_UINT_EQ(eval(r, u, true, "partner:42"), PARTNER_READ);
    ASSERT_UINT_EQ(eval(r, u, false, "partner:43"), 0);
    ASSERT_UINT_EQ(eval(r, u, true, "partner:43"), 0);
    ASSERT_UINT_EQ(eval(r, u, false, "partner:42:extra"), 0);
    ASSERT_UINT_EQ(eval(r, u, false, "partner:"), 0);
    /* The role condition: a non-user with the same business_id gets nothing there. */
    ASSERT_UINT_EQ(eval(r, other, true, "partner:42"), 0);
    /* No rule decides room1: public default, private denied. */
    ASSERT_UINT_EQ(eval(r, u, false, "room1"), AUTH_ALL);
    ASSERT_UINT_EQ(eval(r, u, true, "room1"), 0);
    /* Own private user topic: join and broadcast, presence undecided so denied. */
    ASSERT_UINT_EQ(eval(r, u, true, "user:abc"), USER_TOPIC);
    ASSERT_UINT_EQ(eval(r, u, true, "user:abd"), 0);
    ASSERT_UINT_EQ(eval(r, u, false, "user:abd"), AUTH_ALL);
    auth_identity_unref(u);
    auth_identity_unref(other);
    auth_rules_free(r);
}

static void
test_public_default_off(void)
{
    struct auth_rules *r = load(false, example, 4);
    struct auth_identity *u =
        auth_identity_from_json("{\"role\":\"user\",\"business_id\":\"42\"}", NULL);

    ASSERT_NOT_NULL(r);
    ASSERT_UINT_EQ(eval(r, u, false, "room1"), 0);
    ASSERT_UINT_EQ(eval(r, u, false, "partner:42"), PARTNER_READ);
    auth_identity_unref(u);
    auth_rules_free(r);
}

static void
test_cognito_claims(void)
{
    /* The Cognito example of docs/AUTH.md, plus a presence-free private variant. */
    static const char *const rules[] = {
        "allow any all * custom:role=admin|super_admin",
        "allow any join,broadcast.read,presence.* partner:{custom:business_id} "
        "custom:role=partner",
        "allow private join,broadcast.* team:{custom:business_id} custom:business_id=*",
        "deny any all partner:*",
    };
    struct auth_rules *r = load(true, rules, 4);
    struct auth_identity *p = auth_identity_from_json(
        "{\"custom:role\":\"partner\",\"custom:business_id\":\"77\"}", "custom:role");
    struct auth_identity *none =
        auth_identity_from_json("{\"custom:role\":\"partner\"}", "custom:role");
    struct auth_identity *adm = auth_identity_from_json(
        "{\"custom:role\":\"super_admin\",\"cognito:groups\":[\"admin\"]}", "custom:role");

    ASSERT_NOT_NULL(r);
    ASSERT_STR_EQ(auth_identity_role(p), "partner");
    ASSERT_UINT_EQ(eval(r, p, true, "partner:77"), PARTNER_READ);
    ASSERT_UINT_EQ(eval(r, p, false, "partner:78"), 0);
    ASSERT_UINT_EQ(eval(r, p, true, "team:77"), USER_TOPIC);
    ASSERT_UINT_EQ(eval(r, p, true, "team:78"), 0);
    ASSERT_UINT_EQ(eval(r, none, true, "partner:77"), 0);
    ASSERT_UINT_EQ(eval(r, none, true, "team:77"), 0);
    ASSERT_UINT_EQ(eval(r, adm, true, "partner:78"), AUTH_ALL);
    ASSERT_NULL(auth_identity_claim(adm, "cognito:groups")); /* arrays have no text */
    auth_identity_unref(p);
    auth_identity_unref(none);
    auth_identity_unref(adm);
    auth_rules_free(r);
}

static void
test_patterns(void)
{
    static const char *const rules[] = {
        "allow any join org:{org}:team:{team}:*", "allow any broadcast.read a*b*c",
        "allow any broadcast.write exact",        "allow any presence.read *:{sub}",
        "allow any presence.write pre{sub}post",
    };
    struct auth_rules *r = load(false, rules, 5);
    struct auth_identity *id =
        auth_identity_from_json("{\"org\":\"o1\",\"team\":7,\"sub\":\"me\"}", NULL);
    struct auth_identity *colon = auth_identity_from_json("{\"sub\":\"a:b\",\"org\":\"\"}", NULL);

    ASSERT_NOT_NULL(r);
    ASSERT_UINT_EQ(eval(r, id, false, "org:o1:team:7:"), AUTH_JOIN);
    ASSERT_UINT_EQ(eval(r, id, false, "org:o1:team:7:chat:x"), AUTH_JOIN);
    ASSERT_UINT_EQ(eval(r, id, false, "org:o1:team:8:chat"), 0);
    ASSERT_UINT_EQ(eval(r, id, false, "org:o1:team:7"), 0);
    ASSERT_UINT_EQ(eval(r, id, false, "abc"), AUTH_BROADCAST_READ);
    ASSERT_UINT_EQ(eval(r, id, false, "a:x:b:y:c"), AUTH_BROADCAST_READ);
    ASSERT_UINT_EQ(eval(r, id, false, "abcabcab"), 0);
    ASSERT_UINT_EQ(eval(r, id, false, "aabbcc"), AUTH_BROADCAST_READ);
    ASSERT_UINT_EQ(eval(r, id, false, "exact"), AUTH_BROADCAST_WRITE);
    ASSERT_UINT_EQ(eval(r, id, false, "exactly"), 0);
    ASSERT_UINT_EQ(eval(r, id, false, "x:y:me"), AUTH_PRESENCE_READ);
    ASSERT_UINT_EQ(eval(r, id, false, "premepost"), AUTH_PRESENCE_WRITE);
    ASSERT_UINT_EQ(eval(r, id, false, "prepost"), 0);
    /* A claim with ':' or an empty claim never fills a placeholder. */
    ASSERT_UINT_EQ(eval(r, colon, false, "x:a:b"), 0);
    ASSERT_UINT_EQ(eval(r, colon, false, "org::team:1:x"), 0);
    /* Length is honoured: the bytes after len are not part of the topic. */
    ASSERT_UINT_EQ(auth_rules_eval(r, id, false, "exactly", 5), AUTH_BROADCAST_WRITE);
    auth_identity_unref(id);
    auth_identity_unref(colon);
    auth_rules_free(r);
}

static void
test_first_match_per_action(void)
{
    static const char *const rules[] = {
        "deny public broadcast.write news",
        "allow public all news",
        "allow   private\tpresence.read,join   news   ",
    };
    struct auth_rules *r = load(false, rules, 3);

    ASSERT_NOT_NULL(r);
    ASSERT_UINT_EQ(eval(r, NULL, false, "news"), AUTH_ALL & ~AUTH_BROADCAST_WRITE);
    ASSERT_UINT_EQ(eval(r, NULL, true, "news"), AUTH_JOIN | AUTH_PRESENCE_READ);
    ASSERT_UINT_EQ(eval(r, NULL, true, "other"), 0);
    auth_rules_free(r);
}

static void
test_null_identity(void)
{
    static const char *const rules[] = {
        "allow any all * role=admin",
        "deny any all secret:{sub}",
        "deny public join locked",
    };
    struct auth_rules *r = load(true, rules, 3);

    ASSERT_NOT_NULL(r);
    ASSERT_UINT_EQ(eval(r, NULL, true, "room"), 0);
    ASSERT_UINT_EQ(eval(r, NULL, false, "room"), AUTH_ALL);
    ASSERT_UINT_EQ(eval(r, NULL, false, "secret:x"), AUTH_ALL);
    ASSERT_UINT_EQ(eval(r, NULL, false, "locked"), AUTH_ALL & ~AUTH_JOIN);
    ASSERT_UINT_EQ(auth_rules_eval(NULL, NULL, false, "x", 1), 0);
    auth_rules_free(r);
}

static void
test_actions(void)
{
    static const struct {
        const char *rule;
        unsigned bits;
    } cases[] = {
        { "allow any join t", AUTH_JOIN },
        { "allow any broadcast.* t", AUTH_BROADCAST_READ | AUTH_BROADCAST_WRITE },
        { "allow any presence.* t", AUTH_PRESENCE_READ | AUTH_PRESENCE_WRITE },
        { "allow any broadcast.write,presence.write t",
          AUTH_BROADCAST_WRITE | AUTH_PRESENCE_WRITE },
        { "allow any all t", AUTH_ALL },
        { "allow any * t", AUTH_ALL },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct auth_rules *r = load(false, &cases[i].rule, 1);

        ASSERT_NOT_NULL(r);
        ASSERT_UINT_EQ(eval(r, NULL, false, "t"), cases[i].bits);
        auth_rules_free(r);
    }
}

/* auth_rules_add() must fail with exactly this message. */
static int
fails_with(const char *rule, const char *want)
{
    struct auth_rules *r = auth_rules_new(true);
    struct gw_buf err;
    int ok;

    gw_buf_init(&err);
    ok = auth_rules_add(r, rule, &err) == GW_EPARSE && err.data && strcmp(err.data, want) == 0;
    if (!ok)
        fprintf(stderr, "rule '%s': got '%s', wanted '%s'\n", rule, err.data ? err.data : "", want);
    /* A failed rule is not added: the set still allows public topics by default. */
    ok = ok && auth_rules_eval(r, NULL, false, "partner:1", 9) == AUTH_ALL;
    gw_buf_release(&err);
    auth_rules_free(r);
    return ok;
}

static void
test_parse_errors(void)
{
    ASSERT_TRUE(fails_with("permit any all *", "expected allow or deny, got 'permit'"));
    ASSERT_TRUE(
        fails_with("allow everyone all *", "expected public, private or any, got 'everyone'"));
    ASSERT_TRUE(fails_with("allow any brodcast.read *", "unknown action 'brodcast.read'"));
    ASSERT_TRUE(fails_with("allow any join,,presence.read *", "empty action in "
                                                              "'join,,presence.read'"));
    ASSERT_TRUE(fails_with("deny any all partner:{business_id",
                           "unterminated placeholder in 'partner:{business_id'"));
    ASSERT_TRUE(fails_with("deny any all partner:{a{b}", "unterminated placeholder in "
                                                         "'partner:{a{b}'"));
    ASSERT_TRUE(fails_with("deny any all partner:{}", "empty placeholder in 'partner:{}'"));
    ASSERT_TRUE(fails_with("deny any all partner:}", "unexpected '}' in 'partner:}'"));
    ASSERT_TRUE(fails_with("allow any all * role", "expected CLAIM=VALUE[|VALUE...], got 'role'"));
    ASSERT_TRUE(fails_with("allow any all * =x", "expected CLAIM=VALUE[|VALUE...], got '=x'"));
    ASSERT_TRUE(fails_with("allow any all * role=", "expected CLAIM=VALUE[|VALUE...], got "
                                                    "'role='"));
    ASSERT_TRUE(fails_with("allow any all * role=a||b", "empty value in condition 'role=a||b'"));
    ASSERT_TRUE(fails_with("allow any all", "missing topic pattern in rule 'allow any all' "
                                            "(expected: allow|deny public|private|any ACTIONS "
                                            "TOPIC [CLAIM=V1|V2 ...])"));
    ASSERT_TRUE(fails_with("   ", "missing allow or deny in rule '   ' (expected: allow|deny "
                                  "public|private|any ACTIONS TOPIC [CLAIM=V1|V2 ...])"));
    ASSERT_TRUE(fails_with("deny any all {a}{b}{c}{d}{e}{f}{g}{h}{i}",
                           "more than 8 placeholders in '{a}{b}{c}{d}{e}{f}{g}{h}{i}'"));
    ASSERT_INT_EQ(auth_rules_add(NULL, "allow any all *", NULL), GW_EINVAL);
}

int
main(void)
{
    RUN(test_example_admin);
    RUN(test_example_partner);
    RUN(test_public_default_off);
    RUN(test_cognito_claims);
    RUN(test_patterns);
    RUN(test_first_match_per_action);
    RUN(test_null_identity);
    RUN(test_actions);
    RUN(test_parse_errors);
    return HARNESS_DONE();
}
