// Clusters, accounts, reports and users pages: confirmations, busy buttons, copy. No framework.
"use strict";
document.addEventListener("click", (event) => {
  const asking = event.target.closest("[data-confirm]");
  if (asking && !window.confirm(asking.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  const copier = event.target.closest("[data-copy]");
  if (copier) {
    const field = document.querySelector(copier.dataset.copy);
    field.select();
    const done = () => { copier.textContent = "Đã chép"; };
    if (navigator.clipboard) {
      navigator.clipboard.writeText(field.value).then(done, () => document.execCommand("copy") && done());
    } else if (document.execCommand("copy")) {
      done();
    }
  }
});
// A form that talks to Zalo or reads files may take a while: say so and block double clicks.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.dataset.busy) return;
  for (const button of form.querySelectorAll("button[type=submit]")) {
    button.disabled = true;
    button.textContent = form.dataset.busy;
  }
});
