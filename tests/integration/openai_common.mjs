// What the openai_*.mjs scripts share.

// The error a request raises, as the client classifies it, or null when it
// succeeds.
export async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return { status: e.status ?? null, name: e.constructor.name, message: e.message,
             code: e.code ?? null, type: e.type ?? null };
  }
}
