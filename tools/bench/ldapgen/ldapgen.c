/*
 * ldapgen: a second, independent LDAP load generator, written against
 * OpenLDAP's C client library (libldap) rather than ldap3_proto, so that
 * ferrodir's figures do not rest on one generator's framing and timing.
 *
 * One POSIX thread per connection, each with one outstanding synchronous
 * operation (closed loop), on persistent connections: the same model as
 * ldbench, the same data and names (ldbench gen: uid=userN,ou=people,BASE
 * with password passN), the same report (ldbench's table on stdout, the same
 * JSON fields with --json) so tools/bench/compare reads both.
 *
 *   ldapgen --url ldap://127.0.0.1:PORT --workload W [--connections C]
 *           [--duration S | --ops N] [--warmup S] [--entries N]
 *           [--base DN] [--bind-dn DN] [--bind-password PW] [--seed S]
 *           [--run-id ID] [--write-ratio R] [--page-size P] [--pages K]
 *           [--op-timeout S] [--json FILE] [--quiet]
 *
 * Workloads: bind search-eq search-sub search-page add modify delete mixed
 * (as ldbench's, see docs/BENCHMARKS.md). The bind password may also come
 * from LDBENCH_BIND_PASSWORD. Exit status 2 when no operation succeeded.
 *
 * Build: make -C tools/bench/ldapgen (needs libldap-dev).
 */
#define _GNU_SOURCE
#define LDAP_DEPRECATED 0
#include <errno.h>
#include <lber.h>
#include <ldap.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum workload { W_BIND, W_SEARCH_EQ, W_SEARCH_SUB, W_SEARCH_PAGE, W_ADD, W_MODIFY, W_DELETE, W_MIXED };
static const char *const WNAMES[] = {"bind", "search-eq", "search-sub", "search-page",
                                     "add",  "modify",    "delete",     "mixed"};

static struct {
    const char *url, *base, *bind_dn, *bind_pw, *json, *run_id;
    enum workload w;
    int conns, pages, page_size, quiet;
    double duration, warmup, write_ratio, op_timeout;
    long long ops_budget; /* -1: none */
    unsigned long long entries, seed;
} O = {.base = "dc=example,dc=com", .conns = 4, .pages = 5, .page_size = 100, .duration = -1,
       .warmup = 0, .write_ratio = 0.1, .op_timeout = 10, .ops_budget = -1, .entries = 10000, .seed = 1};

static double t_measure, t_deadline; /* monotonic seconds; deadline < 0: none */
static long long budget;             /* ops left to start in the window (ops mode) */
static unsigned long long seq_next;  /* add/delete sequence */
static unsigned long long seq_limit = ~0ULL;
static unsigned long long mods_next;
static int first_error_shown;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *m) {
    fprintf(stderr, "ldapgen: %s\n", m);
    exit(1);
}

/* xorshift64*: per-thread, seeded from --seed and the thread index. */
static unsigned long long rnd(unsigned long long *s) {
    unsigned long long x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static unsigned long long uniform(unsigned long long *s, unsigned long long lo, unsigned long long hi) {
    return lo + rnd(s) % (hi - lo + 1);
}

/* Errors counted by name, as ldbench does ("49:invalidCredentials", "io"). */
#define MAXERR 16
struct stats {
    uint32_t *lat; /* microseconds of successful ops in the window */
    size_t n, cap;
    unsigned long long entries;
    char errname[MAXERR][48];
    unsigned long long errcount[MAXERR];
    int nerr;
};

static void error_n(struct stats *st, const char *name, unsigned long long n) {
    for (int i = 0; i < st->nerr; i++)
        if (!strcmp(st->errname[i], name)) {
            st->errcount[i] += n;
            return;
        }
    if (st->nerr < MAXERR) {
        snprintf(st->errname[st->nerr], sizeof st->errname[0], "%s", name);
        st->errcount[st->nerr++] = n;
    }
}
static void error(struct stats *st, const char *name) { error_n(st, name, 1); }

static void note_error(const char *what) {
    if (O.quiet)
        return;
    pthread_mutex_lock(&err_lock);
    if (!first_error_shown) {
        first_error_shown = 1;
        fprintf(stderr, "ldapgen: first error: %s (further errors are only counted)\n", what);
    }
    pthread_mutex_unlock(&err_lock);
}

static void record(struct stats *st, double secs) {
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 65536;
        st->lat = realloc(st->lat, st->cap * sizeof *st->lat);
        if (!st->lat)
            die("out of memory");
    }
    double us = secs * 1e6;
    st->lat[st->n++] = us < 1 ? 1 : us > 4e9 ? 4000000000u : (uint32_t)us;
}

