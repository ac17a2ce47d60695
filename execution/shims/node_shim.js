// Runs a Node.js model behind the runner protocol:  node node_shim.js ENTRY_FILE
// The module exports apply(input, state) and optionally load(); both may be async.
// Responses go to the file descriptor in MARKETPLACE_RESULT_FD; console output made while
// handling a request is returned with it.
"use strict";
const fs = require("fs");
const path = require("path");
const readline = require("readline");

const resultFd = Number(process.env.MARKETPLACE_RESULT_FD);
function send(message) {
  fs.writeSync(resultFd, JSON.stringify(message) + "\n");
}

function errorOf(err, errorType) {
  return {
    message: (err && err.message) || String(err),
    error_type: errorType || (err && err.error_type) || "AlgorithmError",
    stacktrace: (err && err.stack) || "",
  };
}

function decode(request) {
  if (request.content_type === "binary") return Buffer.from(request.data || "", "base64");
  return request.data;
}

function encode(result) {
  if (Buffer.isBuffer(result) || result instanceof Uint8Array) {
    return [Buffer.from(result).toString("base64"), "binary"];
  }
  if (typeof result === "string") return [result, "text"];
  return [result === undefined ? null : result, "json"];
}

async function main() {
  let model;
  let state;
  try {
    model = require(path.resolve(process.cwd(), process.argv[2]));
    if (typeof model.apply !== "function") throw new Error("the module does not export apply()");
    if (typeof model.load === "function") state = await model.load();
  } catch (err) {
    send({ ready: false, error: errorOf(err, "LoadingError") });
    process.exit(1);
  }
  send({ ready: true });

  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  const queue = [];
  let busy = false;
  async function drain() {
    if (busy) return;
    busy = true;
    while (queue.length) await handle(queue.shift());
    busy = false;
  }
  async function handle(line) {
    if (!line.trim()) return;
    const request = JSON.parse(line);
    const captured = [];
    const original = { log: console.log, error: console.error, warn: console.warn, info: console.info };
    const capture = (...args) => captured.push(args.map(String).join(" ") + "\n");
    console.log = console.error = console.warn = console.info = capture;
    const response = { id: request.id };
    try {
      const result = await model.apply(decode(request), state);
      [response.result, response.content_type] = encode(result);
    } catch (err) {
      response.error = errorOf(err);
    } finally {
      Object.assign(console, original);
    }
    response.stdout = captured.join("");
    send(response);
  }
  lines.on("line", (line) => { queue.push(line); drain(); });
  lines.on("close", () => { const wait = () => (busy || queue.length ? setTimeout(wait, 10) : process.exit(0)); wait(); });
}

main();
