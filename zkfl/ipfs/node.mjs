// zkfl's IPFS node: Helia (IPFS in JavaScript) behind one local HTTP port that speaks
// the Kubo RPC subset zkfl uses (/api/v0/...), a trustless gateway (/ipfs/{cid}) and
// the IPFS Pinning Service API (/pins).
//
// Usage: node node.mjs --modules <tools/node_modules> [--repo DIR] [--port N]
//          [--swarm-port N] [--swarm-host IP] [--peer MULTIADDR]... [--timeout SECONDS]
// When ready it prints one JSON line on stdout, {"api", "gateway", "peer_id", "addresses"},
// and nothing else there; logs go to stderr. The pinning token comes from the environment
// (ZKFL_IPFS_PIN_TOKEN) only, never from the command line, and is never logged.
//
// The node never joins the public network: no bootstrap list, no mDNS, no DHT, no
// delegated routing, no public gateways. Blocks come from its own store or, over
// bitswap (TCP + noise + yamux), from the peers it is told about with --peer (redialled
// every few seconds while disconnected) or /api/v0/swarm/connect.
//
// Files are added the way zkfl names them (and `ipfs add --cid-version 1 --raw-leaves`
// does): CIDv1, raw leaves, 256 KiB fixed-size chunks, balanced DAG of 174 links.
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { once, setMaxListeners } from "node:events";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

// Node 20 lacks Promise.withResolvers (Node 22), which libp2p uses: define it before any of it loads.
Promise.withResolvers ??= function withResolvers() {
  let resolve, reject;
  const promise = new this((yes, no) => { resolve = yes; reject = no; });
  return { promise, resolve, reject };
};

const CHUNK_SIZE = 262_144;
const MAX_LINKS = 174;
const PIN_TIMEOUT_MS = 300_000; // a whole DAG, fetched block by block
const PIN_ANSWER_MS = 10_000; // POST /pins answers "pinned" if done by then, else "pinning"
const MAX_TIMEOUT_MS = 3_600_000;
const REDIAL_MS = 3_000;
const MAX_UPLOAD = 1 << 30;
const RAW_BLOCK = "application/vnd.ipld.raw";

const { values: opts } = parseArgs({
  options: {
    modules: { type: "string" },
    repo: { type: "string" },
    port: { type: "string", default: "0" },
    "swarm-port": { type: "string" },
    "swarm-host": { type: "string", default: "127.0.0.1" },
    peer: { type: "string", multiple: true, default: [] },
    timeout: { type: "string", default: "30" },
  },
});
const DEFAULT_TIMEOUT_MS = Number(opts.timeout) * 1000;
const PIN_TOKEN = process.env.ZKFL_IPFS_PIN_TOKEN || null;
delete process.env.ZKFL_IPFS_PIN_TOKEN; // nothing this process starts or dumps sees it

const log = (message) => process.stderr.write(`${new Date().toISOString()} ${message}\n`);

// A refusal to start with a reason the user acts on: logged as one line, no stack.
class StartError extends Error {}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// ------------------------------------------------------------------ module loading

// The npm packages live in tools/node_modules, not next to this file (it ships in the
// Python package): import each one by the file its package.json exports for `import`.
async function load(name, subpath = ".") {
  const dir = path.join(opts.modules, ...name.split("/"));
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const exported = pkg.exports;
  const map = typeof exported === "string" || Object.keys(exported ?? {}).every((k) => !k.startsWith("."))
    ? { ".": exported } : exported;
  const entry = pickEntry(map[subpath]) ?? (subpath === "." ? pkg.module ?? pkg.main : undefined);
  if (entry == null) throw new Error(`${name}: no entry point for ${subpath} in ${dir}/package.json`);
  return import(pathToFileURL(path.join(dir, entry)).href);
}

function pickEntry(target) {
  if (typeof target === "string" || target == null) return target ?? undefined;
  return pickEntry(target.import) ?? pickEntry(target.node) ?? pickEntry(target.default);
}

