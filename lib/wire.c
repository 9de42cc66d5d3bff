#include "wire.h"

#include "infsched/errors.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wire_buf_free(wire_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void wire_pack(Infsched__Envelope *env, wire_buf_t *buf) {
  env->version = WIRE_VERSION;
  size_t n = infsched__envelope__get_packed_size(env);
  if (n > buf->cap) {
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < n)
      cap *= 2;
    uint8_t *p = xrealloc(buf->data, cap);
    buf->data = p;
    buf->cap = cap;
  }
  buf->len = infsched__envelope__pack(env, buf->data);
}

int wire_unpack_with(ProtobufCAllocator *allocator, const uint8_t *data,
                     size_t len, Infsched__Envelope **out) {
  *out = NULL;
  Infsched__Envelope *env = infsched__envelope__unpack(allocator, len, data);
  if (!env)
    return INFS_EBADMSG;
  int rc = 0;
  if (env->version != WIRE_VERSION)
    rc = INFS_EVERSION;
  else if (env->body_case == INFSCHED__ENVELOPE__BODY__NOT_SET)
    rc = INFS_EBADMSG;
  if (rc) {
    infsched__envelope__free_unpacked(env, allocator);
    return rc;
  }
  *out = env;
  return 0;
}

int wire_unpack(const uint8_t *data, size_t len, Infsched__Envelope **out) {
  return wire_unpack_with(NULL, data, len, out);
}

void wire_free(Infsched__Envelope *env) {
  if (env)
    infsched__envelope__free_unpacked(env, NULL);
}

int wire_error_is_rejection(Infsched__ErrorCode code) { return code >= 100; }

const char *wire_error_name(Infsched__ErrorCode code) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      &infsched__error_code__descriptor, (int)code);
  return v ? v->name : "ERROR_UNKNOWN";
}

const char *wire_body_name(Infsched__Envelope__BodyCase c) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field(&infsched__envelope__descriptor,
                                              (unsigned)c);
  return f ? f->name : "none";
}

static Infsched__WorkerClass worker_class_to_msg(infs_worker_class_t c) {
  switch (c) {
  case INFS_WORKER_GPU:
    return INFSCHED__WORKER_CLASS__WORKER_CLASS_GPU;
  case INFS_WORKER_SRAM:
    return INFSCHED__WORKER_CLASS__WORKER_CLASS_SRAM;
  case INFS_WORKER_TPU:
    return INFSCHED__WORKER_CLASS__WORKER_CLASS_TPU;
  default:
    return INFSCHED__WORKER_CLASS__WORKER_CLASS_UNSPECIFIED;
  }
}

static infs_worker_class_t worker_class_from_msg(Infsched__WorkerClass c) {
  switch (c) {
  case INFSCHED__WORKER_CLASS__WORKER_CLASS_SRAM:
    return INFS_WORKER_SRAM;
  case INFSCHED__WORKER_CLASS__WORKER_CLASS_TPU:
    return INFS_WORKER_TPU;
  default:
    return INFS_WORKER_GPU;
  }
}

void wire_profile_to_msg(const infs_profile_t *p, Infsched__Profile *m) {
  infsched__profile__init(m);
  m->name = (char *)p->name;
  m->worker_class = worker_class_to_msg(p->cls);
  m->price_per_hour = p->price_per_hour;
  m->power_idle_w = p->power_idle_w;
  m->power_busy_w = p->power_busy_w;
  m->weights_gb = p->weights_gb;
  m->params_b = p->params_b;
  m->kv_kb_per_token = p->kv_kb_per_token;
  m->attn_mflop_per_ctx = p->attn_mflop_per_ctx;
  m->mem_bw_gbs = p->mem_bw_gbs;
  m->mem_eff = p->mem_eff;
  m->peak_tflops = p->peak_tflops;
  m->mfu = p->mfu;
  m->step_overhead_ms = p->step_overhead_ms;
  m->max_num_batched_tokens = p->max_num_batched_tokens;
  m->slo_aware_prefill = p->slo_aware_prefill;
  m->per_seq_ms = p->per_seq_ms;
  m->max_batch = p->max_batch;
  m->kv_tokens = p->kv_tokens;
  m->max_context = p->max_context;
  m->block_size = p->block_size;
  m->usd_per_mtok_in = p->usd_per_mtok_in;
  m->usd_per_mtok_out = p->usd_per_mtok_out;
}

void wire_profile_from_msg(const Infsched__Profile *m, infs_profile_t *p) {
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", m->name ? m->name : "");
  p->cls = worker_class_from_msg(m->worker_class);
  p->price_per_hour = m->price_per_hour;
  p->power_idle_w = m->power_idle_w;
  p->power_busy_w = m->power_busy_w;
  p->weights_gb = m->weights_gb;
  p->params_b = m->params_b;
  p->kv_kb_per_token = m->kv_kb_per_token;
  p->attn_mflop_per_ctx = m->attn_mflop_per_ctx;
  p->mem_bw_gbs = m->mem_bw_gbs;
  p->mem_eff = m->mem_eff;
  p->peak_tflops = m->peak_tflops;
  p->mfu = m->mfu;
  p->step_overhead_ms = m->step_overhead_ms;
  p->max_num_batched_tokens = m->max_num_batched_tokens;
  p->slo_aware_prefill = m->slo_aware_prefill;
  p->per_seq_ms = m->per_seq_ms;
  p->max_batch = m->max_batch;
  p->kv_tokens = m->kv_tokens;
  p->max_context = m->max_context;
  p->block_size = m->block_size;
  p->usd_per_mtok_in = m->usd_per_mtok_in;
  p->usd_per_mtok_out = m->usd_per_mtok_out;
}

