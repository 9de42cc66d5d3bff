// The official openai npm client against a scheduler with API keys: its
// apiKey goes out as "Authorization: Bearer", a wrong one is raised as the
// client's AuthenticationError. Writes what it saw as JSON.
//   node openai_keys.mjs BASE_URL MODEL KEY OUT.json
import OpenAI from 'openai';
import { writeFileSync } from 'node:fs';
import { failure } from './openai_common.mjs';

const [baseURL, model, apiKey, out] = process.argv.slice(2);
const opts = { baseURL, maxRetries: 0, timeout: 20000 };
const r = {};


const good = new OpenAI({ ...opts, apiKey });
const c = await good.completions.create({ model, prompt: 'def add(a, b):', max_tokens: 3 });
r.completion = { text: c.choices[0].text, tokens: c.usage.completion_tokens };
r.model = (await good.models.retrieve(model)).id;
const bad = new OpenAI({ ...opts, apiKey: apiKey + 'x' });
r.wrong_key = await failure(bad.completions.create({ model, prompt: 'x', max_tokens: 1 }));
r.wrong_key_models = await failure(bad.models.list());

writeFileSync(out, JSON.stringify(r, null, 1));