static const char *code_name(int rc) {
    switch (rc) {
    case LDAP_SUCCESS: return "success";
    case LDAP_OPERATIONS_ERROR: return "operationsError";
    case LDAP_PROTOCOL_ERROR: return "protocolError";
    case LDAP_SIZELIMIT_EXCEEDED: return "sizeLimitExceeded";
    case LDAP_STRONG_AUTH_REQUIRED: return "strongerAuthRequired";
    case LDAP_NO_SUCH_ATTRIBUTE: return "noSuchAttribute";
    case LDAP_NO_SUCH_OBJECT: return "noSuchObject";
    case LDAP_INVALID_CREDENTIALS: return "invalidCredentials";
    case LDAP_INSUFFICIENT_ACCESS: return "insufficientAccessRights";
    case LDAP_BUSY: return "busy";
    case LDAP_UNAVAILABLE: return "unavailable";
    case LDAP_UNWILLING_TO_PERFORM: return "unwillingToPerform";
    case LDAP_OBJECT_CLASS_VIOLATION: return "objectClassViolation";
    case LDAP_ALREADY_EXISTS: return "entryAlreadyExists";
    case LDAP_OTHER: return "other";
    default: return "code";
    }
}

static int is_io(int rc) {
    return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT || rc == LDAP_LOCAL_ERROR ||
           rc == LDAP_DECODING_ERROR || rc == LDAP_ENCODING_ERROR || rc == LDAP_NO_MEMORY;
}

static LDAP *connect_one(int bind_root) {
    LDAP *ld = NULL;
    if (ldap_initialize(&ld, O.url) != LDAP_SUCCESS)
        return NULL;
    int v3 = LDAP_VERSION3;
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    struct timeval tv = {(time_t)O.op_timeout, (suseconds_t)((O.op_timeout - (long)O.op_timeout) * 1e6)};
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    if (bind_root && O.bind_dn) {
        struct berval cred = {O.bind_pw ? strlen(O.bind_pw) : 0, (char *)(O.bind_pw ? O.bind_pw : "")};
        int rc = ldap_sasl_bind_s(ld, O.bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
            char m[256];
            snprintf(m, sizeof m, "bind as %s failed: %s", O.bind_dn, ldap_err2string(rc));
            note_error(m);
            ldap_unbind_ext_s(ld, NULL, NULL);
            return NULL;
        }
    } else {
        /* libldap connects on the first operation: connect now, outside the
         * timed operation, as ldbench does. */
        ber_socket_t sd;
        if (ldap_connect(ld) != LDAP_SUCCESS || ldap_get_option(ld, LDAP_OPT_DESC, &sd) != LDAP_OPT_SUCCESS) {
            ldap_unbind_ext_s(ld, NULL, NULL);
            return NULL;
        }
    }
    return ld;
}

static int search_count(LDAP *ld, const char *base, int scope, const char *filter, char **attrs,
                        LDAPControl **sctrls, unsigned long long *entries, LDAPMessage **keep) {
    LDAPMessage *res = NULL;
    struct timeval tv = {(time_t)O.op_timeout, 0};
    int rc = ldap_search_ext_s(ld, base, scope, filter, attrs, 0, sctrls, NULL, &tv, 0, &res);
    if (res) {
        int n = ldap_count_entries(ld, res);
        if (n > 0)
            *entries += n;
        if (keep)
            *keep = res;
        else
            ldap_msgfree(res);
    }
    return rc;
}

/* One operation; returns the LDAP result code (< 0 or is_io(): connection
 * problem), or -100 when there is nothing left to do (delete). */
