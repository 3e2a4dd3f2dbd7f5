// Sends beacon requests with Node's global fetch (undici) and prints, as one JSON object,
// what each sent and got back, for tests/clients/test_clients_node.py.
//
//   node node_fetch.mjs <track URL> <allowed origin> <run id>
const [track, origin, run] = process.argv.slice(2);

async function send(sent, url, init = {}) {
  try {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10000) });
    const body = await r.arrayBuffer();
    return {
      sent,
      status: r.status,
      type: r.headers.get("content-type"),
      len: body.byteLength,
      acao: r.headers.get("access-control-allow-origin"),
      acac: r.headers.get("access-control-allow-credentials"),
    };
  } catch (e) {
    return { sent, error: String(e.cause ?? e) };
  }
}

const query = (pairs) =>
  pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");

const out = {};

let pairs = [["ev", "get"], ["r", run], ["q", "ελληνικά 😀"], ["sym", "&=+%#?/ x"]];
out.get = await send(pairs, `${track}?${query(pairs)}`);

pairs = [["ev", "text"], ["r", run], ["q", "a b"]];
out.text = await send(pairs, track, { method: "POST", body: query(pairs) }); // text/plain

pairs = [["ev", "form"], ["r", run], ["t", "1"], ["t", "ü 2"]];
out.form = await send(pairs, track, { method: "POST", body: new URLSearchParams(pairs) });

pairs = [["ev", "formdata"], ["r", run], ["tag", "a"], ["tag", "b ελ"], ["after", "1"]];
const fd = new FormData();
for (const [k, v] of pairs.slice(0, 4)) fd.append(k, v);
fd.append("upload", new Blob(["x,y\n"], { type: "text/csv" }), "data.csv"); // skipped
fd.append(...pairs[4]);
out.formdata = await send(pairs, track, { method: "POST", body: fd });

// JSON with an Origin header, as a page's fetch sends it: from the allowed origin, and
// from one the flavor does not list (answered, stored, but no CORS headers).
const postJson = (body, from) =>
  send(body, track, {
    method: "POST",
    headers: { "Content-Type": "application/json", Origin: from },
    body: JSON.stringify(body),
  });
const json = { ev: "json", r: run, n: 1, list: ["a", "ß"], nested: { k: true } };
out.json = await postJson(json, origin);
out.json_unknown_origin = await postJson({ ...json, ev: "json2" }, "http://unknown.example");

console.log(JSON.stringify(out));