async function loadAll() {
  const names = [["helia"], ["@helia/libp2p"], ["@helia/bitswap"], ["@helia/unixfs"],
    ["ipfs-unixfs-importer"], ["ipfs-unixfs-importer", "./chunker"], ["ipfs-unixfs-importer", "./layout"],
    ["@libp2p/tcp"], ["@libp2p/noise"], ["@libp2p/yamux"], ["@libp2p/identify"],
    ["@multiformats/multiaddr"], ["multiformats"], ["blockstore-fs"], ["datastore-fs"]];
  const mods = await Promise.all(names.map(([name, sub]) => load(name, sub)));
  const heliaVersion = JSON.parse(fs.readFileSync(path.join(opts.modules, "helia", "package.json"), "utf8")).version;
  return Object.assign({ heliaVersion }, ...mods);
}

// ------------------------------------------------------------------ repo

// One process per repo: a second node on the same blocks and keys would corrupt both.
function claimRepo(repo) {
  const pidFile = path.join(repo, "node.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(pidFile, String(process.pid), { flag: "wx" });
      process.on("exit", () => { try { fs.unlinkSync(pidFile); } catch { /* already gone */ } });
      return;
    } catch (error) {
      if (error.code !== "EEXIST") throw error;
      const owner = Number(fs.readFileSync(pidFile, "utf8"));
      if (owner && isAlive(owner)) throw new StartError(`repo ${repo} is in use by process ${owner}`);
      fs.rmSync(pidFile, { force: true }); // left by a node that died
    }
  }
  throw new Error(`cannot claim repo ${repo}`);
}

function isAlive(pid) {
  try { process.kill(pid, 0); return true; } catch (error) { return error.code === "EPERM"; }
}

// The swarm port is kept in the repo, so a restarted node comes back at the same
// multiaddr and the peers that redial it find it again.
async function swarmPort(repo) {
  if (opts["swarm-port"] != null) return Number(opts["swarm-port"]);
  if (repo == null) return 0;
  let saved = 0;
  try { saved = JSON.parse(fs.readFileSync(path.join(repo, "swarm.json"), "utf8")).port; } catch { return 0; }
  const server = net.createServer();
  try {
    await new Promise((resolve, reject) => server.once("error", reject).listen(saved, opts["swarm-host"], resolve));
    return saved;
  } catch {
    log(`swarm port ${saved} is taken: using a free one (peers must be told the new address)`);
    return 0;
  } finally {
    server.close();
  }
}

// ------------------------------------------------------------------ the node

async function startNode(m, repo) {
  let blockstore, datastore;
  if (repo != null) {
    blockstore = new m.FsBlockstore(path.join(repo, "blocks"));
    datastore = new m.FsDatastore(path.join(repo, "datastore"));
    await blockstore.open();
    await datastore.open();
  }
  const port = await swarmPort(repo);
  // withLibp2pLight and createHeliaLight add nothing we did not list here: createHelia
  // would add delegated routing, public gateways, the DHT, mDNS and bootstrap peers.
  // The peer key is loaded from (or created in) the datastore, so it survives restarts.
  const libp2p = {
    addresses: { listen: [`/ip4/${opts["swarm-host"]}/tcp/${port}`] },
    transports: [m.tcp()],
    connectionEncrypters: [m.noise()],
    streamMuxers: [m.yamux()],
    peerDiscovery: [],
    services: { identify: m.identify() },
  };
  const helia = m.withBitswap(m.withLibp2pLight(m.createHeliaLight({ blockstore, datastore, routers: [] }), libp2p));
  await helia.start();
  if (repo != null) {
    const tcpPort = helia.libp2p.getMultiaddrs()
      .map((a) => Number(a.getComponents().find((c) => c.name === "tcp")?.value)).find(Boolean);
    fs.writeFileSync(path.join(repo, "swarm.json"), JSON.stringify({ port: tcpPort }));
  }
  return { helia, blockstore, datastore };
}

