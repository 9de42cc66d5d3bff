// Drives an infsched scheduler's HTTP API with the official openai npm
// client and writes what it saw as JSON, for test_http_openai to check.
//   node openai_client.mjs BASE_URL MODEL OUT.json
import OpenAI from 'openai';
import { writeFileSync } from 'node:fs';
import { failure } from './openai_common.mjs';

const [baseURL, model, out] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 20000 });
const r = {};


const c = await client.completions.create({ model, prompt: 'def add(a, b):', max_tokens: 4 },
                                          { headers: { 'x-infsched-class': 'interactive' } });
r.completion = { object: c.object, id: c.id, text: c.choices[0].text,
                 finish: c.choices[0].finish_reason, usage: c.usage, model: c.model };

let text = '', chunks = 0, finish = null;
const s = await client.completions.create({ model, prompt: 'hello', max_tokens: 5, stream: true });
for await (const ch of s) {
  chunks++;
  text += ch.choices[0]?.text ?? '';
  if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason;
}
r.completion_stream = { chunks, text, finish };

const cc = await client.chat.completions.create({
  model, max_tokens: 3,
  messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }],
});
r.chat = { object: cc.object, role: cc.choices[0].message.role,
           content: cc.choices[0].message.content, finish: cc.choices[0].finish_reason,
           usage: cc.usage };

let ctext = '', role = null, usage = null, cfinish = null;
const cs = await client.chat.completions.create({
  model, max_tokens: 4, stream: true, stream_options: { include_usage: true },
  messages: [{ role: 'user', content: 'hi' }],
});
for await (const ch of cs) {
  if (ch.usage) usage = ch.usage;
  const d = ch.choices[0]?.delta;
  if (d?.role) role = d.role;
  if (d?.content) ctext += d.content;
  if (ch.choices[0]?.finish_reason) cfinish = ch.choices[0].finish_reason;
}
r.chat_stream = { role, text: ctext, usage, finish: cfinish };

const models = await client.models.list();
r.models = models.data.map((m) => m.id);
r.model_classes = models.data[0]?.infsched?.worker_classes;
const one = await client.models.retrieve(model);
r.model = { id: one.id, object: one.object, owned_by: one.owned_by, workers: one.infsched?.workers };
r.model_missing = await failure(client.models.retrieve('no-such-model'));

r.not_found = await failure(client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 1 }));
r.bad_request = await failure(client.completions.create({ model, prompt: 'x', max_tokens: 0 }));

writeFileSync(out, JSON.stringify(r, null, 1));
