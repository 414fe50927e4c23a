/*
 * harness.h: a tiny unit-test harness. Each test file defines `static void test_x(void)`
 * functions and lists them in main() with RUN(test_x). Assertions print both sides and
 * the location, count the failure and return from the test function.
 */
#ifndef GW_TEST_HARNESS_H
#define GW_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int harness_failures;
static int harness_checks;

#define FAIL_AT(...)                                    \
    do {                                                \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                   \
        fprintf(stderr, "\n");                          \
        harness_failures++;                             \
        return;                                         \
    } while (0)

#define ASSERT_TRUE(c)                        \
    do {                                      \
        harness_checks++;                     \
        if (!(c))                             \
            FAIL_AT("expected true: %s", #c); \
    } while (0)

#define ASSERT_INT_EQ(a, b)                                      \
    do {                                                         \
        long long va_ = (long long)(a), vb_ = (long long)(b);    \
        harness_checks++;                                        \
        if (va_ != vb_)                                          \
            FAIL_AT("%s == %s: %lld != %lld", #a, #b, va_, vb_); \
    } while (0)

#define ASSERT_UINT_EQ(a, b)                                                             \
    do {                                                                                 \
        unsigned long long va_ = (unsigned long long)(a), vb_ = (unsigned long long)(b); \
        harness_checks++;                                                                \
        if (va_ != vb_)                                                                  \
            FAIL_AT("%s == %s: %llu != %llu", #a, #b, va_, vb_);                         \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                     \
    do {                                                                        \
        const char *sa_ = (a), *sb_ = (b);                                      \
        harness_checks++;                                                       \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0)                              \
            FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, sa_ ? sa_ : "(null)", \
                    sb_ ? sb_ : "(null)");                                      \
    } while (0)

/* Compares n bytes at a with the NUL-terminated string b (lengths must match too). */
#define ASSERT_MEM_STR(a, n, b)                                                  \
    do {                                                                         \
        const char *ma_ = (const char *)(a), *mb_ = (b);                         \
        size_t na_ = (n);                                                        \
        harness_checks++;                                                        \
        if (na_ != strlen(mb_) || memcmp(ma_, mb_, na_) != 0)                    \
            FAIL_AT("%s == %s: \"%.*s\" != \"%s\"", #a, #b, (int)na_, ma_, mb_); \
    } while (0)

#define ASSERT_NULL(p)                        \
    do {                                      \
        harness_checks++;                     \
        if ((p) != NULL)                      \
            FAIL_AT("expected NULL: %s", #p); \
    } while (0)

#define ASSERT_NOT_NULL(p)                        \
    do {                                          \
        harness_checks++;                         \
        if ((p) == NULL)                          \
            FAIL_AT("expected non-NULL: %s", #p); \
    } while (0)

#define RUN(fn)                                                                         \
    do {                                                                                \
        int before_ = harness_failures;                                                 \
        fn();                                                                           \
        fprintf(stderr, "%s %s\n", harness_failures == before_ ? "ok  " : "FAIL", #fn); \
    } while (0)

/* Ends main(): prints the totals and returns the exit status. */
#define HARNESS_DONE()                                                              \
    (fprintf(stderr, "%d checks, %d failures\n", harness_checks, harness_failures), \
     harness_failures ? 1 : (harness_checks ? 0 : 1))

#endif