static int do_op(LDAP *ld, enum workload w, unsigned long long *rs, unsigned long long *entries) {
    char dn[512], f[128], v[256];
    switch (w) {
    case W_BIND: {
        unsigned long long i = uniform(rs, 1, O.entries);
        char pw[32];
        snprintf(dn, sizeof dn, "uid=user%llu,ou=people,%s", i, O.base);
        snprintf(pw, sizeof pw, "pass%llu", i);
        struct berval cred = {strlen(pw), pw};
        return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
    }
    case W_SEARCH_EQ: {
        char *attrs[] = {"cn", "mail", "uidNumber", NULL};
        snprintf(f, sizeof f, "(uid=user%llu)", uniform(rs, 1, O.entries));
        unsigned long long before = *entries;
        int rc = search_count(ld, O.base, LDAP_SCOPE_SUBTREE, f, attrs, NULL, entries, NULL);
        if (rc == LDAP_SUCCESS && *entries == before)
            return -200; /* no entry */
        return rc;
    }
    case W_SEARCH_SUB: {
        /* ldbench's sub_prefix: K in [N/100, N/10] */
        unsigned long long hi = O.entries / 10 ? O.entries / 10 : 1;
        unsigned long long lo = O.entries / 100 ? O.entries / 100 : 1;
        if (lo > hi)
            lo = hi;
        char *attrs[] = {"cn", "mail", NULL};
        snprintf(f, sizeof f, "(cn=User %llu*)", uniform(rs, lo, hi));
        return search_count(ld, O.base, LDAP_SCOPE_SUBTREE, f, attrs, NULL, entries, NULL);
    }
    case W_SEARCH_PAGE: {
        char base[512];
        snprintf(base, sizeof base, "ou=people,%s", O.base);
        struct berval cookie = {0, NULL};
        int rc = LDAP_SUCCESS;
        for (int p = 0; p < (O.pages > 0 ? O.pages : 1); p++) {
            LDAPControl *pc = NULL, *ctrls[2] = {NULL, NULL};
            if ((rc = ldap_create_page_control(ld, O.page_size, &cookie, 0, &pc)) != LDAP_SUCCESS)
                break;
            ctrls[0] = pc;
            LDAPMessage *res = NULL;
            rc = search_count(ld, base, LDAP_SCOPE_ONELEVEL, "(objectClass=inetOrgPerson)", NULL, ctrls, entries,
                              &res);
            ldap_control_free(pc);
            if (cookie.bv_val) {
                ber_memfree(cookie.bv_val);
                cookie.bv_val = NULL;
                cookie.bv_len = 0;
            }
            if (rc != LDAP_SUCCESS || !res) {
                if (res)
                    ldap_msgfree(res);
                break;
            }
            LDAPControl **rctrls = NULL;
            int err = 0;
            LDAPMessage *r = ldap_first_message(ld, res);
            while (r && ldap_msgtype(r) != LDAP_RES_SEARCH_RESULT)
                r = ldap_next_message(ld, r);
            if (r)
                ldap_parse_result(ld, r, &err, NULL, NULL, NULL, &rctrls, 0);
            LDAPControl *rc_page = rctrls ? ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL) : NULL;
            ber_int_t count = 0;
            int more = 0;
            if (rc_page && ldap_parse_pageresponse_control(ld, rc_page, &count, &cookie) == LDAP_SUCCESS)
                more = cookie.bv_len > 0;
            else
                rc = LDAP_PROTOCOL_ERROR; /* the server returned no paged results control */
            if (rctrls)
                ldap_controls_free(rctrls);
            ldap_msgfree(res);
            if (!more)
                break;
        }
        if (cookie.bv_val)
            ber_memfree(cookie.bv_val);
        return rc;
    }
    case W_ADD: {
        unsigned long long n = __atomic_fetch_add(&seq_next, 1, __ATOMIC_RELAXED);
        char uid[160], mail[200];
        snprintf(uid, sizeof uid, "bench-%s-%llu", O.run_id, n);
        snprintf(dn, sizeof dn, "uid=%s,ou=people,%s", uid, O.base);
        snprintf(mail, sizeof mail, "%s@example.com", uid);
        char *oc[] = {"top", "person", "organizationalPerson", "inetOrgPerson", NULL};
        char *uidv[] = {uid, NULL}, *cnv[] = {uid, NULL}, *snv[] = {"Bench", NULL}, *mailv[] = {mail, NULL};
        char *desc[] = {"added by ldapgen", NULL};
        LDAPMod m[6] = {{LDAP_MOD_ADD, "objectClass", {.modv_strvals = oc}},
                        {LDAP_MOD_ADD, "uid", {.modv_strvals = uidv}},
                        {LDAP_MOD_ADD, "cn", {.modv_strvals = cnv}},
                        {LDAP_MOD_ADD, "sn", {.modv_strvals = snv}},
                        {LDAP_MOD_ADD, "mail", {.modv_strvals = mailv}},
                        {LDAP_MOD_ADD, "description", {.modv_strvals = desc}}};
        LDAPMod *mods[] = {&m[0], &m[1], &m[2], &m[3], &m[4], &m[5], NULL};
        return ldap_add_ext_s(ld, dn, mods, NULL, NULL);
    }
    case W_DELETE: {
        unsigned long long n = __atomic_fetch_add(&seq_next, 1, __ATOMIC_RELAXED);
        if (n >= seq_limit)
            return -100;
        snprintf(dn, sizeof dn, "uid=bench-%s-%llu,ou=people,%s", O.run_id, n, O.base);
        return ldap_delete_ext_s(ld, dn, NULL, NULL);
    }
    case W_MIXED:
        if ((double)(rnd(rs) >> 11) / (double)(1ULL << 53) < O.write_ratio)
            return do_op(ld, W_MODIFY, rs, entries);
        return do_op(ld, W_SEARCH_EQ, rs, entries);
    case W_MODIFY: {
        unsigned long long i = uniform(rs, 1, O.entries);
        unsigned long long m = __atomic_fetch_add(&mods_next, 1, __ATOMIC_RELAXED);
        snprintf(dn, sizeof dn, "uid=user%llu,ou=people,%s", i, O.base);
        snprintf(v, sizeof v, "modified by ldapgen run %s #%llu", O.run_id, m);
        char *vals[] = {v, NULL};
        LDAPMod mod = {LDAP_MOD_REPLACE, "description", {.modv_strvals = vals}};
        LDAPMod *mods[] = {&mod, NULL};
        return ldap_modify_ext_s(ld, dn, mods, NULL, NULL);
    }
    }
    return LDAP_OTHER;
}