// Peers from --peer: dialled at start, then redialled whenever the connection is gone.
function peerKeeper(m, helia) {
  const wanted = opts.peer.map((text) => {
    const addr = m.multiaddr(text);
    const peer = addr.getComponents().find((c) => c.name === "p2p")?.value ?? null;
    return { text, addr, peer, dialing: false, up: null };
  });
  const connected = (peer) => peer != null &&
    helia.libp2p.getConnections().some((c) => c.remotePeer.toString() === peer && c.status === "open");
  const dialOne = async (w) => {
    if (w.dialing || connected(w.peer)) return;
    w.dialing = true;
    try {
      const connection = await helia.libp2p.dial(w.addr, { signal: AbortSignal.timeout(5_000) });
      w.peer = connection.remotePeer.toString();
      if (w.up !== true) log(`connected to peer ${w.text}`);
      w.up = true;
    } catch (error) {
      if (w.up !== false) log(`peer ${w.text} not reachable (${error.message}); retrying every ${REDIAL_MS / 1000} s`);
      w.up = false;
    } finally {
      w.dialing = false;
    }
  };
  const dialAll = () => Promise.all(wanted.map(dialOne)); // never rejects: dialOne logs
  return {
    dialAll,
    // Before a fetch: redial a lost peer now rather than at the next tick (not awaited,
    // bitswap sends the wantlist to a peer as soon as it connects).
    kick: () => { dialAll(); },
    dial: async (text) => helia.libp2p.dial(m.multiaddr(text), { signal: AbortSignal.timeout(10_000) }),
  };
}

// ------------------------------------------------------------------ helpers

function parseDuration(text, fallback) {
  if (text == null || text === "") return fallback;
  const units = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw new HttpError(400, `invalid timeout ${JSON.stringify(text)}: use a duration such as 30s, 500ms or 2m`);
  }
  return Math.min(parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]], 0), MAX_TIMEOUT_MS);
}

function count(query, key) {
  const value = query.get(key);
  if (value == null) return undefined;
  if (!/^\d+$/.test(value)) throw new HttpError(400, `invalid ${key}: ${JSON.stringify(value)} (a byte count)`);
  return Number(value);
}

function flag(query, key, fallback) {
  const value = query.get(key);
  if (value == null) return fallback;
  if (["", "true", "1"].includes(value)) return true;
  if (["false", "0"].includes(value)) return false;
  throw new HttpError(400, `invalid value for ${key}: ${JSON.stringify(value)} (true or false)`);
}

// The request's signal: it aborts on the timeout or when the client goes away.
function requestSignal(res, timeoutMs) {
  const gone = new AbortController();
  res.on("close", () => { if (!res.writableFinished) gone.abort(new Error("client disconnected")); });
  const signal = AbortSignal.any([gone.signal, AbortSignal.timeout(timeoutMs)]);
  setMaxListeners(Infinity, signal); // every block fetched under it listens to it
  return signal;
}

function explain(error, signal, what) {
  if (signal?.aborted && signal.reason?.name === "TimeoutError") {
    return new HttpError(504, `timed out fetching ${what}: no connected peer sent it (is one that has it peered?)`);
  }
  return error;
}

function quietTimeout(ms) {
  const signal = AbortSignal.timeout(ms);
  setMaxListeners(Infinity, signal);
  return signal;
}

