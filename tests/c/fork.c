/*
 * fork.c: a client created and used before fork() keeps working in the
 * parent and in every child, as in a prefork server.
 *
 *     fork BASE_URL [CHILDREN [ORDERS]]
 *
 * The parent creates one client and builds an order with it (its token and
 * a keep-alive connection are then cached). It forks a first child that
 * only frees the client and exits: the parent's next order must still go
 * through (a child must never close or deregister what it inherited). Then
 * it forks CHILDREN children (default 4); each builds ORDERS orders (default
 * 3) while the parent builds as many, and reports its prepay ids to the
 * parent through a pipe. Every answer must name the order its process sent
 * (no process reads another's answer), every prepay id must be distinct, and
 * every child must exit with status 0 within 60 s. The parent builds one
 * more order at the end and frees the client.
 *
 * Prints "fork: N passed, M failed"; exit status 0 when none failed.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox_account.h"
#include "wxpay.h"
#include "test_support.h"

#define MAX_CHILDREN 32
#define MAX_ORDERS 16
#define MAX_IDS ((MAX_CHILDREN + 2) * (MAX_ORDERS + 2))

/* Builds order `tag`-`i` of this process; copies its prepay id into
 * `prepay_id` (size 128). 0 when the answer is for this very order. */
static int build_order(const WxPayClient *client, const char *tag, int i, char *prepay_id) {
    char no[33];
    char order[256];
    snprintf(no, sizeof no, "F%s%ldN%d", tag, (long)getpid(), i);
    snprintf(order, sizeof order,
             "{\"out_trade_no\":\"%s\",\"total_fee\":%d,\"body\":\"fork\","
             "\"client_ip\":\"196.168.1.1\"}",
             no, 100 + i);
    char *params = NULL;
    char *error = NULL;
    int32_t rc = wxpay_build_pay_params(client, order, &params, &error);
    char answered_no[64] = "";
    int ok = rc == WXPAY_OK && json_string(params, "out_trade_no", answered_no,
                                           sizeof answered_no) == 0 &&
             strcmp(answered_no, no) == 0 &&
             json_string(params, "prepayid", prepay_id, 128) == 0;
    if (!ok) {
        fprintf(stderr, "fork: pid %ld, order %s: %d (%s): %.300s\n", (long)getpid(), no, rc,
                wxpay_result_name(rc), params ? params : error ? error : "(nothing)");
    }
    wxpay_string_free(params);
    wxpay_string_free(error);
    return ok ? 0 : -1;
}

/* Writes all of `line` to the pipe `fd`; 0 on success. */
static int write_line(int fd, const char *line, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, line, len);
        if (n <= 0) {
            return -1;
        }
        line += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A child's life: ORDERS orders, each prepay id written to `out` as a line. */
static int child(const WxPayClient *client, int index, int orders, int out) {
    alarm(60); /* a hang ends as a failure, not a stuck test */
    char tag[16];
    snprintf(tag, sizeof tag, "C%d", index);
    int failures = 0;
    for (int i = 0; i < orders; i++) {
        char prepay_id[128];
        if (build_order(client, tag, i, prepay_id) != 0) {
            failures++;
            continue;
        }
        char line[160];
        int n = snprintf(line, sizeof line, "%s\n", prepay_id);
        if (write_line(out, line, (size_t)n) != 0) {
            failures++;
        }
    }
    return failures == 0 ? 0 : 1;
}

/* Waits for `pid`; 1 when it exited with status 0. */
static int exited_cleanly(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        return 0;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fork: child %ld ended with status 0x%x\n", (long)pid, status);
        return 0;
    }
    return 1;
}

static int seen(char ids[][128], int count, const char *id) {
    for (int i = 0; i < count; i++) {
        if (strcmp(ids[i], id) == 0) {
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : NULL;
    int children = argc > 2 ? atoi(argv[2]) : 4;
    int orders = argc > 3 ? atoi(argv[3]) : 3;
    if (base == NULL || children < 1 || children > MAX_CHILDREN || orders < 1 ||
        orders > MAX_ORDERS) {
        fprintf(stderr, "usage: fork BASE_URL [CHILDREN(1-%d) [ORDERS(1-%d)]]\n", MAX_CHILDREN,
                MAX_ORDERS);
        return 2;
    }
    /* Children's output must not repeat what stdio buffered before fork(). */
    setvbuf(stdout, NULL, _IONBF, 0);

    char config[1024];
    if (sandbox_config_json(config, sizeof config, base, 10000) != 0) {
        fprintf(stderr, "fork: base URL too long\n");
        return 2;
    }
    WxPayClient *client = NULL;
    char *error = NULL;
    int32_t rc = wxpay_client_new(config, &client, &error);
    if (rc != WXPAY_OK) {
        fprintf(stderr, "fork: wxpay_client_new failed: %d: %s\n", rc, error ? error : "");
        wxpay_string_free(error);
        return 1;
    }

    static char ids[MAX_IDS][128];
    int count = 0;
    check("the parent's first order", build_order(client, "P", 0, ids[count]) == 0, NULL);
    count++;

    /* A child that only frees the client and exits. */
    pid_t quiet = fork();
    if (quiet == 0) {
        wxpay_client_free(client);
        exit(0);
    }
    check("fork()", quiet > 0, NULL);
    check("a child that frees the client without a call exits cleanly",
          quiet > 0 && exited_cleanly(quiet), NULL);
    check("the parent's order after that child", build_order(client, "P", 1, ids[count]) == 0,
          NULL);
    count++;

    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) {
        perror("pipe");
        return 1;
    }
    pid_t pids[MAX_CHILDREN];
    int forked = 0;
    for (int c = 0; c < children; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(pipe_fds[0]);
            int status = child(client, c, orders, pipe_fds[1]);
            close(pipe_fds[1]);
            wxpay_client_free(client);
            exit(status);
        }
        if (pid < 0) {
            perror("fork");
            break;
        }
        pids[forked++] = pid;
    }
    close(pipe_fds[1]);
    check("every child forked", forked == children, NULL);

    /* The parent goes on while its children work. */
    int parent_ok = 1;
    for (int i = 0; i < orders; i++) {
        parent_ok &= build_order(client, "P", 2 + i, ids[count]) == 0;
        count++;
    }
    check("the parent's orders while its children run", parent_ok, NULL);

    int clean = 0;
    for (int c = 0; c < forked; c++) {
        clean += exited_cleanly(pids[c]);
    }
    check("every child built its orders and exited with status 0", clean == children, NULL);

    /* The children's prepay ids, one per line. */
    FILE *from_children = fdopen(pipe_fds[0], "r");
    char line[160];
    int from_kids = 0;
    while (from_children != NULL && fgets(line, sizeof line, from_children) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (count < MAX_IDS) {
            snprintf(ids[count++], sizeof ids[0], "%.127s", line);
        }
        from_kids++;
    }
    int distinct = 1;
    for (int i = 1; i < count; i++) {
        distinct &= !seen(ids, i, ids[i]);
    }
    if (from_children != NULL) {
        fclose(from_children);
    }
    check("every child reported all its prepay ids", from_kids == children * orders, NULL);
    check("every process got its own prepay ids (no answer crossed)", distinct, NULL);

    char last[128];
    check("the parent's order after its children", build_order(client, "P", 90, last) == 0,
          NULL);
    check("a prepay id never seen before", !seen(ids, count, last), NULL);
    wxpay_client_free(client);

    printf("fork: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
