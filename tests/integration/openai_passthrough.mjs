// Sends requests with the official openai npm client through an infsched
// scheduler to a recording upstream that this script serves itself, and
// writes what was sent and what the upstream received as JSON, for
// test_http_openai to compare.
//   node openai_passthrough.mjs BASE_URL UPSTREAM_PORT FORWARDED_MODEL SIM_MODEL OUT.json
import OpenAI from 'openai';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { failure } from './openai_common.mjs';

const [baseURL, port, model, simModel, out] = process.argv.slice(2);
const received = [];

// Answers the health probe's GET /v1/models, and every completion as a
// stream of one "ok" token, as vLLM does.
const upstream = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data: [{ id: model, object: 'model' }] }));
    return;
  }
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    const parsed = JSON.parse(body);
    received.push({ path: req.url, body: parsed });
    const chat = req.url.endsWith('/chat/completions');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (parsed.messages?.some((m) => m.content === 'call a tool')) {
      // A tool call in pieces, as vLLM streams one: name first, then the
      // arguments a few characters at a time.
      const pieces = [
        { index: 0, id: 'call_9', type: 'function', function: { name: 'read_file', arguments: '' } },
        { index: 0, function: { arguments: '{"path":' } },
        { index: 0, function: { arguments: '"b.c"}' } }];
      for (const p of pieces)
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { tool_calls: [p] }, finish_reason: null }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] })}\n\n`);
      res.end('data: [DONE]\n\n');
      return;
    }
    const choice = chat ? { index: 0, delta: { content: 'ok' }, finish_reason: 'stop' }
                        : { index: 0, text: 'ok', finish_reason: 'stop' };
    // Log probabilities when asked, in each API's own shape.
    if (parsed.logprobs)
      choice.logprobs = chat
        ? { content: [{ token: 'ok', logprob: -0.25, bytes: [111, 107], top_logprobs: [] }] }
        : { tokens: ['ok'], token_logprobs: [-0.25], top_logprobs: [{ ok: -0.25 }], text_offset: [0] };
    res.write(`data: ${JSON.stringify({ choices: [choice] })}\n\n`);
    res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 1 } })}\n\n`);
    res.end('data: [DONE]\n\n');
  });
});
await new Promise((ok) => upstream.listen(Number(port), '127.0.0.1', ok));

// The forwarding worker was unhealthy while nothing listened here: its
// requests go out once the scheduler has heard from it that a probe found
// this upstream up, as /healthz counts it serving with the sim worker.
const healthz = new URL('../healthz', `${baseURL}/`);
for (const end = Date.now() + 15000; ;) {
  const h = await (await fetch(healthz)).json();
  if (h.serving === 2)
    break;
  if (Date.now() > end)
    throw new Error(`the forwarding worker does not serve: ${JSON.stringify(h)}`);
  await new Promise((ok) => setTimeout(ok, 20));
}

const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 20000 });
const tools = [{ type: 'function', function: { name: 'read_file', description: 'Reads a file',
  parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } } }];
const sent = [
  { kind: 'completions', body: { model, prompt: 'def add(a, b):', max_tokens: 8, stop: ['\n\n', 'def '],
    temperature: 0.2, top_p: 0.95, seed: 1234, logprobs: 2, user: 'u-1' } },
  { kind: 'chat', body: { model, max_tokens: 16, temperature: 0, seed: -7, stop: 'END',
    messages: [
      { role: 'system', content: 'You are a careful reviewer.' },
      { role: 'user', name: 'ann', content: [{ type: 'text', text: 'Review ' }, { type: 'text', text: 'this.' }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
        function: { name: 'read_file', arguments: '{"path":"a.c"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'int main(void) { return 0; }' },
      { role: 'user', content: 'And now?' }],
    tools, tool_choice: 'auto', response_format: { type: 'text' }, top_logprobs: 3, logprobs: true } },
  { kind: 'chat', stream: true, body: { model, max_tokens: 4, stream: true, stop: ['x'],
    messages: [{ role: 'system', content: 'brief' }, { role: 'user', content: 'hi' }] } },
  { kind: 'chat', body: { model, max_tokens: 16, tools,
    messages: [{ role: 'user', content: 'call a tool' }] } },
  { kind: 'chat', stream: true, body: { model, max_tokens: 16, tools, stream: true,
    messages: [{ role: 'user', content: 'call a tool' }] } },
];
const answers = [];
for (const s of sent) {
  const api = s.kind === 'chat' ? client.chat.completions : client.completions;
  if (s.stream) {
    let text = '', finish = null;
    const calls = [];
    for await (const ch of await api.create(s.body)) {
      const d = ch.choices[0]?.delta;
      text += d?.content ?? '';
      for (const p of d?.tool_calls ?? []) {
        const c = calls[p.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } };
        if (p.id) c.id = p.id;
        c.function.name += p.function?.name ?? '';
        c.function.arguments += p.function?.arguments ?? '';
      }
      finish = ch.choices[0]?.finish_reason ?? finish;
    }
    answers.push({ text, finish, tool_calls: calls });
  } else {
    const a = await api.create(s.body);
    answers.push({ text: a.choices[0].text ?? a.choices[0].message.content,
                   finish: a.choices[0].finish_reason,
                   tool_calls: a.choices[0].message?.tool_calls,
                   logprobs: a.choices[0].logprobs });
  }
}

const refused = await failure(client.chat.completions.create({
  model: simModel, max_tokens: 4, tools, messages: [{ role: 'user', content: 'hi' }] }));
const stopped = await client.completions.create({ model: simModel, prompt: 'x', max_tokens: 50,
                                                  stop: ['\n'], seed: 9 });
const stopped_again = await client.completions.create({ model: simModel, prompt: 'x', max_tokens: 50,
                                                        stop: ['\n'], seed: 9 });
upstream.close();
writeFileSync(out, JSON.stringify({ sent, received, answers, refused,
  stopped: { tokens: stopped.usage.completion_tokens, finish: stopped.choices[0].finish_reason },
  stopped_again: { tokens: stopped_again.usage.completion_tokens } }, null, 1));
