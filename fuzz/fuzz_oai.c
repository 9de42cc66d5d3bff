/* OpenAI request bodies, completions and chat (first byte chooses). */
#include "fuzz.h"
#include "oai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  oai_kind_t kind = data[0] & 1 ? OAI_CHAT : OAI_COMPLETIONS;
  oai_request_t r;
  char msg[256];
  const char *param;
  if (oai_parse_request(kind, (const char *)data + 1, size - 1, &r, msg,
                        sizeof msg, &param) == 0)
    oai_request_free(&r);
  return 0;
}
