// The export dialog: format and columns, then the whole filtered fleet
// (not only the page shown) downloaded as one file, always through the
// ExportInventory stream so that the relay audits every export.

import { checkSession, client, explain, isCanceled } from "../api";
import { h, replace, uid } from "../dom";
import { fmtCount, plural } from "../format";
import { listRequest, type FleetFilter } from "../fleetquery";
import { columnsFor, exportChoices, exportFileName, row, toCSV, toJSON, type Value } from "../exportcols";
import { notice } from "../page";


/** download hands data to the browser as a file through an <a download>. */
export function download(name: string, type: string, data: string): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = h("a", { href: url, download: name, class: "visually-hidden" }, name);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * openExport shows the dialog for filter; done gets a sentence once a file
 * was downloaded. Focus returns to opener when the dialog closes.
 */
export function openExport(filter: FleetFilter, opener: HTMLElement, done: (msg: string) => void): void {
  const titleID = uid("export-title");
  const fmtID = uid("export-format");
  const format = h("select", { id: fmtID, data: { testid: "export-format" } },
    h("option", { value: "csv" }, "CSV (spreadsheets)"),
    h("option", { value: "json" }, "JSON"),
  );
  const boxes = new Map<string, HTMLInputElement>();
  const choiceBox = (c: (typeof exportChoices)[number]) => {
    const input = h("input", { type: "checkbox", name: "column", value: c.id, checked: c.fleet || c.id === "id", data: { testid: `export-col-${c.id}` } });
    boxes.set(c.id, input);
    return h("label", { class: "check" }, input, " ", c.label, c.inventory ? h("span", { class: "muted" }, " (inventory)") : null);
  };
  const status = h("div", { class: "export-status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "export-submit" } }, "Download");
  const cancel = h("button", { type: "button", class: "btn btn-quiet", data: { testid: "export-close" } }, "Cancel");
  const setAll = (on: boolean | "fleet") => () => {
    for (const c of exportChoices) boxes.get(c.id)!.checked = on === "fleet" ? c.fleet || c.id === "id" : on;
  };

  const form = h("form", { class: "dialog-body" },
    h("h2", { id: titleID }, "Export the fleet"),
    h("p", { class: "muted" }, "Every device that matches the current search and filters, not only this page."),
    h("div", { class: "form-row" }, h("label", { for: fmtID }, "Format"), format),
    h("fieldset", { class: "columns" },
      h("legend", null, "Columns"),
      h("div", { class: "column-grid" }, exportChoices.map(choiceBox)),
      h("p", { class: "column-tools" },
        h("button", { type: "button", class: "link", on: { click: setAll(true) } }, "All"), " · ",
        h("button", { type: "button", class: "link", on: { click: setAll("fleet") } }, "Fleet columns"), " · ",
        h("button", { type: "button", class: "link", on: { click: setAll(false) } }, "None")),
      h("p", { class: "hint" }, "Columns marked “inventory” need each device's full inventory: the export takes longer."),
    ),
    status,
    h("div", { class: "dialog-actions" }, cancel, submit),
  );
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleID, data: { testid: "export-dialog" } }, form);

  let running: AbortController | undefined;
  const close = () => {
    running?.abort();
    if (dialog.open) dialog.close();
  };
  dialog.addEventListener("close", () => {
    running?.abort();
    dialog.remove();
    opener.focus();
  });
  cancel.addEventListener("click", close);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (running) return;
    const chosen = new Set([...boxes].filter(([, b]) => b.checked).map(([id]) => id));
    const cols = columnsFor(chosen);
    if (cols.length === 0) {
      replace(status, notice("error", "Choose at least one column."));
      return;
    }
    const fmt = format.value === "json" ? "json" : "csv";
    const needInventory = cols.some((c) => c.inventory);
    running = new AbortController();
    const signal = running.signal;
    submit.disabled = true;
    replace(submit, "Exporting…");
    const progress = (n: number) => replace(status, h("p", { role: "status" }, `Exported ${plural(n, "device")}…`));
    progress(0);
    const rows: Value[][] = [];
    try {
      const req = listRequest(filter);
      // Always through ExportInventory: the relay audits every export.
      for await (const r of client.exportInventory({ filter: req }, { signal })) {
        if (!r.device) continue;
        rows.push(row(cols, r.device, needInventory ? r.inventory : undefined));
        if (rows.length % 50 === 0) progress(rows.length);
      }
      progress(rows.length);
      const name = exportFileName(new Date(), fmt);
      if (fmt === "csv") download(name, "text/csv;charset=utf-8", toCSV(cols, rows));
      else download(name, "application/json", toJSON(cols, rows));
      running = undefined;
      done(`Exported ${plural(rows.length, "device")} to ${name}.`);
      close();
    } catch (err) {
      running = undefined;
      if (isCanceled(err) || signal.aborted) return;
      checkSession(err);
      replace(status, notice("error", `Export failed after ${fmtCount(rows.length)} devices. `, explain(err)));
    } finally {
      submit.disabled = false;
      replace(submit, "Download");
    }
  });

  document.body.append(dialog);
  dialog.showModal();
  format.focus();
}