async function readBody(req, limit) {
  const chunks = [];
  let total = 0;
  for await (const chunk of req) {
    total += chunk.length;
    if (total > limit) throw new HttpError(413, `request body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

// One file part of a multipart/form-data body, as `ipfs add` and requests send it.
function filePart(body, contentType) {
  const match = /^multipart\/form-data;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  if (match == null) throw new HttpError(400, "add expects a multipart/form-data body with one file part");
  const delimiter = Buffer.from(`--${match[1] ?? match[2]}`);
  const start = body.indexOf(delimiter);
  const headerEnd = start < 0 ? -1 : body.indexOf("\r\n\r\n", start);
  const end = headerEnd < 0 ? -1 : body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), headerEnd + 4);
  if (end < 0) throw new HttpError(400, "malformed multipart body: no complete file part");
  const after = body.subarray(end + 2 + delimiter.length, end + 4 + delimiter.length).toString("latin1");
  if (after !== "--") throw new HttpError(400, "add takes exactly one file per request");
  const headers = body.subarray(start + delimiter.length, headerEnd).toString("utf8");
  const name = /filename="([^"]*)"|filename=([^;\r\n]*)/i.exec(headers);
  let filename = name?.[1] ?? name?.[2] ?? "";
  try { filename = decodeURIComponent(filename); } catch { /* not escaped */ }
  return { filename, content: body.subarray(headerEnd + 4, end) };
}

async function writeAll(res, iterator, first) {
  for (let next = first; !next.done; next = await iterator.next()) {
    if (!res.write(next.value)) await once(res, "drain");
  }
  res.end();
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body) + "\n";
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

// ------------------------------------------------------------------ the API

function makeApi(m, node, keeper, pinning) {
  const { helia } = node;
  const fsx = m.unixfs(helia);

  const parseCid = (text) => {
    if (text == null || text === "") throw new HttpError(400, 'argument "arg" is required: a CID');
    const bare = text.replace(/^\/ipfs\//, "");
    if (bare.includes("/")) throw new HttpError(400, `${text}: paths inside a DAG are not served, only CIDs`);
    try { return m.CID.parse(bare); } catch (error) { throw new HttpError(400, `invalid CID ${JSON.stringify(text)}: ${error.message}`); }
  };

  const getBlock = async (cid, signal) => {
    keeper.kick();
    const parts = [];
    try {
      for await (const part of helia.blockstore.get(cid, { signal })) parts.push(part);
    } catch (error) {
      throw explain(error, signal, `block ${cid}`);
    }
    return Buffer.concat(parts);
  };

  // Fetches every block of the DAG (from peers if needed) and pins it; true if the pin is new.
  const pin = async (cid, signal, recursive = true) => {
    keeper.kick();
    try {
      for await (const _ of helia.pins.add(cid, { signal, depth: recursive ? Infinity : 0 })) { /* walk */ }
      return true;
    } catch (error) {
      if (error.name === "AlreadyPinnedError") return false;
      throw explain(error, signal, `the DAG of ${cid}`);
    }
  };

  // Opens the file (fetching its root) before answering, so a missing CID gets an error status.
  const openFile = async (cid, signal, options = {}) => {
    keeper.kick();
    try {
      const stat = await fsx.stat(cid.toString(), { signal });
      if (stat.type === "directory") throw new HttpError(501, `${cid} is a directory: only files are served`);
      const iterator = fsx.cat(cid.toString(), { signal, ...options })[Symbol.asyncIterator]();
      return { stat, iterator, first: await iterator.next() };
    } catch (error) {
      throw explain(error, signal, cid.toString());
    }
  };

  const add = async (req, res, query) => {
    if ((query.get("cid-version") ?? "1") !== "1") {
      throw new HttpError(400, "this node adds with CIDv1 only (cid-version=1), the way zkfl names artifacts");
    }
    if (!flag(query, "raw-leaves", true)) throw new HttpError(400, "this node adds with raw leaves only (raw-leaves=true)");
    if ((query.get("hash") ?? "sha2-256") !== "sha2-256") throw new HttpError(400, "this node hashes with sha2-256 only");
    const chunker = /^size-(\d+)$/.exec(query.get("chunker") ?? `size-${CHUNK_SIZE}`);
    if (chunker == null || Number(chunker[1]) < 1 || Number(chunker[1]) > 1 << 20) {
      throw new HttpError(400, `unsupported chunker ${query.get("chunker")}: use size-N (N up to 1 MiB)`);
    }
    for (const key of ["wrap-with-directory", "trickle", "only-hash", "inline", "nocopy", "fscache"]) {
      if (flag(query, key, false)) throw new HttpError(400, `${key}=true is not supported by this node`);
    }
    const { filename, content } = filePart(await readBody(req, MAX_UPLOAD), req.headers["content-type"]);
    let size = 0; // Kubo's Size: the bytes of every block in the DAG
    const counting = { put: (cid, bytes, options) => { size += bytes.length; return helia.blockstore.put(cid, bytes, options); } };
    const { cid } = await m.importFile({ content }, counting, {
      cidVersion: 1, rawLeaves: true, reduceSingleLeafToSelf: true,
      chunker: m.fixedSize({ chunkSize: Number(chunker[1]) }), layout: m.balanced({ maxChildrenPerNode: MAX_LINKS }),
    });
    if (flag(query, "pin", true)) await pin(cid, quietTimeout(PIN_TIMEOUT_MS));
    sendJson(res, 200, { Name: filename || cid.toString(), Hash: cid.toString(), Size: String(size) });
  };

  const cat = async (req, res, query, signal) => {
    const cid = parseCid(query.get("arg"));
    const file = await openFile(cid, signal, { offset: count(query, "offset"), length: count(query, "length") });
    res.writeHead(200, { "Content-Type": "application/octet-stream", "X-Stream-Output": "1" });
    await writeAll(res, file.iterator, file.first);
  };

  const blockGet = async (req, res, query, signal) => {
    const bytes = await getBlock(parseCid(query.get("arg")), signal);
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": bytes.length });
    res.end(bytes);
  };

  const pinAdd = async (req, res, query, signal) => {
    const cids = query.getAll("arg").map(parseCid);
    if (cids.length === 0) parseCid(null);
    for (const cid of cids) await pin(cid, signal, flag(query, "recursive", true));
    sendJson(res, 200, { Pins: cids.map(String) });
  };

  const id = async (req, res) => sendJson(res, 200, {
    ID: helia.libp2p.peerId.toString(),
    Addresses: helia.libp2p.getMultiaddrs().map(String),
    AgentVersion: `zkfl/helia-${m.heliaVersion}`,
    Protocols: helia.libp2p.getProtocols(),
  });

  const version = async (req, res) => sendJson(res, 200, {
    Version: `helia-${m.heliaVersion}`, System: `node-${process.version}`,
  });

  const swarmConnect = async (req, res, query, signal) => {
    const addrs = query.getAll("arg");
    if (addrs.length === 0) throw new HttpError(400, 'argument "address" is required: a multiaddr');
    const strings = [];
    for (const text of addrs) {
      let addr;
      try { addr = m.multiaddr(text); } catch (error) { throw new HttpError(400, `invalid multiaddr ${text}: ${error.message}`); }
      const connection = await helia.libp2p.dial(addr, { signal });
      strings.push(`connect ${connection.remotePeer} success`);
    }
    sendJson(res, 200, { Strings: strings });
  };

  const swarmPeers = async (req, res) => sendJson(res, 200, {
    Peers: helia.libp2p.getConnections().filter((c) => c.status === "open")
      .map((c) => ({ Addr: c.remoteAddr.toString(), Peer: c.remotePeer.toString() })),
  });

  const rpcs = {
    add, cat, "block/get": blockGet, "pin/add": pinAdd, id, version,
    "swarm/connect": swarmConnect, "swarm/peers": swarmPeers,
  };

  const unpin = async (cid) => { for await (const _ of helia.pins.rm(cid)) { /* walk */ } };
  const addresses = () => helia.libp2p.getMultiaddrs().map(String);
  return { rpcs, parseCid, getBlock, pin, unpin, openFile, addresses, keeper, pinning };
}

// ------------------------------------------------------------------ HTTP routes

function requireLoopbackHost(req) {
  const port = req.socket.localPort;
  const allowed = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
  if (!allowed.includes(req.headers.host)) throw new HttpError(403, `host ${req.headers.host} is not this node's`);
}

async function rpc(api, req, res, url) {
  const handler = api.rpcs[url.pathname.slice("/api/v0/".length)];
  if (handler == null) throw new HttpError(404, `unknown command ${url.pathname}`);
  if (req.method !== "POST") throw new HttpError(405, `${url.pathname} takes POST (Kubo RPC)`);
  // A web page may POST here from the user's browser; only a same-origin page may. And a page
  // whose name resolves to 127.0.0.1 (DNS rebinding) is same-origin with itself: so the Host
  // must be a loopback name, which no other site's page can send.
  requireLoopbackHost(req);
  const origin = req.headers.origin;
  if (origin != null && origin !== `http://${req.headers.host}`) throw new HttpError(403, `origin ${origin} is not allowed`);
  const signal = requestSignal(res, parseDuration(url.searchParams.get("timeout"), url.pathname.endsWith("pin/add") ? PIN_TIMEOUT_MS : DEFAULT_TIMEOUT_MS));
  await handler(req, res, url.searchParams, signal);
}

async function gateway(api, req, res, url) {
  if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "the gateway takes GET or HEAD");
  let text = url.pathname.slice("/ipfs/".length).replace(/\/$/, "");
  try { text = decodeURIComponent(text); } catch { throw new HttpError(400, `malformed path ${url.pathname}`); }
  const cid = api.parseCid(text);
  const accept = req.headers.accept ?? "";
  const format = url.searchParams.get("format") ?? (accept.includes(RAW_BLOCK) ? "raw" : accept.includes("application/vnd.ipld.car") ? "car" : null);
  if (format != null && format !== "raw") throw new HttpError(406, `format ${format} is not served: use format=raw or none`);
  const signal = requestSignal(res, parseDuration(url.searchParams.get("timeout"), DEFAULT_TIMEOUT_MS));
  const etag = format === "raw" ? `"${cid}.raw"` : `"${cid}"`;
  const headers = {
    Etag: etag, "Cache-Control": "public, max-age=29030400, immutable", "X-Ipfs-Path": `/ipfs/${cid}`,
    "X-Content-Type-Options": "nosniff", Vary: "Accept",
  };
  if (req.headers["if-none-match"] === etag) { res.writeHead(304, headers); res.end(); return; }
  if (format === "raw") {
    const bytes = await api.getBlock(cid, signal);
    res.writeHead(200, { ...headers, "Content-Type": RAW_BLOCK, "Content-Length": bytes.length,
      "Content-Disposition": `attachment; filename="${cid}.bin"` });
    res.end(req.method === "HEAD" ? undefined : bytes);
    return;
  }
  const file = await api.openFile(cid, signal);
  res.writeHead(200, { ...headers, "Content-Type": "application/octet-stream", "Content-Length": String(file.stat.size) });
  if (req.method === "HEAD") { res.end(); await file.iterator.return?.(); return; }
  await writeAll(res, file.iterator, file.first);
}

// ------------------------------------------------------------------ pinning service

function makePinning(repo) {
  const file = repo == null ? null : path.join(repo, "remote-pins.json");
  const records = new Map();
  if (file != null && fs.existsSync(file)) {
    for (const record of JSON.parse(fs.readFileSync(file, "utf8"))) records.set(record.requestid, record);
  }
  const save = () => { if (file != null) fs.writeFileSync(file, JSON.stringify([...records.values()])); };
  return { records, save };
}

function authorised(req) {
  const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
  if (PIN_TOKEN == null || given == null) return false;
  const digest = (text) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(given), digest(PIN_TOKEN));
}

