// The files kept with a ticket (ListTicketAttachments): the screenshot the
// user sent from Get help, shown as an image from its bytes (a blob URL,
// only when it is a PNG by type and by signature: nothing of it is ever
// parsed as HTML), the agent's triage report (a deskside.v1.CheckReport)
// drawn as the device's Diagnostics tab draws one, and any other file as
// a download. The blob URLs are revoked when the page goes.

import { fromBinary } from "@bufbuild/protobuf";
import { checkSession, explain, isCanceled, ticketClient } from "../api";
import { countLine, statusKey, statusWords } from "../checks";
import { h, replace } from "../dom";
import { fmtTime, tsDate } from "../format";
import { CheckReportSchema, type CheckReport } from "../gen/deskside/v1/diag_pb";
import type { TicketAttachment } from "../gen/deskside/v1/tickets_pb";
import { card, notice } from "../page";
import { fmtBytes, isCheckReport, isPNG } from "../ticketfmt";
import { checkBadge, checkResultsList } from "./diag";

export interface TicketFiles {
  /** el is empty until a ticket turns out to have files. */
  el: HTMLElement;
  /** load asks for the ticket's files (again). */
  load(code: string): void;
  dispose(): void;
}

/** ticketFiles builds the attachments slot of the ticket page. */
export function ticketFiles(life: AbortSignal): TicketFiles {
  const el = h("div", { data: { testid: "tk-files" } });
  const urls: string[] = [];
  const blobURL = (data: Uint8Array, type: string) => {
    const u = URL.createObjectURL(new Blob([data as BlobPart], { type }));
    urls.push(u);
    return u;
  };
  const revoke = () => {
    for (const u of urls.splice(0)) URL.revokeObjectURL(u);
  };

  const triageView = (a: TicketAttachment): HTMLElement => {
    let rep: CheckReport;
    try {
      rep = fromBinary(CheckReportSchema, a.data);
    } catch (e) {
      return notice("error", `The triage report could not be read (${e instanceof Error ? e.message : String(e)}).`);
    }
    const k = statusKey(rep.overall);
    return h("div", { class: "tk-triage", data: { testid: "tk-triage" } },
      h("div", { class: `diag-overall diag-overall-${k}`, data: { testid: "tk-triage-overall", status: k } },
        checkBadge(k, true),
        h("div", { class: "diag-overall-text" },
          h("p", { class: "diag-overall-title" }, `Triage before filing: ${statusWords[k]}`),
          h("p", { class: "muted" }, `Run by the agent ${fmtTime(tsDate(rep.started) ?? tsDate(a.createdAt))}`, rep.results.length ? ` · ${countLine(rep.results)}` : ""))),
      checkResultsList(rep));
  };

  const fileView = (a: TicketAttachment): HTMLElement => {
    const meta = h("p", { class: "muted tk-file-meta" }, `${a.name} · ${fmtBytes(Number(a.size))} · ${fmtTime(tsDate(a.createdAt))}`);
    if (isPNG(a)) {
      const u = blobURL(a.data, "image/png");
      return h("figure", { class: "tk-shot", data: { testid: "tk-screenshot" } },
        h("a", { href: u, target: "_blank", rel: "noopener", title: "Open at full size" },
          h("img", { src: u, alt: "The screenshot the requester sent", class: "tk-shot-img", data: { testid: "tk-screenshot-img" } })),
        h("figcaption", null, meta));
    }
    if (isCheckReport(a)) return h("div", null, triageView(a), meta);
    // Anything else is offered as a download, never shown.
    return h("p", { data: { testid: "tk-file" } },
      h("a", { href: blobURL(a.data, "application/octet-stream"), download: a.name.replace(/[\\/]/g, "_") || "attachment" }, a.name || "attachment"),
      " ", h("span", { class: "muted" }, `(${fmtBytes(Number(a.size))}, ${a.contentType || "unknown type"})`));
  };

  let seq = 0;
  return {
    el,
    load(code: string) {
      const mine = ++seq;
      void ticketClient.listTicketAttachments({ code, withData: true }, { signal: life }).then((r) => {
        if (mine !== seq) return;
        revoke();
        const shots = r.attachments.filter(isPNG);
        const triage = r.attachments.filter((a) => !isPNG(a) && isCheckReport(a));
        const other = r.attachments.filter((a) => !isPNG(a) && !isCheckReport(a));
        replace(el,
          shots.length || other.length ? card("From the requester", ...shots.map(fileView), ...other.map(fileView)) : null,
          triage.length ? card("Triage report", ...triage.map(fileView)) : null);
      }, (e) => {
        if (isCanceled(e) || mine !== seq) return;
        checkSession(e);
        replace(el, notice("error", "Could not load the ticket's files: " + explain(e)));
      });
    },
    dispose: revoke,
  };
}
