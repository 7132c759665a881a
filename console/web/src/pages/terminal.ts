// The command pane: a one-line command for this device, streamed back like
// a terminal. Output is the agent's and hostile: it is decoded, stripped of
// terminal escapes and control characters, and appended as text nodes only.
// The pane keeps the last 2 Mi characters (older output leaves the DOM, a
// note says so) and writes at most once per frame, so a command that
// prints without end cannot freeze the page. Cancel aborts the call; the
// relay then kills the command's process tree.

import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { checkSession, client, explain, isCanceled } from "../api";
import { h, replace, setText, uid } from "../dom";
import { formatBytes } from "../format";
import { CommandStream, RunCommandSchema, type CommandExit } from "../gen/deskside/v1/diag_pb";
import { notice, signingHint } from "../page";
import { envelopeHeaders } from "../signing";
import { AnsiStripper, CappedOutput, exitLine, fmtDuration, PendingOutput, timeoutChoices, type OutputSink, type OutStream } from "../term";

/** outputCap is how much output the pane keeps, in characters. */
export const outputCap = 2 * 1024 * 1024;

const historyMax = 50;

/** commandPane builds the Run command card for device id. */
export function commandPane(id: string, life: AbortSignal): HTMLElement {
  const inputID = uid("cmd-input");
  const timeoutID = uid("cmd-timeout");
  const input = h("input", {
    id: inputID, type: "text", class: "cmd-input", autocomplete: "off", spellcheck: "false", autocapitalize: "off",
    placeholder: "e.g. ip addr; systemctl --failed", maxlength: "65536", enterkeyhint: "go",
    "aria-describedby": `${inputID}-hint`, data: { testid: "cmd-input" },
  });
  const timeout = h("select", { id: timeoutID, data: { testid: "cmd-timeout" } },
    timeoutChoices.map(([s, label]) => h("option", { value: String(s) }, label)));
  const runBtn = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "cmd-run" } }, "Run");
  const cancelBtn = h("button", { type: "button", class: "btn", data: { testid: "cmd-cancel" }, disabled: true }, "Cancel");
  const errSlot = h("div");
  const dropped = h("p", { class: "muted cmd-dropped", data: { testid: "cmd-dropped" }, hidden: true });
  const header = h("div", { class: "term-cmd" });
  const out = h("pre", { class: "term-out" });
  const exitEl = h("div", { class: "term-exit", data: { testid: "cmd-exit" }, hidden: true });
  const placeholder = h("p", { class: "term-placeholder" }, "Output appears here as the command prints it.");
  const term = h("div", { class: "term", data: { testid: "cmd-output" }, tabindex: "0", role: "region", "aria-label": "Command output" },
    placeholder, header, out, exitEl);
  const followBtn = h("button", { type: "button", class: "btn btn-small term-follow", data: { testid: "cmd-follow" }, hidden: true }, "↓ Jump to the latest output");
  const announce = h("p", { class: "visually-hidden", role: "status" });

  const form = h("form", { class: "cmd-form", novalidate: true },
    h("div", { class: "cmd-line" },
      h("label", { for: inputID, class: "visually-hidden" }, "Command"),
      h("span", { class: "cmd-prompt", "aria-hidden": "true" }, "$"),
      input,
    ),
    h("div", { class: "cmd-opts" },
      h("label", { for: timeoutID, class: "cmd-opt-label" }, "Timeout"), timeout,
      runBtn, cancelBtn,
    ),
  );
  const el = h("section", { class: "card cmd-card", "aria-labelledby": `${inputID}-title` },
    h("div", { class: "card-head" }, h("h2", { id: `${inputID}-title` }, "Run command")),
    h("p", { id: `${inputID}-hint`, class: "hint cmd-hint" },
      "Runs through the device's shell (/bin/sh, cmd.exe on Windows) as the agent's account. Enter runs; ↑ and ↓ recall earlier commands. Every command is audited."),
    form, errSlot, dropped,
    h("div", { class: "term-wrap" }, term, followBtn),
    announce,
  );

  // --- output ---------------------------------------------------------------
  const sink: OutputSink<Text> = {
    create(stream: OutStream, text: string) {
      const t = document.createTextNode(text);
      out.append(h("span", { class: `out-${stream}` }, t));
      return t;
    },
    append: (t, text) => t.appendData(text),
    cutFront: (t, n) => t.deleteData(0, n),
    remove: (t) => t.parentNode?.parentNode?.removeChild(t.parentNode),
  };
  let capped = new CappedOutput(sink, outputCap);
  let pending = new PendingOutput(outputCap);
  let frame = 0;
  let follow = true;

  const atBottom = () => term.scrollHeight - term.scrollTop - term.clientHeight < 8;
  term.addEventListener("scroll", () => {
    follow = atBottom();
    followBtn.hidden = follow;
  });
  followBtn.addEventListener("click", () => {
    follow = true;
    followBtn.hidden = true;
    term.scrollTop = term.scrollHeight;
    term.focus();
  });

  function flush(): void {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    const parts = pending.take();
    for (const p of parts) capped.push(p.stream, p.text);
    const gone = capped.dropped + pending.dropped;
    dropped.hidden = gone === 0;
    if (gone) setText(dropped, `The pane keeps the last ${formatBytes(outputCap)} of output: ${formatBytes(gone)} of earlier output is no longer shown.`);
    if (follow) term.scrollTop = term.scrollHeight;
  }

  function write(stream: OutStream, text: string): void {
    if (!text) return;
    pending.push(stream, text);
    if (!frame) frame = requestAnimationFrame(flush);
  }

  // --- history of this page's commands ----------------------------------------
  const recent: string[] = [];
  let recall = -1; // index into recent while browsing with ↑/↓
  let draft = "";
  input.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
    if (!recent.length) return;
    e.preventDefault();
    if (recall < 0) draft = input.value;
    if (e.key === "ArrowUp") recall = recall < 0 ? recent.length - 1 : Math.max(0, recall - 1);
    else recall = recall < 0 ? -1 : recall + 1;
    if (recall >= recent.length) recall = -1;
    input.value = recall < 0 ? draft : recent[recall]!;
  });

  // --- running ----------------------------------------------------------------
  let run: AbortController | undefined;

  function finish(kind: string, text: string, code?: number): void {
    exitEl.hidden = false;
    exitEl.dataset["state"] = kind;
    if (code !== undefined) exitEl.dataset["exitCode"] = String(code);
    else delete exitEl.dataset["exitCode"];
    setText(exitEl, text);
    setText(announce, `Command ended: ${text}`);
    if (follow) term.scrollTop = term.scrollHeight;
  }

  async function start(line: string): Promise<void> {
    const ac = new AbortController();
    run = ac;
    const signal = AbortSignal.any([life, ac.signal]);
    if (recent[recent.length - 1] !== line) recent.push(line);
    if (recent.length > historyMax) recent.shift();
    recall = -1;

    // A clean pane for this run.
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    out.replaceChildren();
    capped = new CappedOutput(sink, outputCap);
    pending = new PendingOutput(outputCap);
    dropped.hidden = true;
    replace(errSlot);
    placeholder.hidden = true;
    setText(header, `$ ${line}`);
    header.title = line.length > 80 ? line : "";
    exitEl.hidden = true;
    follow = true;
    followBtn.hidden = true;
    term.setAttribute("aria-busy", "true");
    term.classList.add("is-running");
    runBtn.disabled = true;
    cancelBtn.disabled = false;
    setText(announce, "Command started.");

    const secs = Number(timeout.value) || 0;
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    const strippers = { stdout: new AnsiStripper(), stderr: new AnsiStripper() };
    let received = 0;
    let exit: CommandExit | undefined;
    let offline: { queued: boolean } | undefined;
    const t0 = performance.now();
    try {
      // The command as signed is the command as sent (signed only when
      // this browser has a certified key).
      const command = create(RunCommandSchema, { command: line, timeout: secs ? durationFromMs(secs * 1000) : undefined });
      const headers = await envelopeHeaders({ case: "command", value: command }, [id]);
      if (signal.aborted) throw new DOMException("aborted", "AbortError");
      const stream = client.runCommand({ deviceId: id, command }, { signal, headers });
      for await (const ev of stream) {
        const e = ev.event;
        if (e.case === "output") {
          const s: OutStream = e.value.stream === CommandStream.STDERR ? "stderr" : "stdout";
          received += e.value.data.length;
          write(s, strippers[s].push(decoders[s].decode(e.value.data, { stream: true })));
        } else if (e.case === "exit") {
          exit = e.value;
        } else if (e.case === "offline") {
          offline = { queued: e.value.queued };
        }
      }
      for (const s of ["stdout", "stderr"] as const) write(s, strippers[s].push(decoders[s].decode()));
      flush();
      if (exit) {
        const x = exitLine({
          exitCode: exit.exitCode, timedOut: exit.timedOut, canceled: exit.canceled, truncated: exit.truncated,
          outputBytes: exit.outputBytes, durationMs: exit.duration ? Number(exit.duration.seconds) * 1000 + exit.duration.nanos / 1e6 : performance.now() - t0,
          error: exit.error,
        }, received, formatBytes);
        finish(x.kind, x.text, x.kind === "ok" || x.kind === "failed" ? exit.exitCode : undefined);
        replace(errSlot, signingHint(exit.error));
      } else if (offline) {
        finish("offline", offline.queued ? "the device is offline: the command was queued" : "the device is offline: the command did not run");
      } else {
        finish("error", "the relay ended the stream without an exit status");
      }
    } catch (err) {
      if (life.aborted) return;
      flush();
      if (ac.signal.aborted && isCanceled(err)) {
        finish("cancelled", `cancelled after ${fmtDuration(performance.now() - t0)}: the relay stops the command and its process tree`);
      } else {
        checkSession(err);
        replace(errSlot, notice("error", h("span", { data: { testid: "cmd-error" } }, explain(err)), signingHint(explain(err))));
        finish("error", received ? "the stream broke off: the command's outcome is unknown" : "not run");
      }
    } finally {
      if (run === ac) run = undefined;
      if (!life.aborted) {
        term.removeAttribute("aria-busy");
        term.classList.remove("is-running");
        const hadFocus = document.activeElement === cancelBtn;
        runBtn.disabled = false;
        cancelBtn.disabled = true;
        if (hadFocus) input.focus();
      }
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (run) return;
    const line = input.value.trim();
    if (!line) {
      replace(errSlot, notice("error", "Type a command to run."));
      input.focus();
      return;
    }
    void start(line);
  });
  cancelBtn.addEventListener("click", () => run?.abort());
  life.addEventListener("abort", () => {
    if (frame) cancelAnimationFrame(frame);
  }, { once: true });

  return el;
}