function startPin(api, record) {
  record.status = "pinning";
  const cid = api.parseCid(record.pin.cid);
  for (const origin of record.pin.origins ?? []) {
    api.keeper.dial(origin).catch(() => { /* best effort: the pin may come from other peers */ });
  }
  return api.pin(cid, quietTimeout(PIN_TIMEOUT_MS)).then(
    (created) => { record.status = "pinned"; record._ownsPin = created; },
    (error) => { record.status = "failed"; record.info = { status_details: error.message }; },
  ).finally(() => api.pinning.save());
}

async function pins(api, req, res, url) {
  if (!authorised(req)) {
    const details = PIN_TOKEN == null ? "this node has no pinning token (start it with ZKFL_IPFS_PIN_TOKEN set)" : "missing or wrong bearer token";
    throw new HttpError(401, details);
  }
  const { records, save } = api.pinning;
  const requestid = url.pathname.startsWith("/pins/") ? url.pathname.slice("/pins/".length) : null;
  if (requestid == null && req.method === "POST") {
    const body = pinRequest(api, await readBody(req, 1 << 20));
    const record = {
      requestid: randomUUID(), status: "queued", created: new Date().toISOString(),
      pin: { cid: body.cid, name: body.name ?? null, origins: body.origins ?? [], meta: body.meta ?? {} },
      delegates: api.addresses(), info: {},
    };
    records.set(record.requestid, record);
    save();
    const done = startPin(api, record);
    const wait = parseDuration(url.searchParams.get("timeout"), PIN_ANSWER_MS);
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, wait).unref())]);
    sendJson(res, 202, shown(record));
    return;
  }
  if (requestid == null && req.method === "GET") {
    sendJson(res, 200, listPins(records, url.searchParams));
    return;
  }
  const record = requestid == null ? null : records.get(requestid);
  if (record == null) throw new HttpError(404, `no pin request ${requestid}`);
  if (req.method === "GET") { sendJson(res, 200, shown(record)); return; }
  if (req.method === "DELETE") {
    records.delete(requestid);
    // Unpinned only if this service made the pin and no other request still wants it.
    const owner = [...records.values()].find((r) => r.pin.cid === record.pin.cid && r.status === "pinned");
    if (owner != null && record._ownsPin) owner._ownsPin = true;
    else if (record._ownsPin) await api.unpin(api.parseCid(record.pin.cid));
    save();
    res.writeHead(202); res.end();
    return;
  }
  throw new HttpError(405, `${req.method} ${url.pathname} is not supported`);
}

