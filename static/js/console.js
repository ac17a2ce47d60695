/* The try-it console (templates/catalog/_console.html, catalog/console.py).
 *
 * The input is given in one of four tabs: a form drawn from the version's input schema
 * (django-jsonform's react-json-form), raw JSON kept in step with the form, text, or a file.
 * The answer is shown by its type: a picture, a table of records, a tree of JSON, text or a
 * download. An input the API refuses is shown at the field it names.
 *
 * Names, titles, examples, outputs and error messages are written by strangers: they are put
 * on the page with textContent, as attribute values, or as blob: URLs, never as markup.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-console]");
  var configElement = document.getElementById("try-config");
  if (!root || !configElement) return;
  var config = JSON.parse(configElement.textContent);

  var runButton = document.getElementById("try-run");
  var statusLine = document.getElementById("try-status");
  var resultBox = document.getElementById("try-result");
  var view = document.getElementById("try-view");
  var rawOutput = document.getElementById("try-output");
  var jsonInput = document.getElementById("try-input");
  var jsonError = document.getElementById("try-input-error");
  var textInput = document.getElementById("try-text");
  var fileInput = document.getElementById("try-file");
  var exampleSelect = document.getElementById("try-example");
  var versionSelect = document.getElementById("try-version");
  var form = null;
  var SEPARATOR = "\u00a7"; // how react-json-form joins a field's path in its errorMap
  var DATA_URL = /^data:([^;,]*)((?:;[^;,]*)*?);base64,/;
  var objectUrls = [];

  /* The input -------------------------------------------------------------------------- */

  function activeTab() {
    var active = root.querySelector("[data-tab][aria-selected=true]") || root.querySelector("[data-tab].active");
    return active ? active.getAttribute("data-tab") : "json";
  }

  function showTab(name) {
    var tab = root.querySelector('[data-tab="' + name + '"]');
    if (tab) tab.click();
  }

  function resolve(schema, node) {
    var seen = 0;
    while (node && typeof node.$ref === "string" && node.$ref.indexOf("#/") === 0 && seen++ < 32) {
      var target = schema;
      node.$ref.slice(2).split("/").forEach(function (part) {
        target = target && target[part.replace(/~1/g, "/").replace(/~0/g, "~")];
      });
      node = target;
    }
    return node;
  }

  // Files in the form are data: URLs (what the file picker reads); the model gets their
  // base64 only. `toBody` strips the prefix, `toForm` puts one back.
  function mapFiles(value, node, change) {
    node = resolve(config.schema, node);
    if (!node || value === null || value === undefined) return value;
    if (node.format === "data-url" && typeof value === "string") return change(value);
    if (node.type === "object" && node.properties && typeof value === "object" && !Array.isArray(value)) {
      var copy = {};
      Object.keys(value).forEach(function (key) {
        copy[key] = node.properties[key] ? mapFiles(value[key], node.properties[key], change) : value[key];
      });
      return copy;
    }
    if (node.type === "array" && node.items && Array.isArray(value)) {
      return value.map(function (item) { return mapFiles(item, node.items, change); });
    }
    return value;
  }

  function toBody(data) {
    return mapFiles(data, config.schema, function (text) { return text.replace(DATA_URL, ""); });
  }

  function toForm(data) {
    return mapFiles(data, config.schema, function (text) {
      return !text || DATA_URL.test(text) ? text : "data:application/octet-stream;base64," + text;
    });
  }

  function clean(data) {
    // The form keeps empty optional fields as "" or null; the API would refuse them.
    if (Array.isArray(data)) return data.map(clean);
    if (data && typeof data === "object") {
      var out = {};
      Object.keys(data).forEach(function (key) {
        var value = data[key];
        if (value === "" || value === null || value === undefined) return;
        out[key] = clean(value);
      });
      return out;
    }
    return data;
  }

  function setJsonText(value) {
    jsonInput.value = JSON.stringify(value, null, 2);
    showJsonError(null);
  }

  function showJsonError(message) {
    jsonError.hidden = !message;
    jsonError.textContent = message || "";
  }

  function setFieldErrors(errorMap) {
    if (form) form.update({ errorMap: errorMap || {} });
  }

  function initForm() {
    if (!config.schema || !window.reactJsonForm) return;
    var container = document.getElementById("try-form");
    container.textContent = "";
    var start = null;
    try { start = toForm(JSON.parse(jsonInput.value)); } catch (e) { start = null; }
    form = window.reactJsonForm.createForm({
      containerId: "try-form",
      dataInputId: "try-form-data",
      schema: config.schema,
      data: start,
      errorMap: {},
    });
    form.addEventListener("change", function (event) {
      if (fromJson) return;
      setJsonText(clean(toBody(event.data)));
    });
    form.render();
  }

  var fromJson = false;
  jsonInput.addEventListener("input", function () {
    var value;
    try {
      value = JSON.parse(jsonInput.value);
    } catch (e) {
      showJsonError("Not valid JSON yet: " + e.message);
      return;
    }
    showJsonError(null);
    if (form && value !== null && typeof value === "object") {
      fromJson = true;
      form.update({ data: toForm(value), errorMap: {} });
      setTimeout(function () { fromJson = false; }, 0);
    }
  });

  function loadExample(index) {
    var example = config.examples[index];
    if (!example) return;
    clearResult();
    if (typeof example.input === "string") {
      textInput.value = example.input;
      showTab("text");
      return;
    }
    setJsonText(example.input);
    if (form && example.input !== null && typeof example.input === "object") {
      fromJson = true;
      form.update({ data: toForm(example.input), errorMap: {} });
      setTimeout(function () { fromJson = false; }, 0);
    } else if (activeTab() === "form") {
      showTab("json");
    }
  }

  if (exampleSelect) {
    exampleSelect.addEventListener("change", function () { loadExample(Number(exampleSelect.value)); });
  }
  if (versionSelect) {
    versionSelect.addEventListener("change", function () { versionSelect.form.submit(); });
  }

  function readBody() {
    var tab = activeTab();
    if (tab === "text") return Promise.resolve({ type: "text/plain; charset=utf-8", body: textInput.value });
    if (tab === "file") {
      var file = fileInput.files && fileInput.files[0];
      if (!file) return Promise.reject(new Error("Choose a file to send."));
      return Promise.resolve({ type: "application/octet-stream", body: file });
    }
    if (tab === "form" && form) {
      var data = clean(toBody(form.getData()));
      setJsonText(data);
      return Promise.resolve({ type: "application/json", body: JSON.stringify(data) });
    }
    try {
      JSON.parse(jsonInput.value);
    } catch (e) {
      showJsonError("The input is not valid JSON: " + e.message);
      return Promise.reject(new Error("The input is not valid JSON: " + e.message));
    }
    return Promise.resolve({ type: "application/json", body: jsonInput.value });
  }

  /* The answer ------------------------------------------------------------------------- */

  function clearResult() {
    resultBox.hidden = true;
    view.textContent = "";
    rawOutput.textContent = "";
    objectUrls.forEach(function (url) { URL.revokeObjectURL(url); });
    objectUrls = [];
    setFieldErrors({});
    showJsonError(null);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bytesOf(base64) {
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function imageType(bytes) {
    function starts(signature) {
      for (var i = 0; i < signature.length; i++) if (bytes[i] !== signature[i]) return false;
      return true;
    }
    if (starts([0x89, 0x50, 0x4e, 0x47])) return "image/png";
    if (starts([0xff, 0xd8, 0xff])) return "image/jpeg";
    if (starts([0x47, 0x49, 0x46, 0x38])) return "image/gif";
    if (starts([0x52, 0x49, 0x46, 0x46]) && bytes[8] === 0x57 && bytes[9] === 0x45) return "image/webp";
    return null;
  }

  function blobUrl(bytes, type) {
    var url = URL.createObjectURL(new Blob([bytes], { type: type }));
    objectUrls.push(url);
    return url;
  }

  function showBinary(base64) {
    var bytes;
    try { bytes = bytesOf(base64); } catch (e) { view.appendChild(element("p", "muted", "The answer is not valid base64.")); return; }
    var type = imageType(bytes);
    if (type) {
      var figure = element("figure", "console-image");
      var image = element("img");
      image.alt = "The picture the model answered";
      image.src = blobUrl(bytes, type);
      figure.appendChild(image);
      figure.appendChild(element("figcaption", "muted small", type + ", " + bytes.length + " bytes"));
      view.appendChild(figure);
    }
    var link = element("a", "btn btn-sm", "Download the answer (" + bytes.length + " bytes)");
    link.href = blobUrl(bytes, type || "application/octet-stream");
    link.download = "answer" + (type ? "." + type.split("/")[1] : ".bin");
    link.id = "try-download";
    view.appendChild(link);
  }

  function isRecords(value) {
    return Array.isArray(value) && value.length > 0 && value.length <= 500 && value.every(function (row) {
      return row !== null && typeof row === "object" && !Array.isArray(row);
    });
  }

  function cellText(value) {
    return value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function showTable(rows) {
    var columns = [];
    rows.forEach(function (row) {
      Object.keys(row).forEach(function (key) { if (columns.indexOf(key) < 0 && columns.length < 50) columns.push(key); });
    });
    var wrap = element("div", "table-wrap");
    var table = element("table", "table console-table");
    var head = element("thead");
    var headRow = element("tr");
    columns.forEach(function (column) { headRow.appendChild(element("th", null, column)); });
    head.appendChild(headRow);
    table.appendChild(head);
    var body = element("tbody");
    rows.forEach(function (row) {
      var tr = element("tr");
      columns.forEach(function (column) {
        tr.appendChild(element("td", "mono small", column in row ? cellText(row[column]) : ""));
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
    wrap.appendChild(table);
    view.appendChild(wrap);
  }

  function tree(value, depth) {
    if (value === null || typeof value !== "object") {
      return element("span", "json-" + (value === null ? "null" : typeof value), JSON.stringify(value));
    }
    var keys = Object.keys(value);
    var details = element("details", "json-node");
    details.open = depth < 3;
    details.appendChild(element("summary", "muted small", Array.isArray(value) ? "array, " + keys.length + " items" : "object, " + keys.length + " keys"));
    var list = element("ul", "json-tree");
    keys.slice(0, 1000).forEach(function (key) {
      var item = element("li");
      item.appendChild(element("span", "json-key", Array.isArray(value) ? "[" + key + "]" : key));
      item.appendChild(document.createTextNode(": "));
      item.appendChild(tree(value[key], depth + 1));
      list.appendChild(item);
    });
    details.appendChild(list);
    return details;
  }

  function showResult(data) {
    var kind = data.metadata && data.metadata.content_type;
    var result = data.result;
    if (kind === "binary") {
      rawOutput.textContent = String(result);
      showBinary(String(result));
    } else if (kind === "text") {
      rawOutput.textContent = String(result);
      view.appendChild(element("pre", "code console-text", String(result)));
    } else {
      rawOutput.textContent = JSON.stringify(result, null, 2);
      if (typeof result === "string" && /^data:image\/(png|jpeg|gif|webp);base64,/.test(result)) {
        showBinary(result.replace(DATA_URL, ""));
      } else if (isRecords(result)) {
        showTable(result);
      } else if (result !== null && typeof result === "object") {
        view.appendChild(tree(result, 0));
      } else {
        view.appendChild(element("pre", "code console-text", JSON.stringify(result)));
      }
    }
  }

  function showRefusal(error) {
    // An input the schema refused names its field: shown at the field in the form, and
    // under the JSON box.
    var where = error.path && error.path.length ? error.path.join(SEPARATOR) : "";
    var text = (error.fields && Object.keys(error.fields).length)
      ? Object.keys(error.fields).map(function (key) { return key + ": " + error.fields[key].join("; "); }).join("\n")
      : error.message;
    var map = {};
    if (error.rule) map[where] = [text.replace(/^\$[^:]*: /, "")];
    setFieldErrors(map);
    if (activeTab() !== "form" || !form) showJsonError(text);
  }

  /* Running ----------------------------------------------------------------------------- */

  function seconds(ms) { return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + " s"; }

  function milliseconds(value) {
    var ms = value * 1000;
    return (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + " ms";
  }

  function csrfToken() {
    var input = root.querySelector("[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  var running = false;
  runButton.addEventListener("click", function () {
    if (running) return;
    clearResult();
    readBody().then(run, function (error) {
      statusLine.textContent = error.message;
    });
  });

  function run(input) {
    running = true;
    runButton.disabled = true;
    var started = performance.now();
    statusLine.textContent = "Running…";
    // A model not yet started is started for the call (a cold start): say so, and count.
    var ticker = setInterval(function () {
      var waited = performance.now() - started;
      if (waited >= 1500) {
        statusLine.textContent = "Cold start: starting the model for this call… " + Math.floor(waited / 1000) + " s";
        statusLine.setAttribute("data-cold", "true");
      }
    }, 250);
    fetch(config.endpoint, {
      method: "POST",
      credentials: "same-origin",
      body: input.body,
      headers: { "Content-Type": input.type, "Accept": "application/json", "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = JSON.parse(text); } catch (e) { data = { error: { message: text.slice(0, 500) || response.statusText } }; }
        return { status: response.status, data: data, headers: response.headers };
      });
    }).then(function (answer) {
      var data = answer.data || {};
      var elapsed = performance.now() - started;
      var trip = "round trip " + (elapsed < 1000 ? Math.round(elapsed) + " ms" : seconds(elapsed));
      resultBox.hidden = false;
      if (data.error) {
        rawOutput.textContent = (data.error.error_type || "Error") + ": " + data.error.message +
          (data.error.stacktrace ? "\n\n" + data.error.stacktrace : "");
        view.appendChild(element("p", "console-error", rawOutput.textContent));
        if (answer.status === 400 && data.error.rule) showRefusal(data.error);
        // Algorithmia's API answers a model's own error with 200 and an error body.
        var what = answer.status === 200 ? "The model raised an error"
          : answer.status === 400 && data.error.rule ? "The input does not match the model's schema"
          : answer.status === 429 ? "Limit reached"
          : "Failed (HTTP " + answer.status + ")";
        statusLine.textContent = what + " · " + trip + (data.request_id ? " · request " + data.request_id : "");
        return;
      }
      showResult(data);
      var cold = data.metadata && data.metadata.cold_start;
      statusLine.textContent = (cold ? "Cold start · " : "") + "Model " +
        milliseconds((data.metadata && data.metadata.duration) || 0) + ", " + trip +
        " · request " + data.request_id;
    }).catch(function (error) {
      statusLine.textContent = "The call failed: " + error;
    }).finally(function () {
      clearInterval(ticker);
      statusLine.removeAttribute("data-cold");
      running = false;
      runButton.disabled = false;
    });
  }

  function ready() {
    initForm();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
