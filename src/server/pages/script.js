"use strict";
// hubmock's one script. The pages work without it: "Add webhook" posts the form back for
// another field, and History reads correctly as served. With it, "Add webhook" adds the field
// at once and History long-polls for changes. It inserts no markup of its own making: new
// content is the server's escaped HTML, parsed and moved into place.

document.addEventListener("click", (event) => {
  const add = event.target.closest("button[data-add-url]");
  if (!add) return;
  event.preventDefault();
  const rows = add.form.querySelectorAll(".url-row");
  const last = rows[rows.length - 1];
  const row = last.cloneNode(true);
  const input = row.querySelector("input");
  const label = row.querySelector("label");
  input.id = "hook_url-" + rows.length;
  input.value = "";
  input.removeAttribute("aria-invalid");
  input.removeAttribute("aria-describedby");
  label.htmlFor = input.id;
  label.textContent = "Webhook URL " + (rows.length + 1);
  row.querySelectorAll(".error").forEach((e) => e.remove());
  last.after(row);
  input.focus();
});

// Whether a person is filling in a form inside `el` (then it is not replaced under them).
function busy(el) {
  if (el.contains(document.activeElement)) return true;
  for (const field of el.querySelectorAll("input:not([type=hidden]), textarea")) {
    if (field.value !== field.defaultValue) return true;
  }
  for (const select of el.querySelectorAll("select")) {
    // With no option marked `selected`, the first one is.
    const initial = Math.max(0, [...select.options].findIndex((o) => o.defaultSelected));
    if (select.selectedIndex !== initial) return true;
  }
  return false;
}

function update(fresh) {
  for (const id of ["summary", "pager"]) {
    const now = document.getElementById(id);
    const next = fresh.querySelector("#" + id);
    if (now && next) now.replaceWith(next);
  }
  const list = document.getElementById("runs");
  const children = [...fresh.querySelector("#runs").children].map((next) => {
    const now = next.id && document.getElementById(next.id);
    if (!now) return next;
    if (now.dataset.version === next.dataset.version || busy(now)) return now;
    for (const open of now.querySelectorAll("details[open][id]")) {
      const same = next.querySelector("#" + CSS.escape(open.id));
      if (same) same.open = true;
    }
    return next;
  });
  list.replaceChildren(...children);
}

async function live(main) {
  let version = main.dataset.version;
  const pause = () => new Promise((resolve) => setTimeout(resolve, 3000));
  document.getElementById("live-note").textContent =
    "This page updates itself while it is open.";
  for (;;) {
    try {
      const url = new URL(location.href);
      url.hash = "";
      url.searchParams.set("live", version);
      const response = await fetch(url, { cache: "no-store" });
      if (response.status === 200) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.querySelector("main[data-live]");
        if (!fresh) return;
        version = fresh.dataset.version;
        update(fresh);
      } else if (response.status !== 204) {
        await pause();
      }
    } catch (_) {
      await pause();
    }
  }
}

const main = document.querySelector("main[data-live]");
if (main) live(main);