// A Pin object (cid, name, origins, meta), checked before anything is recorded.
function pinRequest(api, bytes) {
  let body;
  try { body = JSON.parse(bytes.toString("utf8")); } catch { body = null; }
  if (body == null || typeof body !== "object") throw new HttpError(400, 'the body must be a JSON Pin object: {"cid": ..., "name": ...}');
  api.parseCid(typeof body.cid === "string" ? body.cid : null);
  const origins = body.origins ?? [];
  if (!Array.isArray(origins) || !origins.every((o) => typeof o === "string")) throw new HttpError(400, "origins must be a list of multiaddrs");
  if (body.name != null && typeof body.name !== "string") throw new HttpError(400, "name must be a string");
  if (body.meta != null && typeof body.meta !== "object") throw new HttpError(400, "meta must be an object");
  return body;
}

function listPins(records, query) {
  const cids = query.get("cid")?.split(",").filter(Boolean);
  const statuses = (query.get("status") ?? "pinned").split(",");
  const name = query.get("name");
  const before = query.get("before"), after = query.get("after");
  const limit = Math.min(Number(query.get("limit") ?? 10) || 10, 1000);
  const matches = [...records.values()].filter((r) => statuses.includes(r.status)
    && (cids == null || cids.includes(r.pin.cid)) && (name == null || r.pin.name === name)
    && (before == null || r.created < before) && (after == null || r.created > after))
    .sort((a, b) => b.created.localeCompare(a.created));
  return { count: matches.length, results: matches.slice(0, limit).map(shown) };
}

