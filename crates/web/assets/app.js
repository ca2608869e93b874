// Peedy's page: uploads each chosen PDF with POST /api/v1/documents, polls
// its /status, shows page 1 from /preview.png and downloads the result.
// Plain JavaScript, no build step, no other hosts.
"use strict";

(() => {
  const $ = (sel, el = document) => el.querySelector(sel);
  const TOKEN_KEY = "peedy.apiToken";
  const UPLOADS_AT_ONCE = 2;
  const POLL_MS = 400;

  const form = $("#stamp-form");
  const fileInput = $("#files");
  const drop = $("#drop");
  const text = $("#watermark");
  const submit = $("#submit");
  const formMessage = $("#form-message");
  const results = $("#results");
  const list = $("#file-list");
  const downloadAll = $("#download-all");
  const clearButton = $("#clear");
  const tokenCard = $("#token-card");
  const tokenWhy = $("#token-why");
  const tokenInput = $("#token");
  const tokenSave = $("#token-save");
  const opacity = $("#opacity");
  const opacityOut = $("#opacity-out");
  const rowTemplate = $("#file-row");

  /** Every file on the page: {file, row, status, id, filename, ...}. */
  const entries = [];
  let uploading = 0;
  const uploadQueue = [];

  // ------------------------------------------------------------ words

  const STAMP_ERRORS = {
    not_a_pdf: "This is not a PDF, or it is too damaged to read.",
    damaged_pdf: "This PDF is damaged and could not be repaired.",
    password_protected:
      "This PDF is password-protected: Peedy cannot open it without its password.",
    unsupported_encryption: "This PDF uses a kind of encryption Peedy does not support.",
    too_many_pages: "This PDF has more pages than this server accepts.",
    decompression_limit: "This PDF holds more data than this server unpacks.",
    too_deep: "This PDF is nested too deeply to read safely.",
    too_large: "This PDF is larger than this server accepts.",
    no_pages: "This PDF has no pages.",
    page_out_of_range: "The pages you chose are not all in this PDF.",
    invalid_watermark: "The watermark settings are not valid.",
    font: "The watermark text cannot be drawn with the server's font.",
    time_limit: "Stamping this PDF took longer than this server allows.",
  };

  const WITH_DETAIL = new Set([
    "too_many_pages", "decompression_limit", "too_deep", "too_large",
    "page_out_of_range", "invalid_watermark", "damaged_pdf", "time_limit",
  ]);

  function humanBytes(n) {
    if (!Number.isFinite(n)) return "";
    if (n < 1024) return `${n} B`;
    const units = ["KB", "MB", "GB", "TB"];
    let v = n;
    let u = -1;
    do {
      v /= 1024;
      u += 1;
    } while (v >= 1024 && u < units.length - 1);
    return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
  }

  /** Byte counts in server messages, for people. */
  function humanDetail(detail) {
    return String(detail || "").replace(/(\d{4,}) bytes/g, (_, n) => humanBytes(Number(n)));
  }

  function parseJson(textBody) {
    try {
      return JSON.parse(textBody);
    } catch (_) {
      return null;
    }
  }

  /** What an error answer of the API means, in words. */
  function explain(status, body, retryAfter) {
    const code = body && body.code;
    const detail = humanDetail(body && body.detail);
    if (status === 413) {
      return code === "too_many_files"
        ? `Too many files in one request: ${detail}`
        : `Too large: ${detail || "the file is larger than this server accepts."}`;
    }
    if (status === 503) {
      const wait = retryAfter ? ` Try again in ${retryAfter} s.` : " Try again shortly.";
      return code === "queue_full"
        ? `The server is busy: too many documents are waiting.${wait}`
        : `The server is unavailable right now.${wait}`;
    }
    if (code === "no_pdfs") {
      return "Not a PDF: the file does not start with %PDF, so the server skipped it.";
    }
    if (code && STAMP_ERRORS[code]) {
      // The engine's own sentence adds numbers (pages, limits) for some
      // codes; for the others it only repeats the words (or names CLI flags).
      return detail && WITH_DETAIL.has(code) ? `${STAMP_ERRORS[code]} ${detail}.` : STAMP_ERRORS[code];
    }
    if (detail) return detail;
    return status ? `The server answered HTTP ${status}.` : "The server could not be reached.";
  }

  // ------------------------------------------------------------ tokens

  const storedToken = () => sessionStorage.getItem(TOKEN_KEY) || "";
  let tokenWaiter = null;
  let resolveToken = null;

  /** Waits until the person enters a token. `used` is the token that was
   *  refused (so a stale 401 does not throw away a newer token). */
  function needToken(used) {
    if (used && used === storedToken()) {
      sessionStorage.removeItem(TOKEN_KEY);
      tokenWhy.textContent = "That API token was not accepted. Enter another one.";
    } else if (!storedToken()) {
      tokenWhy.textContent = "This server wants an API token. Ask whoever runs it.";
    } else {
      // A newer token is already there: just try again with it.
      return Promise.resolve();
    }
    if (!tokenWaiter) {
      tokenWaiter = new Promise((resolve) => {
        resolveToken = resolve;
      });
      tokenCard.hidden = false;
      tokenInput.focus();
    }
    return tokenWaiter;
  }

  function saveToken() {
    const t = tokenInput.value.trim();
    if (!t) {
      tokenInput.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, t);
    tokenInput.value = "";
    tokenCard.hidden = true;
    if (resolveToken) resolveToken();
    tokenWaiter = null;
    resolveToken = null;
  }

  tokenSave.addEventListener("click", saveToken);
  tokenInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      saveToken();
    }
  });

  /** fetch() with the token; asks for one and tries again on 401. */
  async function api(url, options = {}) {
    for (;;) {
      const used = storedToken();
      const headers = new Headers(options.headers || {});
      if (used) headers.set("Authorization", `Bearer ${used}`);
      const res = await fetch(url, { ...options, headers, cache: "no-store" });
      if (res.status !== 401) return res;
      await needToken(used);
    }
  }

  // ------------------------------------------------------------ rows

  function setStatus(entry, status, message, progress) {
    entry.status = status;
    entry.row.dataset.status = status;
    entry.statusEl.textContent = message;
    if (progress !== undefined) entry.progress.value = progress;
    updateButtons();
  }

  function addFiles(files) {
    for (const file of files) {
      const row = rowTemplate.content.firstElementChild.cloneNode(true);
      const entry = {
        file,
        row,
        status: "waiting",
        statusEl: $(".file-status", row),
        progress: $("progress", row),
        downloadButton: $(".download", row),
        retryButton: $(".retry", row),
        figure: $(".preview", row),
        img: $(".preview img", row),
        caption: $(".preview figcaption", row),
        zoom: $(".preview .zoom", row),
      };
      $(".file-name", row).textContent = file.name;
      $(".file-meta", row).textContent = humanBytes(file.size);
      entry.progress.setAttribute("aria-label", `Progress of ${file.name}`);
      entry.downloadButton.setAttribute("aria-label", `Download ${file.name} with the watermark`);
      entry.downloadButton.addEventListener("click", () => download(entry));
      entry.zoom.addEventListener("click", () => {
        const large = row.classList.toggle("large-preview");
        entry.zoom.setAttribute("aria-expanded", String(large));
        entry.zoom.textContent = large ? "Smaller preview" : "Larger preview";
      });
      entry.retryButton.addEventListener("click", () => {
        entry.retryButton.hidden = true;
        start(entry);
      });
      list.append(row);
      entries.push(entry);
      setStatus(entry, "waiting", "Ready: press Watermark to stamp it.", 0);
    }
    results.hidden = entries.length === 0;
    formMessage.textContent = "";
  }

  function updateButtons() {
    const waiting = entries.filter((e) => e.status === "waiting").length;
    submit.textContent = waiting > 1 ? `Watermark ${waiting} files` : "Watermark";
    downloadAll.disabled = !entries.some((e) => e.status === "done");
  }

  // ------------------------------------------------------------ upload

  /** The watermark spec as form fields (the names POST /api/v1/documents reads). */
  function specFields() {
    const fields = [["watermark", text.value.replace(/\r\n?/g, "\n")]];
    for (const name of ["size", "rotation", "opacity", "color", "position", "pages", "layer"]) {
      const v = form.elements[name].value.trim();
      if (v) fields.push([name, v]);
    }
    fields.push(["header", form.elements.header.checked ? "true" : "false"]);
    return fields;
  }

  function start(entry) {
    entry.fields = specFields();
    setStatus(entry, "queued-here", "Waiting to upload…", 0);
    uploadQueue.push(entry);
    pump();
  }

  function pump() {
    while (uploading < UPLOADS_AT_ONCE && uploadQueue.length) {
      const entry = uploadQueue.shift();
      uploading += 1;
      upload(entry).finally(() => {
        uploading -= 1;
        pump();
      });
    }
  }

  /** One upload with XMLHttpRequest (fetch cannot report upload progress). */
  function send(entry, token) {
    return new Promise((resolve) => {
      const data = new FormData();
      for (const [k, v] of entry.fields) data.append(k, v);
      // Browsers leave the type empty for some files; the server also checks
      // that the bytes start with %PDF.
      const blob = entry.file.type === "application/pdf"
        ? entry.file
        : new Blob([entry.file], { type: "application/pdf" });
      data.append("file", blob, entry.file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/documents");
      if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable && e.total > 0) {
          const pct = Math.round((e.loaded / e.total) * 100);
          setStatus(entry, "uploading", `Uploading… ${pct}%`, pct / 2);
        }
      });
      xhr.addEventListener("load", () => resolve({
        status: xhr.status,
        body: parseJson(xhr.responseText),
        retryAfter: xhr.getResponseHeader("Retry-After"),
      }));
      xhr.addEventListener("error", () => resolve({ status: 0, body: null, retryAfter: null }));
      setStatus(entry, "uploading", "Uploading…", 0);
      xhr.send(data);
    });
  }

  async function upload(entry) {
    let res;
    for (;;) {
      const token = storedToken();
      res = await send(entry, token);
      if (res.status !== 401) break;
      setStatus(entry, "waiting-token", "Waiting for an API token…", 0);
      await needToken(token);
    }
    const doc = res.status === 200 && res.body && res.body.documents && res.body.documents[0];
    if (!doc) {
      const skipped = res.body && res.body.skipped && res.body.skipped[0];
      const why = skipped ? `Skipped: ${skipped.reason}` : explain(res.status, res.body, res.retryAfter);
      setStatus(entry, "refused", why);
      entry.retryButton.hidden = !(res.status === 503 || res.status === 0);
      return;
    }
    entry.id = doc.id;
    entry.filename = doc.filename;
    entry.statusUrl = doc.status_url;
    entry.downloadUrl = doc.download_url;
    entry.previewUrl = `/api/v1/documents/${encodeURIComponent(doc.id)}/preview.png`;
    setStatus(entry, "queued", "Uploaded; waiting to be stamped…", 60);
    await poll(entry);
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function poll(entry) {
    for (;;) {
      let s;
      try {
        const res = await api(entry.statusUrl);
        s = await res.json();
        if (!res.ok) {
          setStatus(entry, "failed", explain(res.status, s, res.headers.get("Retry-After")));
          return;
        }
      } catch (_) {
        setStatus(entry, "queued", "Lost contact with the server; trying again…");
        await sleep(2000);
        continue;
      }
      if (s.status === "done") return done(entry, s);
      if (s.status === "failed") {
        const err = s.error || {};
        setStatus(entry, "failed", explain(422, { code: err.code, detail: err.detail }));
        return;
      }
      if (s.status === "running") setStatus(entry, "running", "Stamping…", 80);
      else setStatus(entry, "queued", "Waiting to be stamped…", 60);
      await sleep(POLL_MS);
    }
  }

  function done(entry, s) {
    const pages = s.stamped_pages === s.pages
      ? `${s.pages} page${s.pages === 1 ? "" : "s"}`
      : `${s.stamped_pages} of ${s.pages} pages`;
    const ms = s.timings && s.timings.stamp_ms != null ? ` in ${s.timings.stamp_ms} ms` : "";
    setStatus(entry, "done", `Done: ${pages} stamped${ms}.`, 100);
    $(".file-meta", entry.row).textContent =
      `${humanBytes(s.input.size)} → ${humanBytes(s.output.size)}`;
    entry.downloadButton.hidden = false;
    showPreview(entry);
  }

  async function showPreview(entry) {
    try {
      const res = await api(entry.previewUrl);
      if (!res.ok) {
        const body = await res.json().catch(() => null);
        entry.img.hidden = true;
        entry.caption.textContent = `No preview: ${explain(res.status, body)}`;
        entry.figure.hidden = false;
        return;
      }
      const blob = await res.blob();
      entry.img.alt = `Page 1 of ${entry.file.name} with the watermark`;
      entry.img.src = URL.createObjectURL(blob);
      entry.zoom.hidden = false;
      entry.figure.hidden = false;
    } catch (_) {
      entry.caption.textContent = "No preview: the server could not be reached.";
      entry.figure.hidden = false;
    }
  }

  /** book.pdf → book.stamped.pdf, as `peedy stamp` names its outputs. */
  function stampedName(name) {
    const n = name || "document.pdf";
    return /\.pdf$/i.test(n) ? n.replace(/(\.pdf)$/i, ".stamped$1") : `${n}.stamped.pdf`;
  }

  async function download(entry) {
    entry.downloadButton.disabled = true;
    try {
      const res = await api(entry.downloadUrl);
      if (!res.ok) {
        const body = await res.json().catch(() => null);
        setStatus(entry, "failed", explain(res.status, body, res.headers.get("Retry-After")));
        return;
      }
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = stampedName(entry.filename || entry.file.name);
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (_) {
      setStatus(entry, "done", "The download broke off; try again.");
    } finally {
      entry.downloadButton.disabled = false;
    }
  }

  // ------------------------------------------------------------ events

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    formMessage.textContent = "";
    const waiting = entries.filter((x) => x.status === "waiting");
    if (!waiting.length) {
      formMessage.textContent = "Choose or drop at least one PDF first.";
      fileInput.focus();
      return;
    }
    if (!text.value.trim()) {
      formMessage.textContent = "Type the watermark text first.";
      text.focus();
      return;
    }
    for (const entry of waiting) start(entry);
  });

  fileInput.addEventListener("change", () => {
    addFiles(fileInput.files);
    fileInput.value = "";
  });

  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "dragend"]) {
    drop.addEventListener(type, () => drop.classList.remove("dragging"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("dragging");
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  });
  // A file dropped next to the zone must not replace the page with the PDF.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  downloadAll.addEventListener("click", async () => {
    for (const entry of entries.filter((x) => x.status === "done")) {
      await download(entry);
    }
  });

  clearButton.addEventListener("click", () => {
    for (let i = entries.length - 1; i >= 0; i -= 1) {
      const entry = entries[i];
      if (["done", "failed", "refused", "waiting"].includes(entry.status)) {
        if (entry.img.src.startsWith("blob:")) URL.revokeObjectURL(entry.img.src);
        entry.row.remove();
        entries.splice(i, 1);
      }
    }
    results.hidden = entries.length === 0;
    updateButtons();
  });

  opacity.addEventListener("input", () => {
    opacityOut.textContent = opacity.value;
  });
})();