void wire_request_from_msg(const Infsched__Request *m, infs_request_t *q) {
  *q = (infs_request_t){
      .id = m->request_id,
      .model = m->model,
      .prompt = m->prompt,
      .prompt_len = m->prompt ? strlen(m->prompt) : 0,
      .prompt_tokens = m->prompt_tokens,
      .max_tokens = m->max_tokens,
      .cls = wire_class_from_msg(m->req_class),
      .ttft_ms = m->ttft_ms,
      .ttft_ms_per_ktok = m->ttft_ms_per_ktok,
      .tpot_ms = m->tpot_ms,
      .session = m->session_id,
      .blocks = m->block_hashes,
      .n_blocks = m->n_block_hashes,
      .messages = m->messages_json,
      .options = m->options_json,
      .has_temperature = m->has_temperature,
      .has_top_p = m->has_top_p,
      .has_seed = m->has_seed,
      .temperature = m->temperature,
      .top_p = m->top_p,
      .seed = m->seed,
  };
}

void wire_kv_from_msg(const Infsched__KvHandle *m, infs_kv_handle_t *k) {
  *k = (infs_kv_handle_t){
      .handle_id = m->handle_id,
      .tokens = m->tokens,
      .bytes = m->bytes,
      .link_gbps = m->link_gbps,
      .link_latency_us = m->link_latency_us,
      .overlap = m->overlap,
      .prefill_us = m->prefill_us,
  };
  snprintf(k->source, sizeof k->source, "%s",
           m->source_worker ? m->source_worker : "");
  if (m->params_json && m->params_json[0]) {
    k->params_json = m->params_json;
    k->params_len = strlen(m->params_json);
  }
}

void wire_kv_to_msg(const infs_kv_handle_t *k, Infsched__KvHandle *m) {
  infsched__kv_handle__init(m);
  m->source_worker = (char *)k->source;
  m->handle_id = k->handle_id;
  m->tokens = k->tokens;
  m->bytes = k->bytes;
  m->link_gbps = k->link_gbps;
  m->link_latency_us = k->link_latency_us;
  m->overlap = k->overlap;
  m->prefill_us = k->prefill_us;
  m->params_json = (char *)(k->params_json ? k->params_json : "");
}

int wire_role_from_msg(Infsched__Role r, infs_role_t *out) {
  if ((unsigned)r >= INFS_ROLE_COUNT)
    return INFS_EBADREQUEST;
  *out = (infs_role_t)r;
  return 0;
}

int wire_phase_from_msg(Infsched__Phase p, infs_phase_t *out) {
  if ((unsigned)p > INFS_PHASE_DECODE)
    return INFS_EBADREQUEST;
  *out = (infs_phase_t)p;
  return 0;
}

void wire_request_to_msg(const infs_request_t *q, Infsched__Request *m) {
  infsched__request__init(m);
  m->request_id = q->id;
  m->model = (char *)q->model;
  m->prompt = (char *)q->prompt;
  m->prompt_tokens = q->prompt_tokens;
  m->max_tokens = q->max_tokens;
  m->req_class = wire_class_to_msg(q->cls);
  m->ttft_ms = q->ttft_ms;
  m->ttft_ms_per_ktok = q->ttft_ms_per_ktok;
  m->tpot_ms = q->tpot_ms;
  m->session_id = (char *)q->session;
  m->n_block_hashes = q->n_blocks;
  m->block_hashes = (uint64_t *)q->blocks;
  m->messages_json = (char *)(q->messages ? q->messages : "");
  m->options_json = (char *)(q->options ? q->options : "");
  m->has_temperature = q->has_temperature;
  m->temperature = q->temperature;
  m->has_top_p = q->has_top_p;
  m->top_p = q->top_p;
  m->has_seed = q->has_seed;
  m->seed = q->seed;
}

infs_class_t wire_class_from_msg(Infsched__RequestClass c) {
  switch (c) {
  case INFSCHED__REQUEST_CLASS__CLASS_INTERACTIVE:
    return INFS_CLASS_INTERACTIVE;
  case INFSCHED__REQUEST_CLASS__CLASS_UNSPECIFIED:
  case INFSCHED__REQUEST_CLASS__CLASS_AGENT:
    return INFS_CLASS_AGENT;
  case INFSCHED__REQUEST_CLASS__CLASS_BATCH:
    return INFS_CLASS_BATCH;
  default:
    return INFS_CLASS_COUNT;
  }
}

Infsched__RequestClass wire_class_to_msg(infs_class_t c) {
  switch (c) {
  case INFS_CLASS_INTERACTIVE:
    return INFSCHED__REQUEST_CLASS__CLASS_INTERACTIVE;
  case INFS_CLASS_BATCH:
    return INFSCHED__REQUEST_CLASS__CLASS_BATCH;
  default:
    return INFSCHED__REQUEST_CLASS__CLASS_AGENT;
  }
}

Infsched__Envelope *wire_error_msg(Infsched__Envelope *env, Infsched__Error *e,
                                   uint64_t request_id, int code,
                                   const char *message) {
  infsched__error__init(e);
  e->request_id = request_id;
  e->code = code;
  e->message = (char *)message;
  env->body_case = INFSCHED__ENVELOPE__BODY_ERROR;
  env->error = e;
  return env;
}