struct worker {
    pthread_t th;
    int idx;
    struct stats st;
};

static void *worker(void *arg) {
    struct worker *wk = arg;
    struct stats *st = &wk->st;
    unsigned long long rs = (O.seed * 0x9E3779B97F4A7C15ULL) + wk->idx + 1;
    if (!rs)
        rs = 1;
    LDAP *ld = NULL;
    for (;;) {
        double now = mono();
        if (t_deadline >= 0 && now >= t_deadline)
            break;
        int measuring = now >= t_measure;
        if (measuring && O.ops_budget >= 0 && __atomic_fetch_sub(&budget, 1, __ATOMIC_RELAXED) <= 0)
            break;
        if (!ld) {
            ld = connect_one(O.w != W_BIND);
            if (!ld) {
                if (measuring)
                    error(st, "connect");
                note_error("cannot connect or bind");
                usleep(100000);
                continue;
            }
        }
        unsigned long long entries = 0;
        double t0 = mono();
        int rc = do_op(ld, O.w, &rs, &entries);
        double t1 = mono();
        int counted = t0 >= t_measure;
        if (rc == -100)
            break;
        if (rc == LDAP_SUCCESS) {
            if (counted) {
                record(st, t1 - t0);
                st->entries += entries;
            }
        } else if (rc == -200) {
            if (counted)
                error(st, "no-entry");
        } else if (rc < 0 || is_io(rc)) {
            if (counted)
                error(st, rc == LDAP_TIMEOUT ? "timeout" : "io");
            note_error(ldap_err2string(rc));
            ldap_unbind_ext_s(ld, NULL, NULL);
            ld = NULL;
        } else {
            char name[48];
            snprintf(name, sizeof name, "%d:%s", rc, code_name(rc));
            if (counted)
                error(st, name);
            note_error(name);
        }
    }
    if (ld)
        ldap_unbind_ext_s(ld, NULL, NULL);
    return NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The value at quantile q of sorted samples (nearest rank, as HDR). */
static uint32_t quantile(const uint32_t *v, size_t n, double q) {
    if (!n)
        return 0;
    size_t k = (size_t)(q * n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static void fmt_us(char *out, size_t len, uint32_t us) {
    if (us >= 10000)
        snprintf(out, len, "%.1fms", us / 1000.0);
    else
        snprintf(out, len, "%uµs", us);
}

static double cpu_of(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

static void usage(void) {
    fprintf(stderr, "usage: ldapgen --url ldap://HOST:PORT --workload "
                    "bind|search-eq|search-sub|search-page|add|modify|delete|mixed\n"
                    "       [--connections C] [--duration S | --ops N] [--warmup S] [--entries N]\n"
                    "       [--base DN] [--bind-dn DN] [--bind-password PW] [--seed S] [--run-id ID]\n"
                    "       [--write-ratio R] [--page-size P] [--pages K] [--op-timeout S]\n"
                    "       [--json FILE] [--quiet]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int have_w = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet")) {
            O.quiet = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            usage();
        if (i + 1 >= argc) {
            fprintf(stderr, "ldapgen: %s needs a value\n", a);
            usage();
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--url")) O.url = v;
        else if (!strcmp(a, "--workload")) {
            have_w = 0;
            for (int k = 0; k < (int)(sizeof WNAMES / sizeof *WNAMES); k++)
                if (!strcmp(v, WNAMES[k])) {
                    O.w = k;
                    have_w = 1;
                }
            if (!have_w) {
                fprintf(stderr, "ldapgen: unknown workload %s\n", v);
                usage();
            }
        } else if (!strcmp(a, "--connections")) O.conns = atoi(v);
        else if (!strcmp(a, "--duration")) O.duration = atof(v);
        else if (!strcmp(a, "--ops")) O.ops_budget = atoll(v);
        else if (!strcmp(a, "--warmup")) O.warmup = atof(v);
        else if (!strcmp(a, "--entries")) O.entries = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--base")) O.base = v;
        else if (!strcmp(a, "--bind-dn")) O.bind_dn = v;
        else if (!strcmp(a, "--bind-password")) O.bind_pw = v;
        else if (!strcmp(a, "--seed")) O.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--run-id")) O.run_id = v;
        else if (!strcmp(a, "--write-ratio")) O.write_ratio = atof(v);
        else if (!strcmp(a, "--page-size")) O.page_size = atoi(v);
        else if (!strcmp(a, "--pages")) O.pages = atoi(v);
        else if (!strcmp(a, "--op-timeout")) O.op_timeout = atof(v);
        else if (!strcmp(a, "--json")) O.json = v;
        else {
            fprintf(stderr, "ldapgen: unknown option %s\n", a);
            usage();
        }
    }
    if (!O.url || !have_w)
        usage();
    if (O.duration < 0 && O.ops_budget < 0)
        die("give --duration SECS or --ops N");
    if (O.conns < 1)
        O.conns = 1;
    if (O.entries < 1)
        O.entries = 1;
    if (!O.bind_pw)
        O.bind_pw = getenv("LDBENCH_BIND_PASSWORD");
    char rid[32];
    if (!O.run_id) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(rid, sizeof rid, "%lx%05lx", (unsigned long)(ts.tv_sec & 0xffffffff),
                 (unsigned long)(ts.tv_nsec / 1000));
        O.run_id = rid;
    }
    if (O.w == W_DELETE) {
        /* entries made by an earlier add run with the same --run-id */
        if (O.ops_budget < 0)
            die("delete needs --run-id of an add run and --ops = the adds it made");
        seq_limit = (unsigned long long)O.ops_budget;
    }

    double start = mono();
    t_measure = start + (O.warmup > 0 ? O.warmup : 0);
    t_deadline = O.duration >= 0 ? t_measure + O.duration : -1;
    budget = O.ops_budget;
    struct worker *wk = calloc(O.conns, sizeof *wk);
    if (!wk)
        die("out of memory");
    for (int i = 0; i < O.conns; i++) {
        wk[i].idx = i;
        if (pthread_create(&wk[i].th, NULL, worker, &wk[i]))
            die("pthread_create failed");
    }
    double now = mono();
    if (t_measure > now) {
        double d = t_measure - now;
        struct timespec ts = {(time_t)d, (long)((d - (long)d) * 1e9)};
        while (nanosleep(&ts, &ts) && errno == EINTR) {
        }
    }
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = mono();
    struct stats all = {0};
    for (int i = 0; i < O.conns; i++) {
        pthread_join(wk[i].th, NULL);
        struct stats *s = &wk[i].st;
        for (size_t k = 0; k < s->n; k++) {
            if (all.n == all.cap) {
                all.cap = all.cap ? all.cap * 2 : 65536;
                all.lat = realloc(all.lat, all.cap * sizeof *all.lat);
                if (!all.lat)
                    die("out of memory");
            }
            all.lat[all.n++] = s->lat[k];
        }
        all.entries += s->entries;
        for (int e = 0; e < s->nerr; e++)
            error_n(&all, s->errname[e], s->errcount[e]);
        free(s->lat);
    }
    double elapsed = mono() - t0;
    getrusage(RUSAGE_SELF, &r1);
    double cu = cpu_of(r1.ru_utime) - cpu_of(r0.ru_utime), cs = cpu_of(r1.ru_stime) - cpu_of(r0.ru_stime);
    qsort(all.lat, all.n, sizeof *all.lat, cmp_u32);
    unsigned long long ops = all.n, errtotal = 0;
    double sum = 0;
    for (size_t k = 0; k < all.n; k++)
        sum += all.lat[k];
    for (int e = 0; e < all.nerr; e++)
        errtotal += all.errcount[e];
    double ops_s = elapsed > 0 ? ops / elapsed : 0;
    uint32_t p50 = quantile(all.lat, all.n, 0.5), p90 = quantile(all.lat, all.n, 0.9),
             p99 = quantile(all.lat, all.n, 0.99), p999 = quantile(all.lat, all.n, 0.999),
             mx = all.n ? all.lat[all.n - 1] : 0, mn = all.n ? all.lat[0] : 0;
    double cpu_op = ops ? (cu + cs) * 1e6 / ops : 0;
    int search = O.w == W_SEARCH_EQ || O.w == W_SEARCH_SUB || O.w == W_SEARCH_PAGE;

    /* ldbench's table */
    char b50[32], b99[32], b999[32], bmx[32], errs[512] = "0";
    fmt_us(b50, sizeof b50, p50);
    fmt_us(b99, sizeof b99, p99);
    fmt_us(b999, sizeof b999, p999);
    fmt_us(bmx, sizeof bmx, mx);
    if (all.nerr) {
        errs[0] = 0;
        for (int e = 0; e < all.nerr; e++) {
            size_t l = strlen(errs);
            snprintf(errs + l, sizeof errs - l, "%s%s=%llu", e ? " " : "", all.errname[e], all.errcount[e]);
        }
    }
    printf("%-12s %5s %10s %11s %9s %9s %9s %9s  %s\n", "workload", "conns", "ops", "ops/s", "p50", "p99", "p99.9",
           "max", "errors");
    /* µs is 2 bytes for 1 column: widen by one so the columns line up */
    printf("%-12s %5d %10llu %11.1f %*s %*s %*s %*s  %s\n", WNAMES[O.w], O.conns, ops, ops_s,
           9 + (p50 < 10000), b50, 9 + (p99 < 10000), b99, 9 + (p999 < 10000), b999, 9 + (mx < 10000), bmx, errs);
    if (search && ops)
        printf("entries per op: %.2f\n", (double)all.entries / ops);
    printf("latency p50 %uµs p90 %uµs p99 %uµs max %uµs\n", p50, p90, p99, mx);
    printf("window %.2fs; generator CPU user %.2fs sys %.2fs = %.1fµs/op\n", elapsed, cu, cs, cpu_op);

    if (O.json) {
        FILE *f = fopen(O.json, "w");
        if (!f)
            die("cannot write --json file");
        fprintf(f, "{\n \"generator\": \"ldapgen\",\n \"workload\": \"%s\",\n \"url\": \"%s\",\n", WNAMES[O.w], O.url);
        fprintf(f, " \"connections\": %d,\n \"threads\": %d,\n \"elapsed_s\": %.3f,\n \"ops\": %llu,\n", O.conns,
                O.conns, elapsed, ops);
        fprintf(f, " \"ops_per_s\": %.1f,\n \"errors\": {", ops_s);
        for (int e = 0; e < all.nerr; e++)
            fprintf(f, "%s\"%s\": %llu", e ? ", " : "", all.errname[e], all.errcount[e]);
        fprintf(f, "},\n \"error_total\": %llu,\n", errtotal);
        if (search && ops)
            fprintf(f, " \"entries_per_op\": %.4f,\n", (double)all.entries / ops);
        else
            fprintf(f, " \"entries_per_op\": null,\n");
        fprintf(f,
                " \"latency\": {\"count\": %llu, \"min_us\": %u, \"mean_us\": %.1f, \"p50_us\": %u, \"p90_us\": %u, "
                "\"p99_us\": %u, \"p999_us\": %u, \"max_us\": %u},\n",
                ops, mn, ops ? sum / ops : 0.0, p50, p90, p99, p999, mx);
        fprintf(f, " \"repl_lag\": null,\n \"rate\": null,\n");
        fprintf(f, " \"client_cpu_user_s\": %.3f,\n \"client_cpu_sys_s\": %.3f,\n \"client_cpu_us_per_op\": %.1f,\n", cu,
                cs, cpu_op);
        fprintf(f, " \"run_id\": \"%s\",\n \"seed\": %llu\n}\n", O.run_id, O.seed);
        fclose(f);
    }
    free(all.lat);
    free(wk);
    return ops ? 0 : 2;
}