// A pin request as the Pinning Service API shows it, without this node's own bookkeeping.
const shown = (record) => Object.fromEntries(Object.entries(record).filter(([key]) => !key.startsWith("_")));

// ------------------------------------------------------------------ errors and main

function fail(res, url, error) {
  const status = error instanceof HttpError ? error.status : 500;
  if (status >= 500 && !(error instanceof HttpError)) log(`${url?.pathname}: ${error.stack ?? error}`);
  if (res.headersSent) { res.destroy(error); return; } // a truncated body, never a silently short file
  const message = error.message ?? String(error);
  if (url?.pathname.startsWith("/api/v0/")) {
    // Kubo answers RPC errors with 500, except requests it refuses as malformed.
    const code = [400, 401, 403, 404, 405, 406, 413].includes(status) ? status : 500;
    sendJson(res, code, { Message: message, Code: 0, Type: "error" });
  } else if (url?.pathname === "/pins" || url?.pathname.startsWith("/pins/")) {
    const reason = { 400: "BAD_REQUEST", 401: "UNAUTHORIZED", 404: "NOT_FOUND" }[status] ?? "INTERNAL_SERVER_ERROR";
    sendJson(res, status, { error: { reason, details: message } });
  } else {
    res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" });
    res.end(`${message}\n`);
  }
}

