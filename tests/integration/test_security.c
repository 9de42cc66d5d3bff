/* Attacks on a running scheduler with the project's own protocol, by real
 * processes on loopback ports: a ZeroMQ client forging the routing id of
 * an HTTP caller to cancel its stream. */
#include "tests/integration/test_http_common.h"
#include "tests/integration/zclient.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define MODEL "codex-70b"

typedef hc_fixture_t fixture_t;

static uint64_t counter(const Infsched__Status *s, const char *name) {
  for (size_t i = 0; i < s->n_counters; i++)
    if (strcmp(s->counters[i]->name, name) == 0)
      return s->counters[i]->value;
  return UINT64_MAX;
}

typedef struct counts {
  uint64_t completed;
  uint64_t cancelled;
} counts_t;

static bool got_counts(const Infsched__Status *s, void *arg) {
  counts_t *c = arg;
  c->cancelled = counter(s, "cancelled");
  c->completed = s->completed;
  return true;
}

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* An HTTP caller streams a completion; ZeroMQ clients take routing ids
 * shaped as the front door's peers (its first slots and generations, in
 * the current form and the former 0 'H' one) and cancel the request ids
 * those peers would have. The stream runs to its end. */
static void test_forged_routing_id_cannot_cancel(void **state) {
  fixture_t *f = *state;
  hc_sched_start(&f->s, NULL);
  hc_worker_start(&f->s, f->dir, "sram-0", "sram-wse3", NULL, NULL);
  hc_wait_registered(&f->s, 1);

  int fd = hc_post_completion(f->s.http_port,
                              "{\"model\":\"" MODEL "\",\"prompt\":\"x\","
                              "\"max_tokens\":4000,\"stream\":true}");
  char *in = NULL;
  size_t in_len = 0;
  assert_int_equal(hc_read_until(fd, &in, &in_len, "data: ", 10000), 0);

  int forged = 0;
  for (uint32_t slot = 0; slot < 4; slot++)
    for (uint32_t gen = 1; gen <= 3; gen++)
      for (int shape = 0; shape < 2; shape++) {
        uint64_t id = (uint64_t)gen << 32 | slot;
        uint8_t rid[10] = {0, 'H'};
        uint8_t *p = shape ? rid + 2 : rid;
        put_le32(p, (uint32_t)id);
        put_le32(p + 4, gen);
        zclient_t *z = zclient_new_as(f->s.clients, rid, shape ? 10 : 8);
        assert_non_null(z);
        Infsched__Envelope env = INFSCHED__ENVELOPE__INIT;
        Infsched__Cancel c = INFSCHED__CANCEL__INIT;
        c.request_id = id;
        env.body_case = INFSCHED__ENVELOPE__BODY_CANCEL;
        env.cancel = &c;
        assert_int_equal(zclient_send(z, &env, 0), 0);
        /* A status round trip: the cancel before it has been handled. */
        Infsched__Envelope q = INFSCHED__ENVELOPE__INIT;
        Infsched__StatusQuery sq = INFSCHED__STATUS_QUERY__INIT;
        q.body_case = INFSCHED__ENVELOPE__BODY_STATUS_QUERY;
        q.status_query = &sq;
        assert_int_equal(zclient_send(z, &q, 0), 0);
        Infsched__Envelope *a = zclient_recv(z, 5000);
        assert_non_null(a);
        assert_int_equal(a->body_case, INFSCHED__ENVELOPE__BODY_STATUS);
        infsched__envelope__free_unpacked(a, NULL);
        zclient_destroy(&z);
        forged++;
      }
  counts_t mid = {0};
  zclient_wait_status(f->s.clients, got_counts, &mid, 5000);
  assert_int_equal(mid.cancelled, 0);
  assert_int_equal(mid.completed, 0); /* the stream outlived the forgeries */

  assert_int_equal(hc_read_until(fd, &in, &in_len, "data: [DONE]", 30000), 0);
  assert_null(strstr(in, "\"error\""));
  assert_non_null(strstr(in, "\"finish_reason\":\"length\""));
  free(in);
  close(fd);
  counts_t end = {0};
  zclient_wait_status(f->s.clients, got_counts, &end, 5000);
  assert_int_equal(end.cancelled, 0);
  assert_int_equal(end.completed, 1);
  assert_int_equal(forged, 24);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_forged_routing_id_cannot_cancel,
                                      hc_setup, hc_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