async function route(api, req, res) {
  let url;
  try {
    url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname.startsWith("/api/v0/")) await rpc(api, req, res, url);
    else if (url.pathname.startsWith("/ipfs/")) await gateway(api, req, res, url);
    else if (url.pathname === "/pins" || url.pathname.startsWith("/pins/")) await pins(api, req, res, url);
    else throw new HttpError(404, `no such endpoint: ${url.pathname}`);
  } catch (error) {
    fail(res, url, error);
  }
}

async function main() {
  if (opts.modules == null) throw new StartError("--modules <tools/node_modules> is required");
  for (const key of ["port", "swarm-port"]) {
    if (opts[key] != null && !(/^\d+$/.test(opts[key]) && Number(opts[key]) < 65536)) throw new StartError(`--${key}: not a port: ${opts[key]}`);
  }
  if (!(DEFAULT_TIMEOUT_MS > 0)) throw new StartError(`--timeout: not a number of seconds: ${opts.timeout}`);
  const repo = opts.repo == null ? null : path.resolve(opts.repo);
  if (repo != null) {
    fs.mkdirSync(repo, { recursive: true });
    claimRepo(repo);
  }
  const m = await loadAll();
  const node = await startNode(m, repo);
  const { helia } = node;
  const keeper = peerKeeper(m, helia);
  await keeper.dialAll();
  const redial = setInterval(keeper.kick, REDIAL_MS);

  const api = makeApi(m, node, keeper, makePinning(repo));
  for (const record of api.pinning.records.values()) {
    if (record.status === "queued" || record.status === "pinning") startPin(api, record); // interrupted by a stop
  }

  const server = http.createServer((req, res) => { route(api, req, res); });
  server.requestTimeout = 0; // uploads of large artifacts; each handler bounds its own work
  await new Promise((resolve, reject) => server.once("error", reject).listen(Number(opts.port), "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(JSON.stringify({
    api: base, gateway: base, peer_id: helia.libp2p.peerId.toString(),
    addresses: helia.libp2p.getMultiaddrs().map(String),
  }) + "\n");
  log(`ready: api ${base}, peer ${helia.libp2p.peerId}, helia ${m.heliaVersion}${repo ? `, repo ${repo}` : " (in memory)"}`);

  let stopping = false;
  const stop = async (why) => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${why})`);
    setTimeout(() => process.exit(1), 10_000).unref();
    clearInterval(redial);
    server.close();
    server.closeAllConnections();
    await helia.stop();
    await node.blockstore?.close();
    await node.datastore?.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => { stop("SIGTERM"); });
  process.on("SIGINT", () => { stop("SIGINT"); });
}

// libp2p sometimes rejects a promise nobody awaits (a peer that vanished mid-stream):
// that is a log line for a daemon, not a reason to stop serving.
process.on("unhandledRejection", (error) => log(`unhandled: ${error?.stack ?? error}`));

main().catch((error) => {
  log(`zkfl ipfs node failed to start: ${error instanceof StartError ? error.message : error?.stack ?? error}`);
  process.exit(1);
});
